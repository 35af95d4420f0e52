"""The fault suite's scenario and bookkeeping (benchmarks/faults.py runs the faults): a small
seed-format run with its clean reference results, and how a trial's results are compared
with them (rows lost, rows duplicated, leftovers, exit codes and messages)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]

KEY = ["checkpoint", "dataset", "metric"]
TEMP_MARKERS = (".tmp", ".old")


@dataclass
class Outcome:
    """The tally of one fault over its trials."""

    fault: str
    trials: int = 0
    survived: int = 0
    lost: int = 0
    duplicated: int = 0
    notes: list[str] = field(default_factory=list)
    skipped: str | None = None

    def add(self, lost: int, duplicated: int, problems: list[str]) -> None:
        self.trials += 1
        self.lost += lost
        self.duplicated += duplicated
        if not lost and not duplicated and not problems:
            self.survived += 1
        self.notes.extend(problems[:3])


class Scenario:
    """The run folder, the data, the environment and the clean reference results."""

    def __init__(self, base: Path, checkpoints: int = 6, pairs: int = 8, size: int = 32):
        self.base = base
        self.run_dir = base / "run"
        self.heldout = base / "heldout"
        self.size = size
        empty = base / "no-weights"
        empty.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), "TORCH_HOME": str(empty),
                    "EVALKIT_WEIGHTS_DIR": str(empty), "TF_CPP_MIN_LOG_LEVEL": "3"}
        if not self.run_dir.is_dir():
            code = ("from pathlib import Path; from tests.seed_reference import "
                    "save_seed_checkpoint; from tests.conftest import make_ab_folder; "
                    f"make_ab_folder(Path({str(self.heldout)!r}), n={pairs}); "
                    f"p = Path({str(self.run_dir)!r}); p.mkdir(); "
                    f"save_seed_checkpoint(p, n={checkpoints}, hidden=4)")
            subprocess.run([sys.executable, "-c", code], env=self.env, cwd=ROOT, check=True,
                           capture_output=True)
        self.ref_out = base / "reference"
        t0 = time.perf_counter()
        r = self.run(self.ref_out)
        self.clean_seconds = time.perf_counter() - t0
        if r.returncode != 0:
            raise SystemExit(f"the clean reference run failed:\n{r.stderr[-3000:]}")
        self.reference = current(self.ref_out)

    def args(self, out: Path, *extra: str, heldout: Path | None = None,
             quiet: bool = True) -> list[str]:
        return [sys.executable, "-m", "evalkit.cli", "run", str(self.run_dir), "--heldout",
                str(heldout or self.heldout), "--out", str(out), "--image-size",
                str(self.size), *(["--quiet"] if quiet else []), *extra]

    def run(self, out: Path, *extra: str, heldout: Path | None = None,
            timeout: float = 900) -> subprocess.CompletedProcess:
        return subprocess.run(self.args(out, *extra, heldout=heldout), env=self.env, cwd=ROOT,
                              capture_output=True, text=True, timeout=timeout)

    def start(self, out: Path, *extra: str, quiet: bool = True) -> subprocess.Popen:
        return subprocess.Popen(self.args(out, *extra, quiet=quiet), env=self.env, cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def evalkit(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "evalkit.cli", *args], env=self.env,
                              cwd=ROOT, capture_output=True, text=True, timeout=600)

    def copy_reference(self, dest: Path) -> Path:
        shutil.copytree(self.ref_out, dest)
        return dest


# -- comparing ---------------------------------------------------------------------------
def current(out: Path) -> pd.DataFrame:
    import evalkit

    return evalkit.load_results(out)


def _same(a: pd.Series, b: pd.Series) -> bool:
    if a["status"] != b["status"] or int(a["n"]) != int(b["n"]):
        return False
    va, vb = a["value"], b["value"]
    if pd.isna(va) or pd.isna(vb):
        return pd.isna(va) and pd.isna(vb)
    return abs(float(va) - float(vb)) <= 1e-9 * max(1.0, abs(float(vb)))


def compare(reference: pd.DataFrame, got: pd.DataFrame, key: list[str] = KEY
            ) -> tuple[int, int]:
    """(rows lost or different, rows duplicated) of ``got`` against ``reference``."""
    dup = int(got.duplicated(key).sum())
    got = got.drop_duplicates(key).set_index(key)
    lost = 0
    for _, row in reference.iterrows():
        k = tuple(row[c] for c in key)
        if k not in got.index or not _same(got.loc[k], row):
            lost += 1
    return lost, dup


def table_duplicates(out: Path) -> int:
    """Rows beyond one per key in the database tables themselves."""
    db = out / "results.sqlite"
    if not db.exists():
        return 0
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        n = 0
        for table, key in (("metrics", "checkpoint, dataset, metric"),
                           ("sample_metrics", "checkpoint, dataset, sample_id, metric"),
                           ("evaluations", "checkpoint, dataset")):
            n += con.execute(f"SELECT COALESCE(SUM(c - 1), 0) FROM (SELECT COUNT(*) c "
                             f"FROM {table} GROUP BY {key})").fetchone()[0]
    return int(n)


def leftovers(out: Path) -> list[str]:
    """Temporary folders/files left in OUT (after a run that finished)."""
    return [str(p.relative_to(out)) for p in out.rglob("*")
            if any(m in p.name for m in TEMP_MARKERS) and p.name[-1].isdigit()]


def problems_of(r: subprocess.CompletedProcess | None, codes: set[int], words: list[str],
                what: str) -> list[str]:
    if r is None:
        return []
    out = []
    if r.returncode not in codes:
        out.append(f"{what}: exit {r.returncode}, expected {sorted(codes)}: "
                   f"{r.stderr.strip()[-300:]}")
    if "Traceback" in r.stderr:
        out.append(f"{what}: traceback: {r.stderr.strip()[-300:]}")
    for w in words:
        if w not in r.stderr + r.stdout:
            out.append(f"{what}: no {w!r} in its output")
    return out


def check_finished(sc: Scenario, out: Path, outcome: Outcome, problems: list[str],
                   reference: pd.DataFrame | None = None) -> None:
    """Compare OUT's current results with the reference and tally the trial."""
    try:
        got = current(out)
    except Exception as exc:
        outcome.add(len(sc.reference), 0, problems + [f"results unreadable: {exc}"])
        return
    lost, dup = compare(sc.reference if reference is None else reference, got)
    dup += table_duplicates(out)
    left = leftovers(out)
    if left:
        problems = problems + [f"left behind: {left[:3]}"]
    outcome.add(lost, dup, problems)


def userns_sh(script: str, env: dict) -> subprocess.CompletedProcess | None:
    """Run a shell script as root of a new user+mount namespace, or None when impossible."""
    if shutil.which("unshare") is None:
        return None
    return subprocess.run(["unshare", "-rm", "sh", "-c", script], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=1800)


