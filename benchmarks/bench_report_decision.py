"""What issue 24's report parts cost: ``render_report`` of this tree against an older tree.

Renders the report of an evaluated folder (a copy of ``--out``, e.g. the output of
``evalkit demo``) in a fresh process per render, alternating between ``--base`` (an older
evalkit source tree, e.g. ``git archive 6f2c6c0 | tar -x -C /tmp/base``) and this tree,
``--repeats`` times each. With ``--previous``, the copy also gets a
``selection.previous.json`` whose first domain deployed another checkpoint, so this tree
renders the "since the last selection" lines and ``report/compare.html`` (the heavier path).
Prints per-tree wall and CPU (user+system of the child) times, their medians, the ratios
and the 1-min load average.

Usage: ``.venv/bin/python benchmarks/bench_report_decision.py --out demo-out
--base /tmp/base [--repeats 3] [--previous] [--record]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

RENDER = "from evalkit.present.report.build import render_report; render_report({!r})"


def _render(tree: Path, out: Path) -> tuple[float, float]:
    """(wall s, child CPU s) of one render with ``tree`` first on the import path."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-c", RENDER.format(str(out))], check=True, cwd=tree,
                   env={**os.environ, "PYTHONPATH": str(tree)})
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _older_selection(out: Path) -> None:
    """``selection.previous.json``: the first domain deployed the runner-up."""
    doc = json.loads((out / "selection.json").read_text())
    entry = next(iter(doc["domains"].values()))
    ru = entry.get("runner_up") or {}
    entry.update(checkpoint=ru.get("checkpoint", "other"), step=ru.get("step"),
                 content_hash="older")
    (out / "selection.previous.json").write_text(json.dumps(doc))


def main() -> None:
    from benchmarks._record import Printer, record

    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True, help="an evaluated folder (copied)")
    ap.add_argument("--base", type=Path, required=True, help="older evalkit source tree")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--previous", action="store_true")
    ap.add_argument("--record", action="store_true")
    a = ap.parse_args()
    say = Printer()
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        out = Path(tmp) / "out"
        shutil.copytree(a.out, out, ignore=shutil.ignore_patterns("report"))
        if a.previous:
            _older_selection(out)
        times: dict[str, list[tuple[float, float]]] = {"base": [], "this": []}
        for _ in range(a.repeats):
            for name, tree in (("base", a.base), ("this", ROOT)):
                times[name].append(_render(tree, out))
        say(f"render_report of a copy of {a.out} ({'with' if a.previous else 'without'} an "
            f"earlier selection), {a.repeats} interleaved renders per tree; base = {a.base}")
        med = {}
        for name, ts in times.items():
            med[name] = (statistics.median(w for w, _ in ts), statistics.median(c for _, c in ts))
            say(f"{name:5} wall {', '.join(f'{w:.2f}' for w, _ in ts)} s (median "
                f"{med[name][0]:.2f}); CPU median {med[name][1]:.2f} s")
        say(f"this/base: wall {med['this'][0] / med['base'][0]:.3f}, CPU "
            f"{med['this'][1] / med['base'][1]:.3f}; 1-min load {os.getloadavg()[0]:.2f}")
    if a.record:
        print("recorded in", record(
            "bench_report_decision" + ("_previous" if a.previous else ""),
            "Report render cost of issue 24's parts" + (" (with an earlier selection)"
                                                        if a.previous else ""),
            "benchmarks/bench_report_decision.py" + (" --previous" if a.previous else ""),
            say.text))


if __name__ == "__main__":
    main()
