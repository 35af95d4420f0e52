"""Shared rendering helpers of the report: the jinja2 environment and value formatting."""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path
from typing import Any

import pandas as pd

TEMPLATES = Path(__file__).parent / "templates"
#: Canonical metric order in tables.
METRIC_ORDER = ["l1", "ssim", "psnr", "lpips", "kid", "fid", "adherence_f1",
                "adherence_precision", "adherence_recall"]
#: Flags shown as a badge beside the value they qualify.
BADGE_FLAGS = {"biased_small_n": "biased: small n", "comparable": "not comparable"}


@functools.cache
def _env():
    """The one jinja2 environment of the process (templates compile once, not once per
    domain page; nothing changes it after it is made)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             autoescape=True, undefined=jinja2.StrictUndefined,
                             trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _num
    env.filters["pct"] = lambda v: "–" if v is None or _nan(v) else f"{float(v):.0%}"
    return env


def _nan(v: Any) -> bool:
    try:
        return v is None or pd.isna(v) or (isinstance(v, float) and not math.isfinite(v))
    except (TypeError, ValueError):
        return False


def _num(v: Any, digits: int = 4) -> str:
    """A value for display: 4 significant digits, ``–`` when missing."""
    if _nan(v):
        return "–"
    v = float(v)
    if v != 0 and (abs(v) >= 1e5 or abs(v) < 1e-3):
        return f"{v:.{digits - 1}e}"
    return f"{v:.{digits}g}"


def _flags(raw: Any) -> dict:
    if not raw or _nan(raw):
        return {}
    try:
        f = json.loads(raw) if isinstance(raw, str) else dict(raw)
    except (TypeError, ValueError):
        return {"flags": str(raw)}
    return f if isinstance(f, dict) else {"flags": str(f)}


def _badges(flags: dict) -> list[str]:
    out = []
    if flags.get("biased_small_n"):
        out.append(BADGE_FLAGS["biased_small_n"])
    if flags.get("comparable") is False:
        out.append(BADGE_FLAGS["comparable"])
    return out


def _metric_sort_key(m: str) -> tuple:
    return (METRIC_ORDER.index(m), m) if m in METRIC_ORDER else (len(METRIC_ORDER), m)
