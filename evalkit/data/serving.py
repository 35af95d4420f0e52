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
