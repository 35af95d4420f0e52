"""The HED-vs-drawn mismatch table on a hand-built results frame."""

from __future__ import annotations

import pandas as pd
import pytest

from evalkit.decide.mismatch import COLUMNS, mismatch_table


def _row(ckpt, step, dataset, metric, value, n=10, status="ok", kind=None):
    return {"checkpoint": ckpt, "step": step, "dataset": dataset, "metric": metric,
            "value": value, "n": n, "ci_low": None, "ci_high": None, "status": status,
            **({"kind": kind} if kind else {})}


@pytest.fixture
def results() -> pd.DataFrame:
    rows = []
    for ckpt, step, off in (("ckpt-2", 2, 0.0), ("ckpt-1", 1, 0.1)):
        rows += [
            _row(ckpt, step, "heldout", "fid", 40.0 + off, n=50),
            _row(ckpt, step, "sketches", "fid", 90.0 + off, n=22),
            _row(ckpt, step, "heldout", "kid", 0.02, n=50),
            _row(ckpt, step, "sketches", "kid", 0.05, n=22),
            _row(ckpt, step, "heldout", "adherence_f1", 0.6 - off, n=50),
            _row(ckpt, step, "sketches", "adherence_f1", 0.4 - off, n=22),
            _row(ckpt, step, "heldout", "ssim", 0.5, n=50),          # sketches: no targets
            _row(ckpt, step, "sketches", "ssim", None, n=0, status="skipped"),
            _row(ckpt, step, "heldout", "lpips", 0.3, n=50),
        ]
    rows.append(_row("ckpt-2", 2, "sketches", "adherence_recall", 0.7))  # heldout lacks it
    rows.append(_row("ckpt-2", 2, "heldout", "psnr", 20.0))
    rows.append(_row("ckpt-2", 2, "sketches", "psnr", 25.0))  # better on drawings
    return pd.DataFrame(rows)


def test_side_by_side_with_difference(results):
    t = mismatch_table(results)
    assert list(t.columns) == COLUMNS
    # only metrics ok on both datasets
    assert set(t["metric"]) == {"fid", "kid", "adherence_f1", "psnr"}
    assert list(t["checkpoint"].drop_duplicates()) == ["ckpt-1", "ckpt-2"]  # by step
    fid = t[(t.checkpoint == "ckpt-1") & (t.metric == "fid")].iloc[0]
    assert fid["hed"] == pytest.approx(40.1) and fid["drawn"] == pytest.approx(90.1)
    assert fid["delta"] == pytest.approx(50.0) and fid["worse_on_drawn"]
    assert fid["hed_n"] == 50 and fid["drawn_n"] == 22
    f1 = t[(t.checkpoint == "ckpt-2") & (t.metric == "adherence_f1")].iloc[0]
    assert f1["delta"] == pytest.approx(-0.2) and f1["worse_on_drawn"]  # higher is better
    psnr = t[t.metric == "psnr"].iloc[0]
    assert psnr["delta"] == pytest.approx(5.0) and not psnr["worse_on_drawn"]
    assert set(t["hed_dataset"]) == {"heldout"} and set(t["drawn_dataset"]) == {"sketches"}
    assert len(t) == 2 * 3 + 1


def test_dataset_names_by_kind_or_explicit(results):
    renamed = results.replace({"dataset": {"heldout": "hed_car", "sketches": "kids"}})
    with pytest.raises(ValueError, match="cannot tell"):
        mismatch_table(renamed)
    by_kind = renamed.assign(kind=renamed["dataset"].map({"hed_car": "heldout",
                                                          "kids": "sketches"}))
    assert len(mismatch_table(by_kind)) == 7
    assert len(mismatch_table(renamed, hed="hed_car", drawn="kids")) == 7
    with pytest.raises(ValueError, match="not in the results"):
        mismatch_table(renamed, hed="heldout", drawn="kids")


def test_nothing_in_common_gives_an_empty_table(results):
    only = results[results.metric.isin(["ssim", "lpips"])]
    t = mismatch_table(only)
    assert t.empty and list(t.columns) == COLUMNS
