"""The report's plots (matplotlib, Agg canvas, PNG files; no pyplot global state).

* :func:`metric_plots`: small multiples, one small panel per metric on a shared step axis:
  value against training step with its 95 % CI band, one grey line per dataset (the
  held-out and hand-drawn tracks on the same axes), each checkpoint's point in its own
  colour (:mod:`evalkit.present.report.colors`, the same as everywhere in the report), the
  selected checkpoint marked; the line/band legend in the first panel only.
* :func:`mismatch_plots`: one scatter per metric present on both tracks: x = value on the
  held-out (HED-edge) inputs, y = value on the hand-drawn inputs, one point per checkpoint
  labelled with its step, and the y = x diagonal. Points far from the diagonal are the
  distribution mismatch the seed team chose checkpoints by eye to avoid.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from evalkit.present.report.render import _metric_sort_key

#: Track colours (colour-blind safe, Okabe-Ito): first dataset, second, ...
COLORS = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"]
_SAFE = re.compile(r"[^A-Za-z0-9_-]+")


def _figure(w: float = 4.6, h: float = 3.0):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _arrow(direction: str | None) -> str:
    return {"lower": " (lower is better)", "higher": " (higher is better)"}.get(direction or "",
                                                                                 "")


def _finish(fig, ax, metric: str, directions: dict[str, str], dest: Path, prefix: str,
            legend: bool = True) -> str:
    """Title, ticks, grid and legend shared by every plot; save as PNG and return its name."""
    ax.set_title(metric + _arrow(directions.get(metric)), fontsize=9)
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)
    if legend:
        ax.legend(fontsize=6, frameon=False)
    fig.tight_layout()
    name = f"{prefix}_{_SAFE.sub('_', metric)}.png"
    fig.savefig(dest / name)
    return name


def _integer_steps(ax, steps: pd.Series) -> None:
    """Ticks on whole training steps only (never 1.25 or 1.75); with few checkpoints,
    exactly their steps."""
    from matplotlib.ticker import FixedLocator, MaxNLocator

    uniq = sorted({int(s) for s in steps.dropna()})
    if 0 < len(uniq) <= 12:
        ax.xaxis.set_major_locator(FixedLocator(uniq))
    else:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))


#: Line style and marker per track (first dataset, second, ...): the colour belongs to
#: the checkpoint, so tracks differ by shape.
TRACK_STYLES = [("-", "o"), ("--", "s"), (":", "^"), ("-.", "D")]
LINE = "#8a8f96"


def metric_plots(results: pd.DataFrame, dest: Path, directions: dict[str, str],
                 selected_step: int | None = None,
                 colors: dict[str, str] | None = None) -> list[dict]:
    """Small multiples: ``dest/metric_<name>.png`` per metric with ok values, one small
    panel each (3.3 x 2.5 in at 110 dpi) on the same step axis (same limits and ticks in
    every panel). Per track a grey line (style per track) with its grey 95 % CI band; each
    checkpoint's point in its colour (``colors``, default
    :func:`evalkit.present.report.colors.checkpoint_colors` of ``results``), the selected
    one larger with a black edge and a dashed vertical line. Returns ``[{"metric", "file"
    (name relative to dest), "datasets"}]``."""
    from evalkit.present.report.colors import checkpoint_colors

    dest.mkdir(parents=True, exist_ok=True)
    ok = results[(results["status"] == "ok") & results["value"].notna()]
    if colors is None:
        colors = checkpoint_colors(zip(results["checkpoint"], results["step"], strict=True))
    out = []
    datasets = list(dict.fromkeys(results["dataset"]))
    steps = ok["step"].dropna().astype(float)
    xlim = None if steps.empty else (steps.min() - 0.5, steps.max() + 0.5)
    for j, metric in enumerate(sorted(dict.fromkeys(ok["metric"]), key=_metric_sort_key)):
        sub = ok[ok["metric"] == metric]
        fig = _figure(3.3, 2.5)
        ax = fig.add_subplot(1, 1, 1)
        for i, ds in enumerate(datasets):
            d = sub[sub["dataset"] == ds].sort_values("step")
            if d.empty:
                continue
            ls, marker = TRACK_STYLES[i % len(TRACK_STYLES)]
            x = d["step"].to_numpy(float)
            y = d["value"].to_numpy(float)
            ax.plot(x, y, ls=ls, color=LINE, lw=1.2, zorder=2,
                    label=f"{ds} (n={int(d['n'].max())})")
            lo = d["ci_low"].to_numpy(float)
            hi = d["ci_high"].to_numpy(float)
            has = np.isfinite(lo) & np.isfinite(hi)
            if has.any():
                ax.fill_between(x[has], lo[has], hi[has], color=LINE, alpha=0.18, lw=0,
                                label="95% CI" if i == 0 else None)
            for xi, yi, ck in zip(x, y, d["checkpoint"], strict=True):
                chosen = selected_step is not None and xi == selected_step
                c = colors.get(str(ck), LINE)
                ax.plot([xi], [yi], marker=marker, ls="none", color=c, zorder=4,
                        ms=8 if chosen else 5.5, mfc=c, mec="#111" if chosen else c,
                        mew=1.4 if chosen else 0.5)
        if selected_step is not None:
            ax.axvline(selected_step, color="#444", ls="--", lw=1, label="selected", zorder=1)
        if xlim is not None:
            ax.set_xlim(*xlim)
        ax.set_xlabel("training step", fontsize=7)
        _integer_steps(ax, steps if not steps.empty else sub["step"])
        name = _finish(fig, ax, metric, directions, dest, "metric", legend=j == 0)
        out.append({"metric": metric, "file": name,
                    "datasets": sorted(sub["dataset"].unique().tolist())})
    return out


def mismatch_plots(results: pd.DataFrame, dest: Path, directions: dict[str, str],
                   selected: str | None = None, colors: dict[str, str] | None = None
                   ) -> list[dict]:
    """Write ``dest/mismatch_<metric>.png`` per metric ok on both tracks (each checkpoint's
    point in its colour, as in :func:`metric_plots`); returns ``[{"metric", "file", "hed",
    "drawn"}]``, empty when there is no hand-drawn track."""
    from evalkit.decide.mismatch import mismatch_table
    from evalkit.present.report.colors import checkpoint_colors

    if colors is None:
        colors = checkpoint_colors(zip(results["checkpoint"], results["step"], strict=True))

    try:
        table = mismatch_table(results)
    except ValueError:
        return []
    dest.mkdir(parents=True, exist_ok=True)
    out = []
    for metric in dict.fromkeys(table["metric"]):
        t = table[table["metric"] == metric]
        fig = _figure(4.0, 3.4)
        ax = fig.add_subplot(1, 1, 1)
        x, y = t["hed"].to_numpy(float), t["drawn"].to_numpy(float)
        is_sel = (t["checkpoint"] == selected).to_numpy()
        cs = np.array([colors.get(str(c), COLORS[0]) for c in t["checkpoint"]])
        ax.scatter(x[~is_sel], y[~is_sel], s=26, c=list(cs[~is_sel]), zorder=3,
                   label="checkpoint")
        if is_sel.any():
            ax.scatter(x[is_sel], y[is_sel], s=90, marker="*", c=list(cs[is_sel]),
                       edgecolors="#111", linewidths=0.8, zorder=4,
                       label=f"selected ({selected})")
        for xi, yi, step in zip(x, y, t["step"], strict=True):
            ax.annotate(str(step), (xi, yi), textcoords="offset points", xytext=(3, 3),
                        fontsize=7, color="#333")
        lo = float(np.nanmin(np.concatenate([x, y])))
        hi = float(np.nanmax(np.concatenate([x, y])))
        pad = (hi - lo) * 0.08 or abs(hi) * 0.05 or 0.01
        ax.plot([lo - pad, hi + pad], [lo - pad, hi + pad], color="#999", lw=1, ls=":",
                label="same on both")
        ax.set_xlim(lo - pad, hi + pad)
        ax.set_ylim(lo - pad, hi + pad)
        hed, drawn = t["hed_dataset"].iloc[0], t["drawn_dataset"].iloc[0]
        ax.set_xlabel(f"{hed} (HED edges)", fontsize=8)
        ax.set_ylabel(f"{drawn} (hand-drawn)", fontsize=8)
        name = _finish(fig, ax, metric, directions, dest, "mismatch")
        out.append({"metric": metric, "file": name, "hed": hed, "drawn": drawn})
    return out
