"""The adherence pipeline as it was before the speed-up (issue #13), kept verbatim as the
slow reference the fast one must equal exactly: scikit-image ``thin``, per-channel Sobel,
NMS interpolated at every pixel, a KD-tree matching graph, and the stroke skeleton and the
re-thinning recomputed on every call. Used only by tests and benchmarks/bench_adherence.py.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching
from scipy.spatial import cKDTree
from skimage import filters
from skimage.morphology import thin

from evalkit.inputs.edges.detectors import SobelDetector, _unit_step_response, as_rgb_uint8
from evalkit.inputs.edges.postprocess import (
    DEFAULT_MIN_COMPONENT,
    DEFAULT_THRESHOLD,
    conv_tri,
    remove_small_components,
)
from evalkit.measure.adherence import MIN_CONTRAST, STROKE_THRESHOLD, Match, tolerance_for


def sobel_probability_reference(rgb: np.ndarray, det: SobelDetector | None = None
                                ) -> np.ndarray:
    det = det or SobelDetector()
    img = as_rgb_uint8(rgb).astype(np.float64) / 255.0
    mags = []
    for c in range(3):
        smooth = ndimage.gaussian_filter(img[..., c], det.sigma, mode="nearest")
        mags.append(filters.sobel(smooth, mode="nearest"))
    mag = np.max(mags, axis=0)
    return np.clip(mag / _unit_step_response(det.sigma, det.saturation), 0.0, 1.0
                   ).astype(np.float32)


def edge_orientation_reference(prob: np.ndarray) -> np.ndarray:
    smooth = conv_tri(prob, 4)
    oy, ox = np.gradient(smooth)
    oxx = np.gradient(ox, axis=1)
    oyy, oxy = np.gradient(oy)
    sign = np.where(-oxy >= 0, 1.0, -1.0)
    return np.mod(np.arctan(oyy * sign / (oxx + 1e-5)), np.pi)


def edges_nms_reference(prob, orientation, radius=1, border=5, multiplier=1.01):
    e = np.asarray(prob, np.float64)
    h, w = e.shape
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    cos_o, sin_o = np.cos(orientation), np.sin(orientation)
    keep = e > 0
    scaled = e * multiplier
    for d in range(-radius, radius + 1):
        if d == 0:
            continue
        r = np.clip(rows + d * sin_o, 0.0, h - 1.001)
        c = np.clip(cols + d * cos_o, 0.0, w - 1.001)
        neighbour = ndimage.map_coordinates(e, [r, c], order=1, mode="nearest")
        keep &= ~(scaled < neighbour)
    out = np.where(keep, e, 0.0)
    s = int(min(border, w // 2, h // 2))
    if s > 0:
        ramp = np.arange(s, dtype=np.float64) / float(s)
        out[:, :s] *= ramp[None, :]
        out[:, w - s:] *= ramp[None, ::-1]
        out[:s, :] *= ramp[:, None]
        out[h - s:, :] *= ramp[::-1, None]
    return out


def postprocess_hed_reference(prob, threshold=DEFAULT_THRESHOLD,
                              min_component=DEFAULT_MIN_COMPONENT):
    prob = np.nan_to_num(np.asarray(prob, dtype=np.float64), nan=0.0)
    nms = edges_nms_reference(prob, edge_orientation_reference(prob))
    mask = nms >= max(np.finfo(np.float64).eps, float(threshold))
    return remove_small_components(thin(mask), min_component)


def edge_map_reference(rgb: np.ndarray) -> np.ndarray:
    """The Sobel-fallback edge map, old path."""
    return postprocess_hed_reference(sobel_probability_reference(rgb))


def stroke_skeleton_reference(served_input: np.ndarray, threshold: float = STROKE_THRESHOLD
                              ) -> np.ndarray:
    x = np.asarray(served_input)
    if x.ndim == 3:
        x = x[..., 0]
    darkest = float(x.min()) if x.size else 1.0
    if darkest > 1 - MIN_CONTRAST:
        return np.zeros(x.shape, dtype=bool)
    return thin(x < max(threshold, (1 + darkest) / 2))


def match_pixels_reference(edges: np.ndarray, strokes: np.ndarray, tolerance_px: float
                           ) -> Match:
    """The KD-tree matcher: graph from ``cKDTree.query_ball_tree`` + a Python loop."""
    edges, strokes = np.asarray(edges, bool), np.asarray(strokes, bool)
    pe, ps = np.argwhere(edges), np.argwhere(strokes)
    if len(pe) == 0 or len(ps) == 0:
        return Match(len(pe), len(ps), 0)
    neighbours = cKDTree(pe).query_ball_tree(cKDTree(ps), r=tolerance_px + 1e-9)
    rows = np.repeat(np.arange(len(pe)), [len(nb) for nb in neighbours])
    cols = np.fromiter((j for nb in neighbours for j in nb), dtype=np.int64, count=len(rows))
    if len(rows) == 0:
        return Match(len(pe), len(ps), 0)
    graph = csr_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)),
                       shape=(len(pe), len(ps)))
    assignment = maximum_bipartite_matching(graph, perm_type="column")
    return Match(len(pe), len(ps), int((assignment >= 0).sum()))


def per_sample_reference(inputs, outputs, tolerance_px: float | None = None
                         ) -> list[Match | None]:
    """The old ``AdherenceMetrics.compute`` loop (Sobel fallback): one Match per sample,
    None for an input with no strokes."""
    shape = outputs.shape[1:3]
    tol = tolerance_px if tolerance_px is not None else tolerance_for(shape)
    out: list[Match | None] = []
    for i in range(len(outputs)):
        strokes = stroke_skeleton_reference(inputs[i])
        if not strokes.any():
            out.append(None)
            continue
        edges = thin(np.asarray(edge_map_reference(outputs[i]), dtype=bool))
        out.append(match_pixels_reference(edges, strokes, tol))
    return out
