"""Normalize a real drawing (scan, phone photo of paper, app export) into a set sketch.

Output: a ``size`` x ``size`` uint8 image, strokes 0 on white 255, binary (only 0 and 255),
the drawing centred with a margin, what :func:`evalkit.inputs.data.serving.sketch_to_input` then
serves unchanged. Steps, in order (each recorded in the returned ``info``):

1. **Decode**: EXIF orientation applied (phone photos); 16-bit greyscale scaled to [0, 1].
2. **Ink map** ``ink`` in [0, 1] (1 = full stroke):

   * *transparent-background export* (RGBA/LA/P with at least :data:`TRANSPARENT_FRACTION`
     of the pixels transparent, alpha < 0.5): the strokes are the opaque pixels whatever
     their colour, ``ink = alpha`` (white-on-transparent exports too);
   * otherwise alpha (if any) is composited on white, the image converted to luminance
     ``L`` (ITU-R 601, Pillow's ``convert('L')``) in [0, 1].
3. **Polarity**: the background is the majority of pixels, so if ``median(L) < 0.5`` the
   drawing is light-on-dark and is inverted (``L = 1 - L``).
4. **Uneven lighting** (photos of paper): the background is estimated by a grey-level
   closing (flat square window, side ``max(15, min(H, W) // 20)`` px) which removes strokes
   narrower than the window. If that estimate varies (1st to 99th percentile spread >
   :data:`FLATTEN_SPREAD`), ``ink = clip((bg - L) / bg, 0, 1)``; otherwise ``ink = 1 - L``
   (a clean scan: no flattening, so filled areas survive).
5. **Binarize**: hysteresis thresholding (scikit-image ``apply_hysteresis_threshold``) with
   ``high = max(Otsu(ink), MIN_INK)`` and ``low = high / 2``: faint antialiased stroke
   pixels are kept where connected to clearly dark ones, isolated noise (JPEG ringing,
   paper grain) is not.
6. **Specks**: an 8-connected component is removed only when it is smaller than
   :data:`SPECK_SERVED_PX` x :data:`SPECK_SERVED_PX` *served* pixels (``area * s^2``, ``s``
   the served scale below) **and** it is not a mark as dark and as wide as the strokes
   (peak ink >= :data:`DARK_SHARE` x the strokes' median ink and component width >= the
   stroke width ``w``): star dots and dotted lines drawn with the same pen stay, JPEG and
   paper specks that would vanish at the served size go. Nothing else is removed: marks far
   from the main drawing (stars around a moon) are part of it.
7. **Frame**: by default the whole page is padded (white) to a centred square, so the
   drawing keeps its size and place on the page; with ``fit`` (opt-in, ``--fit``) it is
   cropped to the strokes and padded to a square whose side is the box's longer side
   divided by ``1 - 2 * margin``. ``s = size / side``.
8. **Resize** the binary mask to ``size`` (area averaging when shrinking, bilinear when
   enlarging), then threshold the coverage at ``min(0.5, 0.4 v)``, ``v`` the stroke width
   expected at the output (source width x scale): 0.5 for strokes at least a pixel wide, lower
   for thinner ones so that a fine pencil line on a large scan leaves a 1-px trace instead of
   vanishing. Stroke widths are otherwise kept as drawn (``evalkit sketches check`` flags
   outliers).

This is the *scan* import mode (photos and scans of paper). App exports are imported in
*digital* mode instead, unchanged (:mod:`evalkit.inputs.sketches.importer`).

Stroke width ``w`` (:func:`stroke_width`) = stroke area / skeleton length, in px: 1 for a
one-pixel line, ``w`` for a band of width ``w``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps
from scipy import ndimage as ndi
from skimage.filters import apply_hysteresis_threshold, threshold_otsu
from skimage.morphology import skeletonize

DEFAULT_SIZE = 256
DEFAULT_MARGIN = 0.08
#: coverage threshold for strokes thinner than a pixel at the output: ``min(0.5, 0.4 v)``
THIN_FACTOR = 0.4
#: specks: components under SPECK_SERVED_PX x SPECK_SERVED_PX served pixels may go ...
SPECK_SERVED_PX = 2.0
#: ... unless their peak ink reaches this share of the strokes' median ink and they are
#: as wide as the strokes (then they are marks drawn with the pen: dots, stars)
DARK_SHARE = 0.9
#: darkest ink below this is "no drawing" (and the floor of the Otsu threshold)
MIN_INK = 0.15
TRANSPARENT_FRACTION = 0.5
FLATTEN_SPREAD = 0.15
#: working resolution cap (longer side, px) for huge photos; area-averaged down first
MAX_WORK_SIDE = 2048


class NormalizeError(ValueError):
    """A drawing that cannot be normalized (empty, unreadable); the message says why."""


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width in px of a boolean stroke mask: ``area / skeleton length``.

    Exact for straight bands (a band ``w`` px wide and ``L`` long has area ``wL`` and a
    skeleton of ``L`` px); returns 0.0 for an empty mask.
    """
    mask = np.asarray(mask, dtype=bool)
    area = int(mask.sum())
    if area == 0:
        return 0.0
    length = int(skeletonize(mask).sum())
    return area / max(length, 1)


