"""Procedural faceted gemstones (the example's second domain) and their sketches."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.example.gemstones import (
    CUTS,
    GEM_COLOURS,
    gem_facets,
    gem_params,
    render_gem,
    sketch_gem,
)


def test_same_seed_same_gem_different_seed_different_gem():
    a = render_gem(7, 64)
    assert a.dtype == np.uint8 and a.shape == (64, 64, 3)
    assert np.array_equal(a, render_gem(7, 64))
    assert gem_params(7) == gem_params(7)
    assert not np.array_equal(a, render_gem(8, 64))


def test_gems_are_on_white_centred_and_any_size():
    for size in (16, 64, 100, 256):
        img = render_gem(3, size)
        assert img.shape == (size, size, 3)
        for corner in (img[0, 0], img[0, -1], img[-1, 0], img[-1, -1]):
            assert np.all(corner == 255)
        covered = np.any(img < 240, axis=2)
        assert 0.08 < covered.mean() < 0.6
        rows, cols = np.nonzero(covered)
        assert abs(rows.mean() - size / 2) < 0.15 * size
        assert abs(cols.mean() - size / 2) < 0.15 * size
    with pytest.raises(ValueError):
        render_gem(0, 8)


def test_every_cut_and_colour_occurs_and_gems_are_distinct():
    params = [gem_params(s) for s in range(300)]
    assert {p.cut for p in params} == set(CUTS)
    assert {p.colour_name for p in params} == set(GEM_COLOURS)
    assert len({render_gem(s, 32).tobytes() for s in range(150)}) == 150


def test_facets_are_shaded_differently():
    """Facets are flat planes lit from one side: a gem shows many distinct colours, and
    the facet count follows the cut (3 per spoke + the table; 24 + 1 for a step cut)."""
    for seed in range(40):
        p = gem_params(seed)
        _, facets = gem_facets(p, 256)
        n = CUTS[p.cut]
        assert len(facets) == (3 * n + 1 if n else 25), p.cut
    img = render_gem(2, 256)
    inside = img[np.any(img < 240, axis=2)]
    assert len({tuple(c) for c in inside[:: 7]}) > 50


def test_sketches_trace_the_gem():
    sk = sketch_gem(5, 128)
    assert sk.dtype == np.uint8 and sk.shape == (128, 128)
    assert np.array_equal(sk, sketch_gem(5, 128))
    assert not np.array_equal(sk, sketch_gem(5, 128, sketch_seed=1))
    ink = sk < 128
    assert 0.01 < ink.mean() < 0.25      # strokes, not fills
    assert np.all(sk[0] == 255)
    # the strokes lie on the gem (inside its bounding box, a few px of wobble allowed)
    gem = np.any(render_gem(5, 128) < 240, axis=2)
    rows, cols = np.nonzero(gem)
    r, c = np.nonzero(ink)
    assert r.min() >= rows.min() - 4 and r.max() <= rows.max() + 4
    assert c.min() >= cols.min() - 4 and c.max() <= cols.max() + 4
