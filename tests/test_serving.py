"""The serving contract: evalkit must feed the model exactly what the seed serves."""

from __future__ import annotations

import numpy as np
from PIL import Image

from evalkit.inputs.data.serving import output_to_uint8, sketch_to_input, target_to_array
from tests.conftest import shared_path
from tests.seed_reference import serve_output, serve_sketch


def test_grayscale_jpeg_matches_seed(tmp_path):
    path = shared_path("seed", "examples", "bmw_edge_drawn.jpg")
    np.testing.assert_array_equal(sketch_to_input(path, 256), serve_sketch(path, 256))


def test_rgba_pasted_on_white_after_resize(tmp_path):
    rgba = np.zeros((50, 70, 4), np.uint8)  # non-square, fully transparent black...
    rgba[10:40, 20:30] = (0, 0, 0, 255)      # ...with one opaque black stroke
    rgba[5:8, 5:60] = (200, 30, 30, 128)     # and a half-transparent red one
    p = tmp_path / "s.png"
    Image.fromarray(rgba, "RGBA").save(p)
    x = sketch_to_input(p, 32)
    np.testing.assert_array_equal(x, serve_sketch(p, 32))
    assert x.shape == (32, 32) and x.dtype == np.float32
    assert x.max() == 1.0  # transparent background became white, not black
    assert x.min() < 0.1   # the opaque stroke stays dark


def test_non_square_rgb_is_resized_not_cropped(tmp_path):
    img = np.full((30, 90, 3), 255, np.uint8)
    img[:, :10] = 0  # dark band on the far left must survive (no centre crop)
    p = tmp_path / "wide.png"
    Image.fromarray(img).save(p)
    x = sketch_to_input(p, 16)
    np.testing.assert_array_equal(x, serve_sketch(p, 16))
    assert x[:, 0].max() < 0.2


def test_output_postprocessing_truncates():
    y = np.array([-1.0, -0.999, 0.0, 0.01, 0.999, 1.0, 1.5], np.float32)
    out = output_to_uint8(y)
    np.testing.assert_array_equal(out, serve_output(y))
    # 127.5 -> 127 and 128.775 -> 128: truncation, not rounding
    assert out.tolist() == [0, 0, 127, 128, 254, 255, 255]


def test_targets_resized_to_model_size(tmp_path):
    p = tmp_path / "t.png"
    Image.fromarray(np.zeros((20, 40), np.uint8)).save(p)  # grayscale, non-square
    t = target_to_array(p, 24)
    assert t.shape == (24, 24, 3) and t.dtype == np.uint8
