"""One colour per checkpoint, the same on every part of a domain's report (ranking table,
head-to-head matrix, grid headers, plots).

Colours follow the checkpoints' order by (step, name) within the domain: the first gets
``PALETTE[0]``, the next ``PALETTE[1]``, ...; with more checkpoints than colours they
repeat. The palette is matplotlib's tab10 without its grey (grey draws the plots' lines and
CI bands), then tab20's light tints.
"""

from __future__ import annotations

from collections.abc import Iterable

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
           "#c49c94", "#f7b6d2", "#dbdb8d", "#9edae5"]


def checkpoint_colors(checkpoints: Iterable[tuple[str, int | float | None]]) -> dict[str, str]:
    """``{name: "#rrggbb"}`` for ``(name, step)`` pairs (a missing step sorts last)."""
    uniq = {str(n): s for n, s in checkpoints}

    def key(item: tuple[str, int | float | None]) -> tuple:
        name, step = item
        missing = step is None or step != step  # None or NaN
        return (missing, 0 if missing else float(step), name)

    order = sorted(uniq.items(), key=key)
    return {name: PALETTE[i % len(PALETTE)] for i, (name, _) in enumerate(order)}
