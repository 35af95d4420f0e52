"""The outputs cache under faults: per-PNG sha256, leftovers of dead processes, full disk;
the OUT lock; SIGINT/SIGTERM/disk-full endings; the report's temp folder."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evalkit.core.faults import (
    EXIT_DISK_FULL,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    DiskFull,
    Terminated,
    is_disk_full,
)
from evalkit.execute.generate import MANIFEST, OutputCache, remove_stale_temps
from evalkit.inputs.data.dataset import Dataset
from evalkit.store.endings import ending_cleanly
from evalkit.store.lock import LockBusy, run_lock

ROOT = Path(__file__).resolve().parents[1]


def dataset(n: int = 3) -> Dataset:
    return Dataset(name="heldout", kind="heldout", root=Path("/data"),
                   ids=[f"s{i}" for i in range(n)], inputs=np.zeros((n, 8, 8, 1), np.float32),
                   targets=None, content_hash="d" * 64, size=8)


def outputs(n: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (n, 8, 8, 3)).astype(np.uint8)


def test_manifest_has_sha256_and_a_tampered_png_is_caught(tmp_path):
    logs: list[str] = []
    cache = OutputCache(tmp_path, log=logs.append)
    ds, out = dataset(), outputs()
    folder = cache.save("c" * 64, ds, out, None)
    manifest = json.loads((folder / MANIFEST).read_text())
    assert len(manifest["sha256"]) == 3 and all(len(h) == 64 for h in manifest["sha256"])
    got, _ = cache.load("c" * 64, ds)
    assert np.array_equal(got, out) and logs == []
    # replace one PNG by ANOTHER VALID image: decodes fine, but its hash differs
    victim = folder / manifest["files"][1]
    Image.fromarray(outputs(1, seed=9)[0]).save(victim)
    assert cache.load("c" * 64, ds) is None
    assert len(logs) == 1 and "changed since it was written" in logs[0]
    assert manifest["files"][1] in logs[0] and "regenerating" in logs[0]
    victim.unlink()  # a missing file: regenerated too, with a message
    assert cache.load("c" * 64, ds) is None and "unreadable" in logs[-1]


def test_old_manifest_without_hashes_is_regenerated(tmp_path):
    cache = OutputCache(tmp_path, log=lambda s: None)
    folder = cache.save("c" * 64, dataset(), outputs(), None)
    m = json.loads((folder / MANIFEST).read_text())
    m["version"] = 1
    del m["sha256"]
    (folder / MANIFEST).write_text(json.dumps(m))
    assert cache.load("c" * 64, dataset()) is None


def test_temp_folders_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / "outputs" / "abc" / f"def.tmp{dead.pid}"
    mine = tmp_path / "outputs" / "abc" / f"ghi.tmp{os.getpid()}"
    done = tmp_path / "outputs" / "abc" / "def"
    for p in (stale, mine, done):
        p.mkdir(parents=True)
        (p / "x.png").write_bytes(b"x")
    cache = OutputCache(tmp_path)
    assert cache.removed_temps == [stale]
    assert not stale.exists() and mine.exists() and done.exists()
    old_report = tmp_path / f"report.tmp{dead.pid}"
    old_report.mkdir()
    assert remove_stale_temps(tmp_path, "report.*") == [old_report]


def test_disk_full_while_saving_leaves_nothing_and_says_what_it_needs(tmp_path, monkeypatch):
    cache = OutputCache(tmp_path)
    real = Path.write_bytes
    calls = []

    def full_after_one(self, data):
        calls.append(len(data))
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, data)

    monkeypatch.setattr(Path, "write_bytes", full_after_one)
    with pytest.raises(DiskFull) as info:
        cache.save("c" * 64, dataset(), outputs(), None)
    monkeypatch.undo()
    exc = info.value
    assert exc.needed >= 3 * calls[0]  # three PNGs of about the size of the one written
    assert "disk full writing" in str(exc) and "outputs" in str(exc)
    assert list((tmp_path / "outputs").rglob("*.png")) == []  # temp folder removed
    assert not any(p.name.startswith("dddd") for p in (tmp_path / "outputs").rglob("*"))


@pytest.mark.parametrize("exc, code, words", [
    (KeyboardInterrupt(), EXIT_SIGINT, "interrupted (SIGINT)"),
    (Terminated(), EXIT_SIGTERM, "terminated (SIGTERM)"),
    (OSError(errno.ENOSPC, "No space left on device"), EXIT_DISK_FULL, "disk full"),
])
def test_ending_cleanly_codes_and_one_line(tmp_path, exc, code, words):
    lines: list[str] = []
    with pytest.raises(SystemExit) as info, ending_cleanly(tmp_path, echo=lines.append):
        raise exc
    assert info.value.code == code
    assert len(lines) == 1 and words in lines[0]
    if code != EXIT_DISK_FULL:
        assert "nothing was stored yet" in lines[0]
        from evalkit.store.results import Store
        Store(tmp_path).close()
        with pytest.raises(SystemExit), ending_cleanly(tmp_path, echo=lines.append):
            raise exc
        assert "0 complete evaluation(s)" in lines[1] and "run the same command" in lines[1]


def test_ending_cleanly_lets_other_errors_through(tmp_path):
    with pytest.raises(ValueError), ending_cleanly(tmp_path, echo=lambda s: None):
        raise ValueError("a bug")
    import sqlite3
    assert is_disk_full(sqlite3.OperationalError("database or disk is full"))
    assert not is_disk_full(sqlite3.OperationalError("database is locked"))


def test_lock_waits_or_refuses(tmp_path):
    order: list[str] = []
    held = threading.Event()

    def holder():
        with run_lock(tmp_path):
            held.set()
            time.sleep(0.5)
            order.append("first done")

    t = threading.Thread(target=holder)
    t.start()
    held.wait(5)
    with pytest.raises(LockBusy, match="in use by another evalkit run"):
        with run_lock(tmp_path, wait=False):
            pytest.fail("a second run was granted the lock while the first held it")
    msgs: list[str] = []
    with run_lock(tmp_path, log=msgs.append):
        order.append("second")
    t.join()
    assert order == ["first done", "second"]
    assert len(msgs) == 1 and "waiting for another evalkit run" in msgs[0]
    assert f"pid {os.getpid()}" in msgs[0]


def test_run_no_wait_exits_2_while_another_run_holds_out(tmp_path, seed_run, heldout_dir):
    from click.testing import CliRunner

    from evalkit.cli import cli

    out = tmp_path / "out"
    with run_lock(out):
        r = CliRunner().invoke(cli, ["run", str(seed_run), "--heldout", str(heldout_dir),
                                     "--out", str(out), "--image-size", "32", "--no-wait",
                                     "--quiet", "--no-report"])
    assert r.exit_code == 2 and "in use by another evalkit run" in r.output
    assert not (out / "results.sqlite").exists()


def test_failed_report_render_leaves_the_previous_report_whole(tmp_path, monkeypatch,
                                                               seed_run, heldout_dir):
    from evalkit.execute.engine import RunOptions, evaluate_run
    from evalkit.inputs.data.pairs import load_pairs
    from evalkit.measure.paired import PairedMetrics
    from evalkit.present import report as rep

    out = tmp_path / "out"
    evaluate_run(seed_run, out, [load_pairs(heldout_dir, size=32, name="heldout")],
                 RunOptions(image_size=32, progress=False), families=[PairedMetrics()],
                 log=lambda s: None)
    index = rep.render_report(out)
    before = index.read_text()

    def broken(*a, **k):
        raise RuntimeError("half-way")

    monkeypatch.setattr(rep.plots, "mismatch_plots", broken)
    with pytest.raises(RuntimeError):
        rep.render_report(out)
    assert index.read_text() == before and (out / "report" / "img").is_dir()
    leftovers = [p.name for p in out.iterdir() if p.name.startswith("report.")]
    assert leftovers == []  # the failed render's temp folder is removed on the way out


def test_report_swap(tmp_path):
    from evalkit.present.report.build import _swap_into_place

    old = tmp_path / "report"
    old.mkdir()
    (old / "index.html").write_text("old")
    new = tmp_path / f"report.tmp{os.getpid()}"
    new.mkdir()
    (new / "index.html").write_text("new")
    _swap_into_place(new, old)
    assert (old / "index.html").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_unchanged_report_is_not_rendered_again(tmp_path, seed_run, heldout_dir, capsys):
    from evalkit.commands.run import render_report_safely
    from evalkit.execute.engine import RunOptions, evaluate_run
    from evalkit.inputs.data.pairs import load_pairs
    from evalkit.measure.paired import PairedMetrics
    from evalkit.present.report import stamp as reportstamp

    out = tmp_path / "out"
    ds = [load_pairs(heldout_dir, size=32, name="heldout")]
    opts = RunOptions(image_size=32, progress=False)

    def run_and_render() -> str:
        evaluate_run(seed_run, out, ds, opts, families=[PairedMetrics()], argv=["same"],
                     log=lambda s: None)
        render_report_safely(out)
        return capsys.readouterr().err

    assert "(up to date)" not in run_and_render()
    index = out / "report" / "index.html"
    mtime = index.stat().st_mtime_ns
    assert "(up to date)" in run_and_render()  # same results, same run settings
    assert index.stat().st_mtime_ns == mtime
    digest = reportstamp.fingerprint(out)
    (out / "selection.json").write_text("{}")  # something the report shows changed
    assert reportstamp.fingerprint(out) != digest
    assert "(up to date)" not in run_and_render()
    evaluate_run(seed_run, out, ds, opts, families=[PairedMetrics()], argv=["other"],
                 log=lambda s: None)  # another command line: a new row in the run list
    assert not reportstamp.is_current(out, reportstamp.fingerprint(out))


def test_signals_deferred_delivers_a_kill_after_the_block():
    """A SIGTERM inside signals_deferred() (e.g. during `import tensorflow`) is raised as
    Terminated when the block ends, not inside it."""
    import subprocess
    import sys

    code = ("import os, signal\n"
            "from evalkit.core.faults import Terminated, install_sigterm_handler, "
            "signals_deferred\n"
            "install_sigterm_handler()\n"
            "seen = []\n"
            "try:\n"
            "    with signals_deferred():\n"
            "        os.kill(os.getpid(), signal.SIGTERM)\n"
            "        for _ in range(10 ** 6): pass\n"
            "        seen.append('block ended normally')\n"
            "except Terminated:\n"
            "    seen.append('terminated after the block')\n"
            "print(seen)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60).stdout.strip()
    assert out == "['block ended normally', 'terminated after the block']"
