"""Sketch adherence: does the output's structure follow the input strokes?

No ground-truth photo is needed, so it applies to hand-drawn sketches as well as to HED
inputs (the mismatch table compares the two). Per sample:

* **Input strokes** ``S``: pixels of the *served* input (:mod:`evalkit.inputs.data.serving`) darker
  than ``t = max(0.5, (1 + darkest) / 2)``, thinned to 1 px (scikit-image's ``thin``,
  MATLAB's ``bwmorph(.., 'thin', Inf)``; run by :func:`evalkit.inputs.edges.postprocess.thin`,
  same output, faster). A family instance keeps the skeletons of the inputs it has seen
  (they do not depend on the checkpoint).
  Thinning makes a 3-px pen stroke count once, like the 1-px output edges it is matched to:
  without it every stroke would have 2 px of its width that no edge can match, and recall
  would measure pen width rather than structure. ``t`` is 0.5 for a sketch with black
  ink and halfway between white and the darkest pixel for fainter ones (pencil; thin pens
  served below 256 px are bicubic-blurred to grey). A served input with no pixel darker
  than ``1 - MIN_CONTRAST`` has no strokes.
* **Output edges** ``E``: :func:`evalkit.inputs.edges.edge_map` of the served uint8 RGB output, the
  same pipeline (detector + PostprocessHED) that made the training inputs, already 1 px
  (a custom ``edge_fn``'s map is thinned likewise).
* **Matching** (Martin, Fowlkes & Malik 2004, "Learning to detect natural image boundaries
  using local brightness, color, and texture cues", IEEE TPAMI 26(5); the BSDS benchmark's
  ``correspondPixels``): a one-to-one correspondence between ``E`` and ``S`` in which a pair
  may be matched only if its Euclidean distance is at most ``tolerance`` px. BSDS solves a
  min-cost assignment whose unmatched pixels cost far more (100x) than any allowed match, so
  its matched *count* is that of a maximum-cardinality bipartite matching; this module
  computes that matching exactly (Hopcroft-Karp, ``scipy.sparse.csgraph.
  maximum_bipartite_matching``) on the graph of pixel pairs within the tolerance. It is not
  the distance-transform approximation: one output pixel can vouch for one stroke pixel only.
* **Tolerance**: ``max_dist`` x image diagonal, BSDS's default ``maxDist = 0.0075``
  (2.72 px at 256x256), or an explicit ``tolerance_px``.
* ``precision = |matched E| / |E|``, ``recall = |matched S| / |S|`` (the two matched counts
  are equal), ``F1 = 2PR / (P + R)``; all in [0, 1], higher is better.

Empty maps, following BSDS's ``x / (n + (n == 0))`` convention where it is meaningful:

* an output with no edges: precision = recall = F1 = 0 (the generator drew nothing that
  follows the sketch), counted in the ``no_output_edges`` flag;
* an input with no strokes: the sample has no value (NaN, left out of the mean and of ``n``),
  counted in the ``empty_inputs`` flag (``evalkit sketches check`` rejects such sketches).

Detector caveat (measured): with the Sobel fallback detector (no HED weights), an output
that *is* the line drawing scores recall 1.0 but precision 0.42-0.55 on the real sketches,
because a gradient detector fires on both sides of a drawn line and the matching is
one-to-one; HED responds once to a thin line. Outputs that are pictures (regions with
boundaries) do not have this doubling. Compare values only within one ``edge_detector``.

Each metric is the mean over samples (:func:`evalkit.measure.stats.summarize`: mean, std,
95% bootstrap CI, n). The flags also carry the BSDS-style *pooled* value (matched and total
pixel counts summed over the dataset before dividing), the tolerance in px and the edge
detector's id, since values from different detectors are not comparable.
"""

from __future__ import annotations

import functools
import hashlib
import math
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from evalkit.measure.base import MetricContext, MetricValue
from evalkit.measure.stats import summarize

#: BSDS benchmark default tolerance, as a fraction of the image diagonal.
BSDS_MAX_DIST = 0.0075
#: Served input values below this are stroke pixels (lower for faint inputs, see above).
STROKE_THRESHOLD = 0.5
#: An input whose darkest pixel is lighter than ``1 - MIN_CONTRAST`` has no strokes.
MIN_CONTRAST = 0.15
METRICS = ("adherence_precision", "adherence_recall", "adherence_f1")
#: Memory bound of the stroke-skeleton cache of one AdherenceMetrics, in bytes of packed
#: pixel indices (4 bytes per stroke pixel: about 6,000 sketches of 2,500 stroke px).
SKELETON_CACHE_BYTES = 64 * 2**20


