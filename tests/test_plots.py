"""The report's plots: metric against training step on whole steps only (issue: ticks at
1.25 and 1.75), with the selected checkpoint marked."""

from __future__ import annotations

import pandas as pd
import pytest

from evalkit.present.report import plots


@pytest.fixture
def figures(monkeypatch):
    made = []
    real = plots._figure

    def keep(*a, **k):
        made.append(real(*a, **k))
        return made[-1]

    monkeypatch.setattr(plots, "_figure", keep)
    return made


def _results(steps: list[int]) -> pd.DataFrame:
    return pd.DataFrame([{"checkpoint": f"ckpt-{s}", "step": s, "dataset": "heldout",
                          "metric": "l1", "value": 0.5 - 0.01 * s, "ci_low": 0.4,
                          "ci_high": 0.6, "n": 8, "status": "ok"} for s in steps])


@pytest.mark.parametrize("steps", [[1, 2], [3, 7, 8], list(range(1, 41))])
def test_step_ticks_are_whole_steps(tmp_path, figures, steps):
    out = plots.metric_plots(_results(steps), tmp_path, {"l1": "lower"}, selected_step=steps[0])
    assert [o["metric"] for o in out] == ["l1"] and (tmp_path / out[0]["file"]).is_file()
    ax = figures[-1].axes[0]
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks), ticks
    if len(steps) <= 12:
        assert ticks == steps
