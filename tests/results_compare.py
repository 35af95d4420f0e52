"""Comparing two OUT folders to the last digit (executors, streaming, resumes)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

import evalkit
from evalkit.store.results import Store


def tables(out: Path) -> tuple[pd.DataFrame, pd.DataFrame, list]:
    res = evalkit.load_results(out).sort_values(["checkpoint", "dataset", "metric"])
    with Store(out, create=False) as store:
        per = store.sample_metrics()
        per = per.sort_values(list(per.columns[:4]))
        ckpts = store.checkpoints()[["name", "step", "status", "content_hash", "architecture"]]
    return (res.reset_index(drop=True), per.reset_index(drop=True),
            sorted(map(tuple, ckpts.values.tolist())))


def outputs(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): p.read_text() for p in out.glob("outputs/*/*/manifest.json")}


def assert_same_results(a: Path, b: Path) -> None:
    ra, pa, ca = tables(a)
    rb, pb, cb = tables(b)
    pd.testing.assert_frame_equal(ra, rb, check_exact=True)  # every value, every digit
    pd.testing.assert_frame_equal(pa, pb, check_exact=True)  # per-sample values too
    assert ca == cb
    assert outputs(a) == outputs(b)  # the same served PNGs (sha256 in the manifests)
