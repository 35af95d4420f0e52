"""Procedural cartoon faces and their hand-drawn-style sketches."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.example.faces import (
    GLASSES,
    HAIR_STYLES,
    face_params,
    render_face,
    sketch_face,
)


def test_same_seed_same_face_different_seed_different_face():
    a = render_face(7, 64)
    assert a.dtype == np.uint8 and a.shape == (64, 64, 3)
    assert np.array_equal(a, render_face(7, 64))
    assert face_params(7) == face_params(7)
    assert not np.array_equal(a, render_face(8, 64))


def test_faces_are_on_white_and_any_size():
    for size in (16, 48, 100, 256):
        img = render_face(3, size)
        assert img.shape == (size, size, 3)
        assert np.all(img[0, 0] == 255) and np.all(img[0, -1] == 255)
        # a face covers a good part of the frame
        assert 0.2 < np.mean(np.any(img < 240, axis=2)) < 0.8
    with pytest.raises(ValueError):
        render_face(0, 8)


def test_hundreds_of_distinct_faces_and_every_part_used():
    params = [face_params(s) for s in range(400)]
    assert len({p for p in params}) == 400
    assert {p.hair_style for p in params} == set(HAIR_STYLES)
    assert {p.glasses for p in params} == set(GLASSES)
    assert len({p.skin for p in params}) >= 8
    imgs = {render_face(s, 32).tobytes() for s in range(200)}
    assert len(imgs) == 200


def test_sketches_are_dark_strokes_on_white_and_deterministic():
    sk = sketch_face(5, 128)
    assert sk.dtype == np.uint8 and sk.shape == (128, 128)
    assert np.array_equal(sk, sketch_face(5, 128))
    ink = sk < 128
    assert 0.01 < ink.mean() < 0.2      # strokes, not fills
    assert np.all(sk[0, :10] == 255)
    # a different wobble draws the same face differently, but close by
    other = sketch_face(5, 128, sketch_seed=1)
    assert not np.array_equal(sk, other)
    from scipy import ndimage
    near = ndimage.binary_dilation(ink, iterations=6)
    assert (other < 128)[near].sum() > 0.9 * (other < 128).sum()
