"""`evalkit watch`: checkpoints evaluated as they are written, each once, none half-read."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import evalkit
from evalkit.cli import cli
from evalkit.execute.watch import CompletenessTracker, named_by_state, state_file_names
from evalkit.inputs.checkpoints.discover import discover_checkpoints
from tests.conftest import make_ab_folder

SIZE = 32
ROOT = Path(__file__).resolve().parents[1]


def _state(folder: Path, names: list[str]) -> None:
    """The trainer's `checkpoint` state file, replaced atomically like TensorFlow does."""
    text = f'model_checkpoint_path: "{names[-1]}"\n' + "".join(
        f'all_model_checkpoint_paths: "{n}"\n' for n in names)
    tmp = folder / "checkpoint.tmp"
    tmp.write_text(text)
    os.replace(tmp, folder / "checkpoint")


@pytest.fixture(scope="module")
def staged(tmp_path_factory) -> Path:
    """ckpt-1..3 of a seed-like generator, written by independent code, to copy from."""
    from tests.seed_reference import save_seed_checkpoint

    d = tmp_path_factory.mktemp("staged")
    save_seed_checkpoint(d, n=3, hidden=4)
    return d


def _files(staged: Path, name: str) -> tuple[Path, Path]:
    return staged / f"{name}.index", staged / f"{name}.data-00000-of-00001"


def test_state_file_names_a_checkpoint_or_a_newer_one(tmp_path, staged):
    assert state_file_names(tmp_path) is None
    _state(tmp_path, ["ckpt-2"])
    assert state_file_names(tmp_path) == ["ckpt-2", "ckpt-2"]
    for n in (1, 2, 3):
        shutil.copy(_files(staged, f"ckpt-{n}")[0], tmp_path)
        shutil.copy(_files(staged, f"ckpt-{n}")[1], tmp_path)
    refs = {r.name: r for r in discover_checkpoints(tmp_path)}
    names = state_file_names(tmp_path)
    assert named_by_state(refs["ckpt-1"], names)  # older than the newest named one
    assert named_by_state(refs["ckpt-2"], names)
    assert not named_by_state(refs["ckpt-3"], names)


