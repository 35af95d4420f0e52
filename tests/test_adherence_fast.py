"""The fast adherence pipeline (issue #13) gives exactly the old pipeline's values.

Each faster piece is compared with the pre-speed-up code kept in tests/adherence_reference.py
(scikit-image ``thin``, per-channel Sobel, whole-image NMS, KD-tree matching graph), on
random maps and on the real sketches and the seed's example photo in ../shared.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.morphology import thin as skimage_thin

from evalkit.inputs.data.dataset import Dataset
from evalkit.inputs.edges import SobelDetector, edge_map, postprocess_hed
from evalkit.inputs.edges.postprocess import edge_orientation, edges_nms, thin
from evalkit.measure import adherence as adh
from evalkit.measure.adherence import AdherenceMetrics, match_pixels, stroke_skeleton
from evalkit.measure.base import MetricContext
from tests.adherence_reference import (
    edge_map_reference,
    edge_orientation_reference,
    edges_nms_reference,
    match_pixels_reference,
    per_sample_reference,
    postprocess_hed_reference,
    sobel_probability_reference,
    stroke_skeleton_reference,
)
from tests.conftest import shared_path

REAL_SIZE = 128  # the real sketches are served at this size here (256 in a run): fast tests


def _random_masks(rng: np.random.Generator, n: int):
    """Maps from sparse dots to solid blobs, lines and 2x2 squares (thin's special cases)."""
    for k in range(n):
        h, w = rng.integers(3, 48, 2)
        kind = k % 3
        if kind == 0:
            yield rng.random((h, w)) < rng.uniform(0.05, 0.95)
        elif kind == 1:  # thick blobs: many thinning iterations
            m = np.zeros((h, w), bool)
            for _ in range(rng.integers(1, 5)):
                r, c = rng.integers(0, h), rng.integers(0, w)
                m[max(0, r - 6):r + 6, max(0, c - 4):c + 9] = True
            yield m
        else:
            yield np.ones((h, w), bool)


@pytest.fixture(scope="module")
def real_sketches():
    from evalkit.inputs.sketches.dataset import load_sketches

    ds = load_sketches(shared_path("sketches", "real"), size=REAL_SIZE)
    assert len(ds) == 22
    return ds


@pytest.fixture(scope="module")
def real_photos() -> list[np.ndarray]:
    """Crops of the seed's example photo (right half of combined_bmw.jpg) and its two edge
    images, as RGB uint8 at REAL_SIZE."""
    folder = shared_path("seed", "examples")
    ab = Image.open(folder / "combined_bmw.jpg").convert("RGB")
    w, h = ab.size
    photo = ab.crop((w // 2, 0, w, h))
    ims = [photo, photo.crop((0, 0, h // 2, h // 2)),
           Image.open(folder / "bmw_edge_drawn.jpg"), Image.open(folder / "bmw_edge_hed.jpeg")]
    return [np.asarray(im.convert("RGB").resize((REAL_SIZE, REAL_SIZE)), np.uint8)
            for im in ims]


def _sketch_rgb(ds: Dataset, i: int) -> np.ndarray:
    return np.repeat(np.round(ds.inputs[i] * 255).astype(np.uint8), 3, axis=2)


# --- thinning -------------------------------------------------------------------------

def test_thin_equals_scikit_image_on_random_maps():
    rng = np.random.default_rng(0)
    for m in _random_masks(rng, 90):
        assert np.array_equal(thin(m), skimage_thin(m)), m.shape
    assert not thin(np.zeros((5, 7), bool)).any()
    with pytest.raises(ValueError, match="H, W"):
        thin(np.zeros((2, 3, 4), bool))


def test_thin_equals_scikit_image_on_real_sketches_and_edge_masks(real_sketches, real_photos):
    for i in range(len(real_sketches)):
        x = real_sketches.inputs[i][..., 0]
        for t in (0.5, 0.8, 0.95):  # thin to thick strokes
            assert np.array_equal(thin(x < t), skimage_thin(x < t))
    for rgb in real_photos:  # a dense pre-thinning mask: NMS output above 25/255
        prob = np.asarray(SobelDetector().probability(rgb), np.float64)
        mask = edges_nms_reference(prob, edge_orientation_reference(prob)) >= 25 / 255
        assert np.array_equal(thin(mask), skimage_thin(mask))


# --- edge pipeline ---------------------------------------------------------------------

def test_sobel_detector_is_bit_identical_to_the_per_channel_version(real_photos):
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 256, (40, 56, 3)).astype(np.uint8)
    for rgb in [*real_photos, noise]:
        for det in (SobelDetector(), SobelDetector(sigma=2.0, saturation=0.5)):
            assert np.array_equal(det.probability(rgb), sobel_probability_reference(rgb, det))


def test_nms_orientation_and_postprocess_are_bit_identical(real_photos, real_sketches):
    probs = [np.asarray(SobelDetector().probability(rgb), np.float64) for rgb in real_photos]
    probs += [np.asarray(SobelDetector().probability(_sketch_rgb(real_sketches, i)),
                         np.float64) for i in (0, 9, 17)]
    for prob in probs:
        o = edge_orientation(prob)
        assert np.array_equal(o, edge_orientation_reference(prob))
        assert np.array_equal(edges_nms(prob, o), edges_nms_reference(prob, o))
        assert np.array_equal(postprocess_hed(prob), postprocess_hed_reference(prob))


def test_pipeline_edges_are_already_thin(real_photos, real_sketches):
    """Why compute() does not thin the standard pipeline's edges again: they are a fixed
    point of thin (checked against scikit-image's own thin)."""
    maps = [edge_map(rgb) for rgb in real_photos]
    maps += [edge_map(_sketch_rgb(real_sketches, i)) for i in range(len(real_sketches))]
    assert sum(int(m.sum()) for m in maps) > 1000
    for m in maps:
        assert np.array_equal(skimage_thin(m), m)


# --- matching --------------------------------------------------------------------------

@pytest.mark.parametrize("tol", [0.0, 1.0, 1.5, 2.0, 2.5, 2.7153, 3.0, 4.2])
def test_matching_equals_the_kd_tree_matcher_on_random_maps(tol: float):
    rng = np.random.default_rng(int(tol * 1000))
    for _ in range(25):
        h, w = rng.integers(4, 50, 2)
        e = rng.random((h, w)) < rng.uniform(0.01, 0.4)
        s = rng.random((h, w)) < rng.uniform(0.01, 0.4)
        got, want = match_pixels(e, s, tol), match_pixels_reference(e, s, tol)
        assert (got.matched, got.n_edges, got.n_strokes) == \
            (want.matched, want.n_edges, want.n_strokes)
    assert match_pixels(e, s, -1.0).matched == 0


def test_disc_offsets_are_the_pixels_within_the_tolerance():
    dy, dx = adh.disc_offsets(adh.tolerance_for((256, 256)))  # 2.72 px
    assert len(dy) == 21 and max(np.hypot(dy, dx)) <= 2.72  # 5x5 minus its 4 corners
    dy, dx = adh.disc_offsets(2.0)
    assert (2, 0) in set(zip(dy.tolist(), dx.tolist(), strict=True)) and len(dy) == 13


def test_matching_equals_the_kd_tree_matcher_on_real_sketches(real_sketches, real_photos):
    tol = adh.tolerance_for((REAL_SIZE, REAL_SIZE))
    matched = {"own edges": 0, "photo edges": 0}
    for i in range(len(real_sketches)):
        strokes = stroke_skeleton(real_sketches.inputs[i])
        for kind, edges in (("own edges", edge_map(_sketch_rgb(real_sketches, i))),
                            ("photo edges", edge_map(real_photos[i % len(real_photos)]))):
            got, want = match_pixels(edges, strokes, tol), \
                match_pixels_reference(edges, strokes, tol)
            assert (got.matched, got.n_edges, got.n_strokes) == \
                (want.matched, want.n_edges, want.n_strokes)
            matched[kind] += got.matched
    assert matched["own edges"] > 0 and matched["photo edges"] > 0, matched


# --- the family ------------------------------------------------------------------------

def _values(vals) -> np.ndarray:
    by = {v.metric: v.per_sample for v in vals}
    return np.array([by[m] for m in adh.METRICS]).T


def _reference_values(inputs, outputs) -> np.ndarray:
    return np.array([(np.nan,) * 3 if m is None else (m.precision, m.recall, m.f1)
                     for m in per_sample_reference(inputs, outputs)])


def test_family_equals_the_old_pipeline_on_real_sketches(real_sketches, real_photos,
                                                         tmp_path: Path):
    """Per-sample values identical to the old compute loop, over two "checkpoints" (the
    second uses the cached stroke skeletons), and the cache is hit."""
    ds = real_sketches
    n = len(ds)
    sketches = np.stack([_sketch_rgb(ds, i) for i in range(n)])
    photos = np.stack([real_photos[i % len(real_photos)] for i in range(n)])
    fam = AdherenceMetrics()
    for k, outs in enumerate((sketches, photos)):
        got = _values(fam.compute(MetricContext(ds, outs, f"c{k}", f"h{k}", tmp_path)))
        assert np.array_equal(got, _reference_values(ds.inputs, outs), equal_nan=True)
        assert len(fam._skeletons) == n


class _LazyArray:
    """An array-like that only supports int indexing and ``.shape`` (what the lead's lazy,
    disk-backed datasets and outputs offer), counting the reads."""

    def __init__(self, data: np.ndarray):
        self._data, self.shape, self.reads = data, data.shape, 0

    def __len__(self) -> int:
        return len(self._data)

    def __getitem__(self, i):
        if not isinstance(i, (int, np.integer)):
            raise TypeError(f"only integer indexing, got {i!r}")
        self.reads += 1
        return self._data[i]

    def __array__(self, *a, **k):
        raise AssertionError("the whole array was materialized")


def test_family_reads_lazy_inputs_and_outputs_by_index(real_sketches, tmp_path: Path):
    ds = real_sketches
    inputs = np.stack([ds.inputs[i] for i in range(5)])
    lazy_in = _LazyArray(inputs)
    lazy_ds = Dataset(name="s", kind="sketches", root=Path("."), ids=ds.ids[:5],
                      inputs=lazy_in, targets=None, content_hash="lazy", size=REAL_SIZE)
    outs = np.stack([_sketch_rgb(ds, i) for i in range(5)])
    lazy_out = _LazyArray(outs)
    got = _values(AdherenceMetrics().compute(MetricContext(lazy_ds, lazy_out, "c", "h",
                                                           tmp_path)))
    assert np.array_equal(got, _reference_values(inputs, outs), equal_nan=True)
    assert lazy_in.reads == 5 and lazy_out.reads == 5


def _strokes(size: int = 48) -> list[np.ndarray]:
    a = np.linspace(0, 2 * math.pi, 300)
    m = np.zeros((size, size), bool)
    m[np.round(24 + 12 * np.sin(a)).astype(int), np.round(24 + 12 * np.cos(a)).astype(int)] = 1
    bar = np.zeros((size, size), bool)
    bar[10:14, 5:40] = 1  # 4 px wide: thinned
    return [m, bar, np.roll(m, 5, axis=1)]


def _ds(strokes: list[np.ndarray], content_hash: str = "same") -> Dataset:
    x = np.stack([np.where(s, 0.0, 1.0) for s in strokes]).astype(np.float32)[..., None]
    return Dataset(name="d", kind="sketches", root=Path("."), ids=[str(i) for i in
                   range(len(x))], inputs=x, targets=None, content_hash=content_hash,
                   size=x.shape[1])


def test_cache_is_keyed_by_input_content_not_by_dataset_hash(tmp_path: Path, monkeypatch):
    """Two datasets that (wrongly) share a content hash still get their own skeletons; the
    same inputs again are not re-skeletonized; the cache stays within its byte bound."""
    calls = []
    real = adh.stroke_skeleton
    monkeypatch.setattr(adh, "stroke_skeleton", lambda x: calls.append(1) or real(x))
    strokes = _strokes()
    outs = np.stack([np.repeat(np.where(s, 0, 255).astype(np.uint8)[..., None], 3, 2)
                     for s in strokes])
    fam = AdherenceMetrics(tolerance_px=2.0)
    first = _values(fam.compute(MetricContext(_ds(strokes), outs, "c1", "h", tmp_path)))
    assert len(calls) == 3
    again = _values(fam.compute(MetricContext(_ds(strokes), outs, "c2", "h", tmp_path)))
    assert len(calls) == 3 and np.array_equal(first, again)
    other = [s.T.copy() for s in strokes]  # different inputs, same content hash "same"
    got = _values(fam.compute(MetricContext(_ds(other), outs, "c3", "h", tmp_path)))
    assert len(calls) == 6
    fresh = AdherenceMetrics(tolerance_px=2.0).compute(
        MetricContext(_ds(other, "fresh"), outs, "c", "h", tmp_path))
    assert np.array_equal(got, _values(fresh)) and not np.array_equal(got, first)
    # bounded: with room for the largest skeleton only, older ones are dropped
    sizes = [4 * int(real(np.where(s, 0.0, 1.0)).sum()) for s in strokes]
    monkeypatch.setattr(adh, "SKELETON_CACHE_BYTES", max(sizes))
    small = AdherenceMetrics(tolerance_px=2.0)
    vals = _values(small.compute(MetricContext(_ds(strokes), outs, "c", "h", tmp_path)))
    assert small._skeleton_bytes <= max(sizes) and 1 <= len(small._skeletons) < 3
    assert small._skeleton_bytes == sum(a.nbytes for a in small._skeletons.values())
    assert np.array_equal(vals, first)


def test_custom_edge_fn_maps_are_still_thinned(tmp_path: Path):
    strokes = _strokes()
    thick = [s | np.roll(s, 1, axis=0) | np.roll(s, 1, axis=1) for s in strokes]
    outs = np.stack([np.repeat(np.where(s, 0, 255).astype(np.uint8)[..., None], 3, 2)
                     for s in thick])
    fam = AdherenceMetrics(tolerance_px=2.0, edge_fn=lambda rgb: rgb[..., 0] < 128)
    got = _values(fam.compute(MetricContext(_ds(strokes), outs, "c", "h", tmp_path)))
    want = [adh.adherence(t, stroke_skeleton_reference(np.where(s, 0.0, 1.0)), 2.0)
            for s, t in zip(strokes, thick, strict=True)]
    assert np.array_equal(got, np.array([(m.precision, m.recall, m.f1) for m in want]))
    assert (got[:, 0] > 0.9).all()  # thinned: a 3-px line would score precision ~1/3


def test_edge_map_reference_matches_the_public_pipeline(real_photos):
    for rgb in real_photos:
        assert np.array_equal(edge_map(rgb), edge_map_reference(rgb))


def test_family_pickles_without_its_cache(tmp_path: Path):
    import pickle

    fam = AdherenceMetrics(tolerance_px=2.0)
    strokes = _strokes()
    outs = np.stack([np.repeat(np.where(s, 0, 255).astype(np.uint8)[..., None], 3, 2)
                     for s in strokes])
    fam.compute(MetricContext(_ds(strokes), outs, "c", "h", tmp_path))
    clone = pickle.loads(pickle.dumps(fam))
    assert len(clone._skeletons) == 0 and clone.signature() == fam.signature()


def test_bilinear_equals_map_coordinates_bit_for_bit(real_photos):
    from scipy import ndimage

    from evalkit.inputs.edges.postprocess import _bilinear

    rng = np.random.default_rng(3)
    for rgb in real_photos:
        e = np.asarray(SobelDetector().probability(rgb), np.float64)
        h, w = e.shape
        r, c = rng.uniform(0, h - 1.001, 20000), rng.uniform(0, w - 1.001, 20000)
        r[:500], c[500:1000] = np.floor(r[:500]), np.floor(c[500:1000])  # on the grid
        r[1000:1100], c[1100:1200] = h - 1.001, w - 1.001  # the clamp's upper end
        want = ndimage.map_coordinates(e, [r, c], order=1, mode="nearest")
        assert np.array_equal(_bilinear(e.ravel(), w, r, c), want)


def test_nms_with_nan_orientation_or_a_two_pixel_map_matches_the_reference():
    rng = np.random.default_rng(4)
    prob = rng.random((20, 24))
    o = rng.uniform(0, np.pi, prob.shape)
    o[3, 4] = np.nan
    assert np.array_equal(edges_nms(prob, o), edges_nms_reference(prob, o))
    prob2 = rng.random((2, 30))
    o2 = edge_orientation(prob2)
    assert np.array_equal(edges_nms(prob2, o2), edges_nms_reference(prob2, o2))
