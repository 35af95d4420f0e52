"""Read paths on a truly read-only folder (a read-only bind mount in a user namespace, so
that it holds even for root): results, load_results, select, report --dest, gate, baseline.
Skipped with the reason where such a mount cannot be made."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def readonly_sh(folder: Path, script: str) -> subprocess.CompletedProcess:
    """Run ``script`` (sh) with ``folder`` mounted read-only over itself."""
    f = shlex.quote(str(folder))
    inner = (f"mount --bind {f} {f} && mount -o remount,bind,ro {f} {f} && "
             f"cd {shlex.quote(str(ROOT))} && {script}")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(["unshare", "-rm", "sh", "-c", inner], capture_output=True,
                          text=True, env=env, timeout=600)


@pytest.fixture(scope="module")
def can_mount(tmp_path_factory):
    if shutil.which("unshare") is None:
        pytest.skip("needs unshare(1) to make a read-only mount")
    d = tmp_path_factory.mktemp("probe")
    r = readonly_sh(d, f"touch {shlex.quote(str(d))}/x")
    if "Read-only file system" not in r.stderr:
        pytest.skip(f"cannot make a read-only bind mount here: {r.stderr.strip()[:200]}")


@pytest.fixture(scope="module")
def finished(tmp_path_factory, can_mount):
    from evalkit.execute.engine import RunOptions, evaluate_run
    from evalkit.inputs.data.pairs import load_pairs
    from evalkit.measure.paired import PairedMetrics
    from tests.conftest import make_ab_folder
    from tests.seed_reference import save_seed_checkpoint

    d = tmp_path_factory.mktemp("ro")
    heldout = make_ab_folder(d / "heldout", n=4)
    (d / "run").mkdir()
    save_seed_checkpoint(d / "run", n=2, hidden=4)
    evaluate_run(d / "run", d / "out", [load_pairs(heldout, size=32, name="heldout")],
                 RunOptions(image_size=32, progress=False), families=[PairedMetrics()],
                 log=lambda s: None)
    (d / "evalkit.toml").write_text(
        '[[gate.rules]]\ndataset = "heldout"\nmetric = "l1"\nmax = 5\n')
    return d


def evalkit_cmd(*args: str) -> str:
    return " ".join([shlex.quote(sys.executable), "-m", "evalkit.cli",
                     *map(shlex.quote, args)])


def test_read_commands_work_on_a_read_only_folder(finished):
    out = finished / "out"
    before = sorted(p.name for p in out.iterdir())
    py = shlex.quote(sys.executable)
    script = " ; echo RC=$? ; ".join([
        evalkit_cmd("results", str(out), "--format", "csv"),
        evalkit_cmd("results", str(out), "--all"),
        f"{py} -c 'import evalkit; print(len(evalkit.load_results(\"{out}\")), \"ROWS\")'",
        evalkit_cmd("select", str(out)),
        evalkit_cmd("gate", str(out), "--config", str(finished / "evalkit.toml")),
        evalkit_cmd("baseline", str(out), "--checkpoint", "ckpt-2", "--write",
                    str(finished / "base.json")),
        evalkit_cmd("report", str(out)),
        evalkit_cmd("run", str(finished / "run"), "--heldout", str(finished / "heldout"),
                    "--out", str(out), "--image-size", "32", "--quiet", "--no-report"),
    ]) + " ; echo RC=$?"
    r = readonly_sh(out, script)
    codes = [int(line[3:]) for line in r.stdout.splitlines() if line.startswith("RC=")]
    assert codes == [0, 0, 0, 0, 0, 0, 2, 2], r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert "6 ROWS" in r.stdout  # 2 checkpoints x (l1, ssim, psnr)
    assert "read-only: selection.json not written" in r.stderr
    assert "pass --dest DIR" in r.stderr
    assert "cannot write to" in r.stderr and "--out folder you can write to" in r.stderr
    assert (finished / "base.json").is_file()
    assert sorted(p.name for p in out.iterdir()) == before


def test_report_dest_and_a_wal_store_left_by_a_kill(finished, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(finished / "out", out)
    # a writer killed mid-run leaves the database in WAL mode with -wal/-shm files
    db = str(out / "results.sqlite")
    code = (f"import os, sqlite3; c = sqlite3.connect({db!r}); "
            "c.execute('PRAGMA journal_mode=WAL'); "
            "c.execute(\"UPDATE runs SET argv='killed'\"); c.commit(); os._exit(9)")
    subprocess.run([sys.executable, "-c", code])
    assert (out / "results.sqlite-wal").exists()
    dest = tmp_path / "rep"
    r = readonly_sh(out, evalkit_cmd("results", str(out), "--format", "csv") + " && " +
                    evalkit_cmd("report", str(out), "--dest", str(dest)))
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("ckpt-") == 6 and (dest / "index.html").is_file()