@dataclass
class Match:
    """Counts of one correspondence: ``n_edges`` output-edge px, ``n_strokes`` stroke px,
    ``matched`` pairs (each pair is one edge px and one stroke px)."""

    n_edges: int
    n_strokes: int
    matched: int

    @property
    def precision(self) -> float:
        return self.matched / self.n_edges if self.n_edges else 0.0

    @property
    def recall(self) -> float:
        return self.matched / self.n_strokes if self.n_strokes else 0.0

    @property
    def f1(self) -> float:
        return f1_score(self.precision, self.recall)


def f1_score(p: float, r: float) -> float:
    """Harmonic mean ``2PR / (P + R)``; 0 when both are 0."""
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def thin(mask: np.ndarray) -> np.ndarray:
    """:func:`evalkit.inputs.edges.postprocess.thin`, imported on first use: the edge code
    imports scikit-image and scipy.ndimage (~0.8 s), which a run that computes nothing
    (only builds this family to compare its settings) must not pay."""
    from evalkit.inputs.edges.postprocess import thin as _thin

    return _thin(mask)


def tolerance_for(shape: tuple[int, int], max_dist: float = BSDS_MAX_DIST) -> float:
    """BSDS tolerance in px: ``max_dist * sqrt(H^2 + W^2)``."""
    return max_dist * math.hypot(shape[0], shape[1])


def stroke_skeleton(served_input: np.ndarray, threshold: float = STROKE_THRESHOLD) -> np.ndarray:
    """1-px input strokes of an ``(H, W)`` [0, 1] served input: ``thin(x < t)`` with
    ``t = max(threshold, (1 + min(x)) / 2)``; none when ``min(x) > 1 - MIN_CONTRAST``."""
    x = np.asarray(served_input)
    if x.ndim == 3:
        x = x[..., 0]
    darkest = float(x.min()) if x.size else 1.0
    if darkest > 1 - MIN_CONTRAST:
        return np.zeros(x.shape, dtype=bool)
    return thin(x < max(threshold, (1 + darkest) / 2))


@functools.lru_cache(maxsize=32)
def disc_offsets(tolerance_px: float) -> tuple[np.ndarray, np.ndarray]:
    """Integer ``(dy, dx)`` offsets with ``dy^2 + dx^2 <= (tolerance_px + 1e-9)^2``: the
    pixel pairs the matching may join (squared distances compared, as ``cKDTree`` does)."""
    r = int(math.floor(tolerance_px + 1e-9))
    dy, dx = (a.ravel() for a in np.mgrid[-r:r + 1, -r:r + 1])
    keep = (dy * dy + dx * dx).astype(np.float64) <= (tolerance_px + 1e-9) ** 2
    return dy[keep], dx[keep]


def match_pixels(edges: np.ndarray, strokes: np.ndarray, tolerance_px: float) -> Match:
    """Maximum one-to-one matching of the True pixels of two same-shape bool maps, pairs at
    Euclidean distance <= ``tolerance_px`` (the BSDS correspondence; see module docstring)."""
    edges, strokes = np.asarray(edges, bool), np.asarray(strokes, bool)
    if edges.shape != strokes.shape:
        raise ValueError(f"edge map {edges.shape} and stroke map {strokes.shape} differ")
    return _match_flat(np.flatnonzero(edges), np.flatnonzero(strokes), edges.shape,
                       tolerance_px)


