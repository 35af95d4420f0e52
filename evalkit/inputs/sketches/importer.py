"""One drawing into a sketch set, in one of two modes (``evalkit sketches import``).

* **digital** - what the drawing app sends the service (PNG/WebP exports with a clean or
  transparent background, and clean drawings saved as JPEG such as the seed's
  ``bmw_edge_drawn.jpg``): the file is stored **byte for byte**, nothing is cropped,
  rescaled, binarized or cleaned. The serving contract applies at evaluation time, exactly
  as in production. A file that the service would see blank or inverted (grey+alpha,
  palette transparency, light strokes on transparency) is refused with the cause, and so
  is every 16/32-bit file (:func:`deep_image_refusal`: the service clips its values, so it
  sees a few of the strokes at best): importing it would score a page nobody drew.
* **scan** - photos and scans of paper (:func:`evalkit.inputs.sketches.normalize.normalize_sketch`):
  lighting flattened, polarity fixed, binarized, specks that vanish at the served size
  removed (never marks as dark and wide as the strokes), the page padded to a square and
  resized; cropping to the strokes is opt-in (``fit``).

``auto`` (the default) picks scan when the background is uneven (a photo of paper) or dark
(light strokes on black), digital otherwise (clean or transparent background, whatever the
format); the reason is recorded. Either way :class:`Imported` lists what changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from evalkit.inputs.data.files import read_image
from evalkit.inputs.data.serving import mode_cause, served_defect, sketch_to_input
from evalkit.inputs.sketches.normalize import (
    DEFAULT_MARGIN,
    ink_map,
    normalize_sketch,
    stroke_width,
)

MODES = ("auto", "digital", "scan")


class ImportRefused(ValueError):
    """A drawing that cannot be imported in the chosen mode (message: why and the fix)."""


@dataclass
class Imported:
    """One imported drawing: ``data`` to write as ``<name><suffix>``, and what was done."""

    mode: str
    reason: str
    data: bytes | np.ndarray
    suffix: str
    changes: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    served: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        """One line: mode, why, what changed, and the sketch as served."""
        s = self.served
        served = (f"as served at {s['size']} px: {s['stroke_px']} stroke px, strokes "
                  f"{s['stroke_width_px']:.1f} px wide")
        return f"{self.mode} ({self.reason}): {'; '.join(self.changes)}; {served}"


def choose_mode(im: Image.Image) -> tuple[str, str]:
    """``(mode, reason)`` for ``auto``: scan for uneven or dark backgrounds, else digital."""
    _, info = ink_map(im)
    if info["ink_from"].startswith("alpha"):
        return "digital", "transparent background: an app export"
    if info["polarity"].startswith("inverted"):
        return "scan", "dark background: inverted or photographed, normalized to dark on white"
    if info["flattened"]:
        return "scan", (f"uneven background (spread {info['background_spread']:.2f}): a photo "
                        "or scan of paper")
    return "digital", "clean background: kept as the service receives it"


def served_stats(im: Image.Image, size: int) -> dict[str, Any]:
    """The drawing as the service serves it at ``size``: stroke pixels (< 0.5), width."""
    x = sketch_to_input(im, size)
    mask = x < 0.5
    return {"size": size, "stroke_px": int(mask.sum()),
            "stroke_width_px": round(stroke_width(mask), 3), "defect": served_defect(im, x)}


#: Modes with more than 8 bits per pixel, which the service's ``convert('L')`` clips.
DEEP_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def deep_image_refusal(im: Image.Image, size: int) -> str | None:
    """Why a 16/32-bit file cannot be stored byte for byte (None for other modes).

    ``convert('L')`` clips such values at 255 instead of scaling them, so the service sees
    only the few strokes darker than 255/65535; the message counts them against the
    strokes of the file scaled to 8 bits, and names the fixes.
    """
    if im.mode not in DEEP_MODES:
        return None
    arr = np.asarray(im, dtype=np.float64)
    top = 65535.0 if im.mode.startswith("I;16") else max(float(arr.max()), 1.0)
    proper = Image.fromarray(np.clip(arr / top * 255.0, 0, 255).astype(np.uint8), "L")
    drawn = int((sketch_to_input(proper, size) < 0.5).sum())
    seen = int((sketch_to_input(im, size) < 0.5).sum())
    cause = (mode_cause(im) or im.mode).split("; re-export")[0]
    return (f"{cause}: as served at {size} px the service would see {seen} of the "
            f"drawing's {drawn} stroke px; export it as an 8-bit PNG (or convert it: "
            "`magick in.png -depth 8 out.png`), or import it with --mode scan (which scales "
            "16-bit values and stores an 8-bit copy)")


def import_drawing(src: str | Path, mode: str = "auto", size: int = 256, fit: bool = False,
                   margin: float = DEFAULT_MARGIN) -> Imported:
    """Import one drawing file (see the module docstring). ``size``: the served size (and,
    in scan mode, the output side). Raises :class:`ImportRefused`, the normalizer's
    errors, or Pillow's for unreadable files."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    src = Path(src)
    im, note = read_image(src)
    reason = "chosen with --mode"
    if mode == "auto":
        mode, reason = choose_mode(im)
    if mode == "digital":
        if fit:
            raise ImportRefused("--fit crops the drawing: it applies to --mode scan only")
        deep = deep_image_refusal(im, size)
        if deep:
            raise ImportRefused(deep)
        stats = served_stats(im, size)
        if stats["defect"]:
            raise ImportRefused(f"{stats['defect']}; or import it with --mode scan (which "
                                "normalizes it, so it is no longer what the service receives)")
        changes = ["kept byte for byte (no crop, rescale, binarization or speck removal)"]
        if note:
            changes.append(note)
        return Imported(mode="digital", reason=reason, data=src.read_bytes(),
                        suffix=src.suffix.lower(), changes=changes,
                        info={"source_size": list(im.size), "source_mode": im.mode},
                        served=stats)
    out, info = normalize_sketch(im, size=size, margin=margin, fit=fit)
    out_im = Image.fromarray(out, mode="L")
    return Imported(mode="scan", reason=reason, data=out, suffix=".png",
                    changes=scan_changes(info) + ([note] if note else []), info=info,
                    served=served_stats(out_im, size))


def scan_changes(info: dict[str, Any]) -> list[str]:
    """What scan mode did to a drawing, in words, from :func:`normalize_sketch`'s info."""
    out = []
    if info.get("polarity", "").startswith("inverted"):
        out.append("inverted (light on dark -> dark on white)")
    if info.get("ink_from", "").startswith("alpha"):
        out.append("strokes taken from the alpha channel")
    if info.get("flattened"):
        out.append("uneven lighting flattened")
    out.append(f"binarized (threshold {info['threshold_high']:.2f})")
    out.append(f"{info['specks_removed']} speck(s) removed ({info['specks_removed_px']} px), "
               f"{info['small_marks_kept']} small pen mark(s) kept")
    w, h = info["source_size"]
    if info["fit"]:
        out.append(f"cropped to the strokes with a {info['margin']:.0%} margin")
    elif w != h:
        out.append(f"page padded from {w}x{h} to a square")
    out.append(f"resized to {info['size']}x{info['size']} (x{info['scale']:.3g} of the "
               f"{'crop' if info['fit'] else 'page'})")
    return out