def _to_array(im: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """(luminance in [0, 1], alpha in [0, 1] or None) of any Pillow image."""
    im = ImageOps.exif_transpose(im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):
        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if a.max() > 255 else 255.0
        return np.clip(a / top, 0, 1), None
    if im.mode == "F":
        a = np.asarray(im, dtype=np.float64)
        return np.clip(a / (a.max() if a.max() > 1 else 1.0), 0, 1), None
    has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    if has_alpha:
        rgba = im.convert("RGBA")
        alpha = np.asarray(rgba.split()[3], dtype=np.float64) / 255.0
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        white.alpha_composite(rgba)
        lum = np.asarray(white.convert("L"), dtype=np.float64) / 255.0
        return lum, alpha
    return np.asarray(im.convert("L"), dtype=np.float64) / 255.0, None


def _shrink(a: np.ndarray, factor: float) -> np.ndarray:
    h, w = a.shape
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    return np.asarray(Image.fromarray(a.astype(np.float32), mode="F").resize(size, Image.BOX),
                      dtype=np.float64)


def ink_map(im: Image.Image) -> tuple[np.ndarray, dict[str, Any]]:
    """Steps 1-4: ``(ink in [0, 1], info)`` at (at most :data:`MAX_WORK_SIDE`) resolution."""
    info: dict[str, Any] = {"source_size": list(im.size), "source_mode": im.mode}
    lum, alpha = _to_array(im)
    longer = max(lum.shape)
    if longer > MAX_WORK_SIDE:
        f = MAX_WORK_SIDE / longer
        lum = _shrink(lum, f)
        alpha = _shrink(alpha, f) if alpha is not None else None
        info["work_scale"] = f
    transparent = float((alpha < 0.5).mean()) if alpha is not None else 0.0
    if alpha is not None and transparent >= TRANSPARENT_FRACTION:
        info["ink_from"] = "alpha (transparent-background export)"
        info["polarity"] = "strokes are the opaque pixels"
        info["flattened"] = False
        return np.clip(alpha, 0, 1), info
    info["ink_from"] = "luminance" + (" (alpha composited on white)" if alpha is not None else "")
    if np.median(lum) < 0.5:
        lum = 1.0 - lum
        info["polarity"] = "inverted (light strokes on dark) -> dark on white"
    else:
        info["polarity"] = "dark strokes on light"
    win = max(15, min(lum.shape) // 20)
    win += 1 - win % 2
    bg = ndi.grey_closing(lum, size=(win, win), mode="reflect")
    spread = float(np.percentile(bg, 99) - np.percentile(bg, 1))
    if spread > FLATTEN_SPREAD:
        ink = np.clip((bg - lum) / np.maximum(bg, 1e-3), 0, 1)
        info["flattened"] = True
    else:
        ink = 1.0 - lum
        info["flattened"] = False
    info["background_spread"] = round(spread, 4)
    return ink, info


def threshold_ink(ink: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """Step 5: hysteresis threshold (high = max(Otsu, MIN_INK), low = high / 2)."""
    if ink.size == 0 or float(ink.max()) < MIN_INK:
        raise NormalizeError(f"no strokes: the darkest mark has contrast {float(ink.max()):.3f} "
                             f"< {MIN_INK} against the background (empty drawing?)")
    try:
        otsu = float(threshold_otsu(ink))
    except ValueError:
        otsu = MIN_INK
    high = max(otsu, MIN_INK)
    mask = apply_hysteresis_threshold(ink, high / 2, high)
    if not mask.any():
        raise NormalizeError("no strokes after thresholding (empty drawing?)")
    return mask, {"threshold_high": round(high, 4), "threshold_low": round(high / 2, 4)}


def remove_specks(mask: np.ndarray, ink: np.ndarray, scale: float
                  ) -> tuple[np.ndarray, dict[str, Any]]:
    """Step 6: drop components under ``SPECK_SERVED_PX``^2 served px (``scale`` = served px
    per source px) unless they are as dark and as wide as the strokes."""
    w = stroke_width(mask)
    stroke_ink = float(np.median(ink[mask]))
    max_area = (SPECK_SERVED_PX / max(scale, 1e-9)) ** 2
    labels, n = ndi.label(mask, structure=np.ones((3, 3)))
    out = mask.copy()
    removed = kept_marks = 0
    for lab, sl in enumerate(ndi.find_objects(labels), start=1):
        if sl is None:
            continue
        comp = labels[sl] == lab
        area = int(comp.sum())
        if area >= max_area:
            continue
        dark = float(ink[sl][comp].max()) >= DARK_SHARE * stroke_ink
        if dark and stroke_width(comp) >= w:
            kept_marks += 1
            continue
        out[sl][comp] = False
        removed += 1
    if not out.any():
        raise NormalizeError("no strokes: only specks smaller than "
                             f"{SPECK_SERVED_PX:g}x{SPECK_SERVED_PX:g} served px remain "
                             "(empty drawing?)")
    return out, {"marks": n, "specks_removed": removed, "small_marks_kept": kept_marks,
                 "specks_removed_px": int(mask.sum() - out.sum()),
                 "speck_max_area_px": round(max_area, 2), "stroke_width_work_px": round(w, 3)}


def frame(mask: np.ndarray, size: int = DEFAULT_SIZE, margin: float = DEFAULT_MARGIN,
          fit: bool = False) -> tuple[np.ndarray, dict[str, Any]]:
    """Steps 7-8: pad the page (or, with ``fit``, the strokes' box plus ``margin``) to a
    centred square, resize to ``size``, threshold the coverage.

    Returns ``(uint8 size x size, info)``, strokes 0 on 255.
    """
    if not 0 <= margin < 0.5:
        raise ValueError(f"margin must be in [0, 0.5), got {margin}")
    if fit:
        rows, cols = np.nonzero(mask)
        r0, r1, c0, c1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        side = math.ceil(max(r1 - r0, c1 - c0) / (1 - 2 * margin))
    else:
        r0, r1, c0, c1 = 0, mask.shape[0], 0, mask.shape[1]
        side = max(mask.shape)
    crop = mask[r0:r1, c0:c1]
    canvas = np.zeros((side, side), dtype=bool)
    top, left = (side - crop.shape[0]) // 2, (side - crop.shape[1]) // 2
    canvas[top:top + crop.shape[0], left:left + crop.shape[1]] = crop
    scale = size / side
    w_src = stroke_width(crop)
    v = w_src * scale  # stroke width expected at the output, px
    threshold = min(0.5, THIN_FACTOR * v)
    pil = Image.fromarray(canvas.astype(np.float32), mode="F")
    resample = Image.BOX if scale < 1 else Image.BILINEAR
    cover = np.asarray(pil.resize((size, size), resample), dtype=np.float64)
    out_mask = cover >= threshold - 1e-9
    out = np.where(out_mask, 0, 255).astype(np.uint8)
    return out, {"fit": fit, "bbox": [int(c0), int(r0), int(c1), int(r1)],
                 "square_side": int(side), "scale": round(scale, 5),
                 "margin": margin if fit else 0.0, "size": size,
                 "stroke_width_source_px": round(w_src, 3),
                 "coverage_threshold": round(threshold, 4),
                 "stroke_width_px": round(stroke_width(out_mask), 3)}


def _served_scale(mask: np.ndarray, size: int, margin: float, fit: bool) -> float:
    """Served px per working px of the square :func:`frame` will make."""
    if fit:
        rows, cols = np.nonzero(mask)
        extent = max(rows.max() - rows.min() + 1, cols.max() - cols.min() + 1)
        return size * (1 - 2 * margin) / extent
    return size / max(mask.shape)


def normalize_sketch(src: str | Path | Image.Image, size: int = DEFAULT_SIZE,
                     margin: float = DEFAULT_MARGIN, fit: bool = False
                     ) -> tuple[np.ndarray, dict[str, Any]]:
    """Scan mode: normalize one drawing: ``(uint8 (size, size) strokes 0 on 255, info)``.

    ``fit``: crop to the strokes (plus ``margin``) instead of keeping the whole page.
    ``info`` records every decision (ink source, polarity, flattening, thresholds, specks,
    crop box, scale, stroke widths) so the manifest can say what was done. Raises
    :class:`NormalizeError` for an empty drawing, and Pillow's errors for unreadable files.
    """
    if isinstance(src, Image.Image):
        im = src
    else:
        with Image.open(src) as f:
            f.load()
            im = f.copy()
    ink, info = ink_map(im)
    mask, tinfo = threshold_ink(ink)
    work_scale = info.get("work_scale", 1.0)
    mask, sinfo = remove_specks(mask, ink, _served_scale(mask, size, margin, fit))
    out, finfo = frame(mask, size=size, margin=margin, fit=fit)
    info.update(tinfo)
    info.update(sinfo)
    info.update(finfo)
    info["work_scale"] = work_scale
    return out, info
