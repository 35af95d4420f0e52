"""The seed's serving contract (its ``utils.py``), reproduced exactly.

Evaluation must feed the generator what the service feeds it and score what the service
returns; anything else measures a model nobody serves (DESIGN.md section 1).

Input: open with Pillow -> ``resize((size, size))`` with Pillow's default filter (bicubic)
-> if RGBA, paste on white using alpha -> ``convert('L')`` -> float32 / 255 -> clip [0, 1].
Output: ``(y + 1) * 127.5`` -> int32 (truncation toward zero) -> clip [0, 255] -> uint8.
Targets (photos) go through the same resize, as RGB.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

DEFAULT_SIZE = 256


def open_image(src: str | Path | Image.Image) -> Image.Image:
    """Open an image file fully (so a truncated file fails here, naming the file)."""
    if isinstance(src, Image.Image):
        return src
    with Image.open(src) as im:
        im.load()
        return im.copy()


def sketch_to_input(src: str | Path | Image.Image, size: int = DEFAULT_SIZE) -> np.ndarray:
    """Serve a sketch: returns ``(size, size)`` float32 in [0, 1], white = 1, strokes = 0."""
    im = open_image(src)
    im = im.resize((size, size))  # Pillow's default filter, as the seed calls it
    if im.mode == "RGBA":
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        background.paste(im, mask=im.split()[3])
        im = background
    im = im.convert("L")
    return np.clip(np.asarray(im, dtype=np.float32) / 255.0, 0.0, 1.0)


def target_to_array(src: str | Path | Image.Image, size: int = DEFAULT_SIZE) -> np.ndarray:
    """A target photo resized like the input: ``(size, size, 3)`` uint8 RGB."""
    im = open_image(src)
    if im.mode != "RGB":
        im = im.convert("RGB")
    return np.asarray(im.resize((size, size)), dtype=np.uint8)


def output_to_uint8(y: np.ndarray) -> np.ndarray:
    """Post-process generator output in [-1, 1] exactly as serving does -> uint8."""
    return np.clip(((np.asarray(y) + 1.0) * 127.5).astype(np.int32), 0, 255).astype(np.uint8)


def uint8_to_signed(x: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [-1, 1] (the training scale): ``x / 127.5 - 1``."""
    return np.asarray(x, dtype=np.float32) / 127.5 - 1.0


#: A served page whose values span less than this (on [0, 1]) shows no drawing at all.
BLANK_CONTRAST = 0.1


def mode_cause(im: Image.Image) -> str | None:
    """Why the serving contract mis-renders this kind of image (None when it does not)."""
    mode = im.mode
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return (f"{'16' if mode.startswith('I;16') else '32'}-bit image (mode {mode}): the "
                "service's convert('L') clips its values instead of scaling them; re-export "
                "it as 8-bit")
    if mode in ("LA", "La", "PA"):
        return (f"grey+alpha image (mode {mode}): the service pastes only RGBA on white, so "
                "the transparent background shows its hidden colour; re-export it as RGBA "
                "or flatten it on white")
    if mode == "P" and "transparency" in im.info:
        return ("palette image with transparency: the service pastes only RGBA on white, so "
                "the transparent background shows its palette colour; re-export it as RGBA "
                "or flatten it on white")
    return None


def served_defect(im: Image.Image, served: np.ndarray) -> str | None:
    """Why a sketch is unusable *as served*, or None.

    ``im``: the decoded file (before the serving contract); ``served``: what
    :func:`sketch_to_input` made of it. Reported, with the cause where the file's mode
    explains it (16-bit, grey+alpha, palette transparency):

    * ``blank as served``: the served values span less than :data:`BLANK_CONTRAST`;
    * ``inverted as served``: the median served value is below 0.5 (a dark background:
      the generator expects dark strokes on white).

    This is a check beside the serving contract; the contract itself is unchanged.
    """
    x = np.asarray(served, dtype=np.float32)
    cause = mode_cause(im)
    if x.size == 0 or float(x.max() - x.min()) < BLANK_CONTRAST:
        value = float(x.mean()) if x.size else 1.0
        what = "white" if value >= 0.5 else "black"
        if cause is None and im.mode == "RGBA":
            cause = ("light strokes on a transparent background vanish when the service "
                     "pastes them on white; draw dark strokes")
        return (f"blank as served: the service sees a uniformly {what} page "
                f"(value {value:.2f}); " + (cause or "the drawing is empty or has no contrast"))
    median = float(np.median(x))
    if median < 0.5:
        return (f"inverted as served: median value {median:.2f}, a dark background; "
                + (cause or "light strokes on a dark background: the generator expects dark "
                            "strokes on white (invert it, or import it with --mode scan)"))
    return None
