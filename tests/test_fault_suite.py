"""A fast subset of the fault suite (benchmarks/faults.py): the real CLI killed with -9,
terminated, and out of disk on a small tmpfs, each compared with a clean run. The full suite (>= 20 kills, every fault) is `python benchmarks/faults.py`."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_suite():
    spec = importlib.util.spec_from_file_location("evalkit_faults_suite",
                                                  ROOT / "benchmarks" / "faults.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_fault_suite_subset(tmp_path):
    suite = load_suite()
    lines: list[str] = []
    # (damaged, read-only and tampered stores are tested in-process elsewhere, faster)
    outcomes = suite.run_suite(tmp_path, only=["kill9", "sigterm", "diskfull"],
                               kills=1, trials=1, seed=3, log=lines.append)
    assert [o.fault.split()[0] for o in outcomes] == ["kill", "SIGTERM", "disk"]
    for o in outcomes:
        if o.skipped:
            continue  # e.g. no tmpfs / user namespaces here: the reason is in o.skipped
        assert o.trials >= 1
        assert (o.survived, o.lost, o.duplicated) == (o.trials, 0, 0), (o.fault, o.notes)
    # the comparison itself can fail: a lost row is counted
    ref = suite.current(tmp_path / "reference")
    assert suite.compare(ref, ref.iloc[1:]) == (1, 0)
    assert suite.compare(ref, ref.assign(value=ref.value + 1).iloc[:3])[0] == len(ref)
    assert suite.compare(ref, pd.concat([ref, ref.iloc[:2]]))[1] == 2