def test_tracker_waits_for_state_file_stable_sizes_and_readable_variables(tmp_path, staged):
    """A checkpoint appears index first, its shard grows, the state file comes last: it is
    ready only after that, on the poll after its files stopped changing."""
    index, shard = _files(staged, "ckpt-1")
    _state(tmp_path, ["ckpt-0"])  # an older checkpoint's state file, as during training
    tracker = CompletenessTracker()
    shutil.copy(index, tmp_path)

    def poll():
        return tracker.check(discover_checkpoints(tmp_path))

    ready, waiting, changed = poll()
    assert not ready and "missing" in waiting["ckpt-1"] and changed
    data = shard.read_bytes()
    target = tmp_path / shard.name
    target.write_bytes(data[: len(data) // 2])
    ready, waiting, _ = poll()
    assert not ready and "not yet named" in waiting["ckpt-1"]
    target.write_bytes(data)
    _state(tmp_path, ["ckpt-1"])
    ready, waiting, changed = poll()  # named now, but its shard just changed
    assert not ready and "changing" in waiting["ckpt-1"] and changed
    ready, waiting, changed = poll()
    assert [r.name for r in ready] == ["ckpt-1"] and not waiting and not changed
    tracker.handed_over(ready[0])
    assert poll()[0] == []  # handed over once; unchanged files are not handed again


def test_without_state_file_a_truncated_shard_is_never_handed_over(tmp_path, staged):
    """No state file: only stable sizes and TensorFlow's reader decide. A shard cut short
    (a copy stalled) stays waiting however long it is stable; complete, it is ready."""
    index, shard = _files(staged, "ckpt-2")
    shutil.copy(index, tmp_path)
    data = shard.read_bytes()
    (tmp_path / shard.name).write_bytes(data[:-1000])
    tracker = CompletenessTracker(give_up=2)
    for _ in range(4):
        ready, waiting, _ = tracker.check(discover_checkpoints(tmp_path))
        assert not ready
    assert "not readable yet" in waiting["ckpt-2"]
    (tmp_path / shard.name).write_bytes(data)
    tracker.check(discover_checkpoints(tmp_path))
    ready, _, _ = tracker.check(discover_checkpoints(tmp_path))
    assert [r.name for r in ready] == ["ckpt-2"]


def test_named_but_unreadable_checkpoint_is_handed_over_after_give_up_polls(tmp_path, staged):
    """Complete by the trainer's word yet unreadable and unchanging: handed to the engine
    (which records why it failed) instead of waiting for ever."""
    index, shard = _files(staged, "ckpt-1")
    shutil.copy(index, tmp_path)
    (tmp_path / shard.name).write_bytes(shard.read_bytes()[:-1000])
    _state(tmp_path, ["ckpt-1"])
    tracker = CompletenessTracker(give_up=3)
    got = [tracker.check(discover_checkpoints(tmp_path))[0] for _ in range(5)]
    assert [len(r) for r in got] == [0, 0, 0, 1, 1]


def _copy_like_a_trainer(staged: Path, dest: Path, first_done: Path, log: list) -> None:
    """ckpt-1 at once; once its evaluation is refreshed (``first_done`` exists), ckpt-2 slowly (index,
    then its shard in chunks with pauses longer than the poll interval, then the state
    file) while the watch polls; then ckpt-3 at once."""
    for n in (1, 2, 3):
        index, shard = _files(staged, f"ckpt-{n}")
        time.sleep(1.0)
        if n == 2:
            deadline = time.monotonic() + 90
            while not first_done.exists() and time.monotonic() < deadline:
                time.sleep(0.2)
            shutil.copy(index, dest)
            data = shard.read_bytes()
            chunk = len(data) // 5 + 1
            with open(dest / shard.name, "wb") as f:
                for i in range(0, len(data), chunk):
                    f.write(data[i:i + chunk])
                    f.flush()
                    time.sleep(0.6)
        else:
            shutil.copy(shard, dest)
            shutil.copy(index, dest)
        _state(dest, [f"ckpt-{k}" for k in range(1, n + 1)])
        log.append((f"ckpt-{n}", time.monotonic()))


def test_watch_evaluates_each_checkpoint_once_as_it_lands_and_matches_run(tmp_path, staged):
    heldout = make_ab_folder(tmp_path / "heldout", n=4, half=SIZE)
    watched = tmp_path / "train"
    watched.mkdir()
    landed: list = []
    tb = importlib.util.find_spec("tensorboard") is not None  # optional extra
    # the last file the watch refreshes after evaluating: then it goes back to polling
    refreshed = (tmp_path / "tb" / ".evalkit-tensorboard.json" if tb
                 else tmp_path / "out" / "report" / "index.html")
    copier = threading.Thread(target=_copy_like_a_trainer,
                              args=(staged, watched, refreshed, landed))
    copier.start()
    t0 = time.monotonic()
    r = CliRunner().invoke(cli, [
        "watch", str(watched), "--heldout", str(heldout), "--out", str(tmp_path / "out"),
        "--image-size", str(SIZE), "--quiet", "--interval", "0.3", "--until-idle", "6",
        *(["--tensorboard", str(tmp_path / "tb")] if tb else [])], catch_exceptions=False)
    copier.join()
    elapsed = time.monotonic() - t0
    log = r.output
    assert r.exit_code == 0, log
    assert [n for n, _ in landed] == ["ckpt-1", "ckpt-2", "ckpt-3"]
    for n in ("ckpt-1", "ckpt-2", "ckpt-3"):
        assert log.count(f"{n} (step {n[-1]}): evaluated") == 1, log
    assert "FAILED" not in log and "cached" not in log
    # it was seen, index and shard there, while its shard was still being written
    assert "waiting for ckpt-2: not yet named by" in log, log
    assert "watch stopped (idle for 6 s): 3 checkpoints evaluated (0 failed)" in log
    assert elapsed < 120
    with evalkit.store.results.Store(tmp_path / "out", create=False) as store:
        ck = store.checkpoints()
    assert ck.set_index("name")["status"].to_dict() == {f"ckpt-{n}": "ok" for n in (1, 2, 3)}
    # kept up to date as it went: selection, report and TensorBoard log
    assert (tmp_path / "out" / "selection.json").is_file()
    assert (tmp_path / "out" / "report" / "index.html").is_file()
    if tb:
        assert any((tmp_path / "tb").glob("events.out.tfevents.*"))

    # a plain run over the same folder into another OUT gives the same table
    r2 = CliRunner().invoke(cli, ["run", str(watched), "--heldout", str(heldout), "--out",
                                  str(tmp_path / "plain"), "--image-size", str(SIZE),
                                  "--quiet", "--no-report"], catch_exceptions=False)
    assert r2.exit_code == 0, r2.output
    watched_df = evalkit.load_results(tmp_path / "out")
    plain_df = evalkit.load_results(tmp_path / "plain")
    assert len(watched_df) > 0
    pd.testing.assert_frame_equal(watched_df, plain_df)
    # and `run` on the watched OUT resumes from it (same store and cache), same table
    r3 = CliRunner().invoke(cli, ["run", str(watched), "--heldout", str(heldout), "--out",
                                  str(tmp_path / "out"), "--image-size", str(SIZE),
                                  "--no-report", "--quiet"], catch_exceptions=False)
    assert r3.exit_code == 0 and "3 of 3 checkpoints evaluated" in r3.output, r3.output
    pd.testing.assert_frame_equal(evalkit.load_results(tmp_path / "out"), plain_df)


def test_ctrl_c_stops_watch_cleanly_with_exit_0(tmp_path):
    """Ctrl-C is the normal way to stop watching: exit 0 and a line saying what is stored."""
    (tmp_path / "train").mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.Popen([sys.executable, "-m", "evalkit.cli", "watch", str(tmp_path / "train"),
                          "--heldout", str(make_ab_folder(tmp_path / "heldout", n=2)),
                          "--out", str(tmp_path / "out"), "--interval", "0.2"],
                         stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert "watching" in p.stderr.readline()
        time.sleep(0.5)
        p.send_signal(signal.SIGINT)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, err
    assert "watch stopped (Ctrl-C): 0 checkpoints evaluated (0 failed)" in err


def test_poll_until_stops_when_idle_and_on_interrupt():
    from evalkit.execute.watch import poll_until

    now = [0.0]
    activity = iter([True, False, True, False, False, False, False])
    calls = []

    def poll():
        calls.append(now[0])
        return next(activity)

    def sleep(s):
        now[0] += s

    assert poll_until(poll, 1.0, 2.5, sleep=sleep, clock=lambda: now[0]) == "idle"
    assert calls == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]  # idle 3 s after the last activity at 2 s

    def interrupted():
        raise KeyboardInterrupt

    def exits_130():  # a SIGINT handler elsewhere that exits 130 is Ctrl-C here too
        raise SystemExit(130)

    assert poll_until(interrupted, 1.0, None) == "interrupted"
    assert poll_until(exits_130, 1.0, None) == "interrupted"
    with pytest.raises(SystemExit):
        poll_until(lambda: (_ for _ in ()).throw(SystemExit(2)), 1.0, None)