def _match_flat(pe: np.ndarray, ps: np.ndarray, shape: tuple[int, int], tolerance_px: float
                ) -> Match:
    """:func:`match_pixels` on sorted flat (row-major) indices of the edge and stroke px.

    The graph is built by hand rather than with a KD-tree: the pairs within the tolerance
    are a small fixed disc of pixel offsets, so an image of stroke indices (-1 = none),
    padded by the disc radius, gives every edge pixel's neighbours with one gather per
    offset - the same edge set as a radius search, without a Python loop per pixel.
    """
    if len(pe) == 0 or len(ps) == 0 or tolerance_px < 0:
        return Match(len(pe), len(ps), 0)
    h, w = shape
    dy, dx = disc_offsets(float(tolerance_px))
    r = int(np.abs(dy).max())
    wp = w + 2 * r
    index = np.full((h + 2 * r) * wp, -1, dtype=np.int64)
    index[(ps // w + r) * wp + ps % w + r] = np.arange(len(ps))
    centre = (pe // w + r) * wp + pe % w + r
    rows, cols = [], []
    for oy, ox in zip(dy.tolist(), dx.tolist(), strict=True):
        nb = index[centre + (oy * wp + ox)]
        hit = np.flatnonzero(nb >= 0)
        rows.append(hit)
        cols.append(nb[hit])
    rows_a, cols_a = np.concatenate(rows), np.concatenate(cols)
    if len(rows_a) == 0:
        return Match(len(pe), len(ps), 0)
    from scipy.sparse import csr_matrix  # imported here, like thin (above)
    from scipy.sparse.csgraph import maximum_bipartite_matching

    graph = csr_matrix((np.ones(len(rows_a), dtype=np.int8), (rows_a, cols_a)),
                       shape=(len(pe), len(ps)))
    assignment = maximum_bipartite_matching(graph, perm_type="column")
    return Match(len(pe), len(ps), int((assignment >= 0).sum()))


def adherence(edges: np.ndarray, strokes: np.ndarray, tolerance_px: float | None = None,
              max_dist: float = BSDS_MAX_DIST) -> Match:
    """Adherence of output edges to strokes (both bool ``(H, W)``; thinned here to 1 px).

    ``tolerance_px`` defaults to ``max_dist`` x the image diagonal.
    """
    edges, strokes = np.asarray(edges, bool), np.asarray(strokes, bool)
    tol = tolerance_px if tolerance_px is not None else tolerance_for(edges.shape, max_dist)
    return match_pixels(thin(edges), thin(strokes), tol)


class AdherenceMetrics:
    """``adherence_precision``, ``adherence_recall``, ``adherence_f1`` on every sample.

    Args:
        max_dist: tolerance as a fraction of the image diagonal (BSDS default 0.0075).
        tolerance_px: explicit tolerance in px (overrides ``max_dist``).
        detector: edge detector for :func:`evalkit.inputs.edges.edge_map` (``"hed"``, ``"sobel"``,
            a detector object, or None: HED when ``ctx.options["hed_model"]`` names a model,
            else the documented Sobel fallback).
        edge_fn: a callable ``(H, W, 3) uint8 -> (H, W) bool`` used instead of the edge
            pipeline (tests, experiments); its ``id`` attribute (if any) is recorded.
    """

    name = "adherence"
    metrics = METRICS

    def __init__(self, max_dist: float = BSDS_MAX_DIST, tolerance_px: float | None = None,
                 detector=None, edge_fn: Callable[[np.ndarray], np.ndarray] | None = None):
        if tolerance_px is not None and tolerance_px < 0:
            raise ValueError("tolerance_px must be >= 0")
        self.max_dist = max_dist
        self.tolerance_px = tolerance_px
        self.detector = detector
        self.edge_fn = edge_fn
        self._init_cache()

    def _init_cache(self) -> None:
        # Stroke skeletons depend on the served inputs only, not on the checkpoint: kept
        # across compute() calls as packed flat indices of the stroke pixels (int32),
        # keyed by a digest of the served input, least recently used dropped past
        # SKELETON_CACHE_BYTES.
        self._skeletons: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._skeleton_bytes = 0
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        for k in ("_skeletons", "_skeleton_bytes", "_lock"):
            state.pop(k, None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._init_cache()

    def _stroke_pixels(self, served_input: np.ndarray) -> tuple[np.ndarray, tuple]:
        """Sorted flat indices of :func:`stroke_skeleton` of one served input, and the
        input's ``(H, W)`` (from the cache when this input was seen before)."""
        x = np.ascontiguousarray(served_input)
        shape = x.shape[:2]
        digest = hashlib.blake2b(repr((x.shape, x.dtype.str)).encode(), digest_size=16)
        digest.update(x)
        key = digest.digest()
        with self._lock:
            hit = self._skeletons.get(key)
            if hit is not None:
                self._skeletons.move_to_end(key)
                return hit, shape
        flat = np.flatnonzero(stroke_skeleton(x)).astype(np.int32)
        with self._lock:
            if key not in self._skeletons and flat.nbytes <= SKELETON_CACHE_BYTES:
                self._skeletons[key] = flat
                self._skeleton_bytes += flat.nbytes
                while self._skeleton_bytes > SKELETON_CACHE_BYTES:
                    _, old = self._skeletons.popitem(last=False)
                    self._skeleton_bytes -= old.nbytes
        return flat, shape

    def signature(self) -> dict:
        """Settings that change the values (the engine recomputes when they change)."""
        det = self.detector if isinstance(self.detector, str) or self.detector is None else \
            getattr(self.detector, "id", repr(self.detector))
        return {"metrics": list(self.metrics), "max_dist": self.max_dist,
                "tolerance_px": self.tolerance_px, "detector": det,
                "edge_fn": getattr(self.edge_fn, "id", None) if self.edge_fn else None,
                "stroke_threshold": STROKE_THRESHOLD, "min_contrast": MIN_CONTRAST,
                "version": 2}

    def _edge_function(self, ctx: MetricContext) -> tuple[Callable, str]:
        """``(uint8 RGB -> 1-px bool edges, detector id)``.

        A custom ``edge_fn``'s maps are thinned here. The standard pipeline's are used as
        they are: PostprocessHED's mask is ``thin(...)`` (a fixed point of ``thin``) with
        whole 8-connected components removed, which leaves every remaining pixel's 3x3
        neighbourhood - all that ``thin`` looks at - unchanged, so thinning it again is
        the identity (tests/test_adherence_fast.py checks this on real data).
        """
        if self.edge_fn is not None:
            fn = self.edge_fn
            return (lambda rgb: thin(np.asarray(fn(rgb), dtype=bool))), str(
                getattr(fn, "id", "custom edge_fn"))
        from evalkit.inputs.edges import edge_map, get_detector

        det = self.detector
        if det is None or isinstance(det, str):
            det = get_detector(det, hed_model=ctx.options.get("hed_model"),
                               hed_proto=ctx.options.get("hed_proto"))
        return (lambda rgb: np.asarray(edge_map(rgb, det), dtype=bool)), str(det.id)

    def compute(self, ctx: MetricContext) -> list[MetricValue]:
        ds = ctx.dataset
        n = len(ds)
        if ctx.outputs.shape[0] != n:
            return [MetricValue.failed(m, f"{ctx.outputs.shape[0]} outputs for {n} inputs")
                    for m in self.metrics]
        try:
            edge_fn, detector_id = self._edge_function(ctx)
        except Exception as exc:  # no edge pipeline, HED model unusable
            return [MetricValue.skipped(m, f"edge detector unavailable: {exc}")
                    for m in self.metrics]
        shape = ctx.outputs.shape[1:3]
        tol = (self.tolerance_px if self.tolerance_px is not None
               else tolerance_for(shape, self.max_dist))
        p, r, f = (np.full(n, np.nan) for _ in range(3))
        sums = np.zeros(3, dtype=np.int64)  # matched, edges, strokes
        empty_inputs = no_edges = 0
        for i in range(n):  # integer indexing only: inputs/outputs may be lazy
            strokes, in_shape = self._stroke_pixels(ds.inputs[i])
            if in_shape != tuple(shape):
                return [MetricValue.failed(m, f"input {in_shape} and output "
                                              f"{tuple(shape)} sizes differ")
                        for m in self.metrics]
            if len(strokes) == 0:
                empty_inputs += 1
                continue
            edges = edge_fn(ctx.outputs[i])
            if edges.shape != tuple(shape):
                raise ValueError(f"edge map {edges.shape} and stroke map {tuple(shape)} "
                                 "differ")
            m = _match_flat(np.flatnonzero(edges), strokes, tuple(shape), tol)
            no_edges += m.n_edges == 0
            p[i], r[i], f[i] = m.precision, m.recall, m.f1
            sums += (m.matched, m.n_edges, m.n_strokes)
        pooled_p = sums[0] / sums[1] if sums[1] else 0.0
        pooled_r = sums[0] / sums[2] if sums[2] else 0.0
        flags = {"tolerance_px": round(float(tol), 4), "max_dist": self.max_dist
                 if self.tolerance_px is None else None, "edge_detector": detector_id,
                 "empty_inputs": empty_inputs, "no_output_edges": int(no_edges),
                 "matching": "bipartite (BSDS correspondPixels counts)"}
        pooled = {"adherence_precision": pooled_p, "adherence_recall": pooled_r,
                  "adherence_f1": f1_score(pooled_p, pooled_r)}
        out = []
        for metric, values in zip(self.metrics, (p, r, f), strict=True):
            mv = summarize(metric, values, **flags, pooled=round(float(pooled[metric]), 6))
            if mv.status != "ok":
                mv.reason = "no sample has input strokes (all sketches empty)"
            out.append(mv)
        return out
