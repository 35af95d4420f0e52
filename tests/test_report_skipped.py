"""A metric no checkpoint could compute is said once (metric, datasets, reason with its
fix), not as a column of 'skipped' cells with one footnote per dataset."""

from __future__ import annotations

import pandas as pd

from evalkit.present.report.skipped import unmeasured, unmeasured_pairs

WHY_FX = ("fid/kid skipped: weights file weights-inception.pth not found; run 'evalkit weights "
          "fetch' on a connected machine")
WHY_LP = "lpips skipped: weights file alexnet.pth not found; run 'evalkit weights fetch'"


def _row(ck, ds, metric, value, status="ok", reason=None):
    return {"checkpoint": ck, "dataset": ds, "metric": metric, "value": value,
            "status": status, "reason": reason}


def test_each_reason_once_with_its_metrics_and_datasets():
    rows = []
    for ck in ("ckpt-1", "ckpt-2"):
        for ds in ("heldout/car", "sketches/car"):
            rows.append(_row(ck, ds, "l1", 0.3))
            rows += [_row(ck, ds, m, None, "skipped", WHY_FX) for m in ("fid", "kid")]
            rows.append(_row(ck, ds, "lpips", None, "skipped", WHY_LP))
    # one checkpoint failed a metric that others have: that is a cell, not "unmeasured"
    rows.append(_row("ckpt-1", "heldout/car", "ssim", None, "failed", "boom"))
    rows.append(_row("ckpt-2", "heldout/car", "ssim", 0.5))
    out = unmeasured(pd.DataFrame(rows))
    assert [(e["metric"], e["datasets"]) for e in out] == [
        ("fid, kid", ["heldout/car", "sketches/car"]),
        ("lpips", ["heldout/car", "sketches/car"])]
    assert out[0]["reason"].startswith("weights file weights-inception.pth not found")
    assert "evalkit weights fetch" in out[0]["reason"]
    pairs = unmeasured_pairs(out)
    assert ("sketches/car", "kid") in pairs and ("heldout/car", "ssim") not in pairs
    assert len(pairs) == 6
