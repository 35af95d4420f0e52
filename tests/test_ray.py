"""``evalkit run --executor ray`` (issue 14) on a local Ray instance with 2 workers: the
same results as in-process to the last digit, and a resume after ``kill -9`` of the driver.

The drivers run as subprocesses, as users run them. Skipped without the ``ray`` extra.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("ray", reason="Ray is an optional extra: pip install 'evalkit[ray]'")

import evalkit  # noqa: E402
from evalkit.store.results import Store  # noqa: E402
from tests.conftest import make_ab_folder  # noqa: E402
from tests.results_compare import assert_same_results  # noqa: E402
from tests.test_domains import _sketch_set  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SIZE = 32
N_CKPT = 3  # per domain; 2 domains x 2 datasets -> 12 evaluations


@pytest.fixture(scope="module")
def service(tmp_path_factory) -> Path:
    from tests.seed_reference import save_seed_checkpoint

    base = tmp_path_factory.mktemp("ray-service")
    for k, d in enumerate(("car", "shoe")):
        (base / "checkpoints" / d).mkdir(parents=True)
        save_seed_checkpoint(base / "checkpoints" / d, n=N_CKPT, hidden=4, seed=10 * k)
        make_ab_folder(base / "heldout" / d, n=4 + k, half=SIZE, seed=k)
    _sketch_set(base / "sketches")
    return base


def _cmd(service: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "evalkit.cli", "run", str(service / "checkpoints"),
            "--heldout", str(service / "heldout"), "--sketches", str(service / "sketches"),
            "--out", str(out), "--image-size", str(SIZE), "--no-report", *extra]


RAY = ("--executor", "ray", "--workers", "2")


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0"}


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=600)


@pytest.fixture(scope="module")
def inprocess(service, tmp_path_factory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("inproc") / "out"
    r = _run(_cmd(service, out))
    assert r.returncode == 0, r.stderr
    return out, r.stdout




def test_ray_run_gives_the_in_process_results(service, inprocess, tmp_path):
    out, table = inprocess
    r = _run(_cmd(service, tmp_path / "out", *RAY))
    assert r.returncode == 0, r.stderr
    assert "ray: a local instance (127.0.0.1) started" in r.stderr
    assert "ETA" in r.stderr  # progress per finished task
    assert r.stdout == table  # the printed results table, row for row
    assert_same_results(out, tmp_path / "out")
    n_eval = len(evalkit.load_results(out).groupby(["checkpoint", "dataset"]))
    assert n_eval == 2 * 2 * N_CKPT


def _stored(out: Path) -> int:
    db = out / "results.sqlite"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            return conn.execute("SELECT count(*) FROM evaluations").fetchone()[0]
    except sqlite3.Error:  # not created yet
        return 0


def _evaluations(out: Path) -> dict[tuple[str, str], tuple[int, float]]:
    """(checkpoint, dataset) -> (run id, completed at) of the stored evaluations."""
    with sqlite3.connect(f"file:{out / 'results.sqlite'}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT checkpoint, dataset, run_id, completed_at "
                            "FROM evaluations").fetchall()
    return {(c, d): (r, t) for c, d, r, t in rows}


def _session_pids(sid: int) -> list[int]:
    """Processes of a session (what the killed driver started: Ray's daemons and
    workers), to end them by id."""
    pids = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                if os.getsid(int(p.name)) == sid:
                    pids.append(int(p.name))
    return pids


def test_ray_run_resumes_after_kill9_of_the_driver(service, inprocess, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen(_cmd(service, out, *RAY), env=_env(), start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 400
        while _stored(out) < 1 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    finally:
        for pid in _session_pids(proc.pid):  # Ray's processes left by the dead driver
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    stored = _stored(out)
    # the driver died of the kill (not of its own error, not after finishing), mid-run
    assert proc.returncode == -signal.SIGKILL, f"driver exited {proc.returncode} by itself"
    assert 1 <= stored < 2 * 2 * N_CKPT, f"killed after {stored} evaluations"
    before = _evaluations(out)
    r = _run(_cmd(service, out, *RAY))
    assert r.returncode == 0, r.stderr
    assert_same_results(inprocess[0], out)
    after = _evaluations(out)
    # resumed, not redone: what the killed run stored is kept as it was (same run, same
    # time), and the resumed run stored exactly the rest
    assert {k: after[k] for k in before} == before
    assert len(after) == 2 * 2 * N_CKPT and len(set(after) - set(before)) == len(after) - stored
    with Store(out, create=False) as store:  # nothing counted twice, nothing archived
        assert store.conn.execute("SELECT count(*) FROM evaluation_history").fetchone()[0] == 0


class FailingFamily:
    """A metric family whose name cannot be read: the unit raises (not a checkpoint
    error). Each attempt appends a line to ``log`` so the test counts Ray's retries."""

    metrics = ("never",)

    def __init__(self, log: str):
        self.log = log

    @property
    def name(self) -> str:
        with open(self.log, "a") as f:
            f.write("attempt\n")
        raise RuntimeError("broken family")


@pytest.fixture(scope="module")
def local_ray():
    from evalkit.execute.ray_executor import RayExecutor

    ex = RayExecutor(workers=1)
    yield ex
    ex.close()


def test_workers_with_another_evalkit_version_are_refused(local_ray, tmp_path):
    from evalkit.execute.ray_executor import VersionMismatch

    with pytest.raises(VersionMismatch, match="install the same evalkit version"):
        local_ray.check_workers(tmp_path, "0.0.0-other")
    local_ray.check_workers(tmp_path, evalkit.__version__)  # the same: accepted
    assert local_ray.shared_fs  # a local worker sees OUT
    assert not list((tmp_path / "outputs").iterdir())  # the probe file is removed


def test_a_failing_task_is_retried_once_then_a_failed_checkpoint(local_ray, service, tmp_path):
    from evalkit.execute.executors import WorkUnit
    from evalkit.inputs.checkpoints.discover import discover_checkpoints

    ref = discover_checkpoints(service / "checkpoints" / "car")[0]
    log = tmp_path / "attempts.txt"
    unit = WorkUnit(ref=ref, domain="car", checkpoint_hash=ref.content_hash(),
                    todo=[("heldout/car", ["x"])], reference=None, image_size=SIZE,
                    batch_size=4, feature_extractor=None, device="cpu", out_dir=tmp_path,
                    shared_fs=True, n_families=1, evalkit_version=evalkit.__version__)
    (res,) = list(local_ray.run([unit], {}, [FailingFamily(str(log))]))
    assert res.error.startswith("Ray task failed twice: RuntimeError") and "broken family" \
        in res.error
    assert log.read_text().count("attempt") == 2  # the first try and one retry
