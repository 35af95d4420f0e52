"""Edge extraction: HED (OpenCV DNN) or a documented fallback, plus the pix2pix post-processing.

Public API (stable; the sketch tooling and the adherence metric build on it):

- :func:`postprocess_hed` - PostprocessHED.m on a probability map -> bool edges (1 px)
- :func:`detect_edges` - RGB uint8 -> (uint8 black strokes on white, detector id)
- :func:`edge_map` - RGB uint8 -> bool edges (True = edge)
- :func:`make_ab` - photo + edges -> pix2pix AB image (edges left, photo right)
"""

from evalkit.inputs.edges.detectors import (
    FALLBACK_ID,
    HedDetector,
    HedUnavailable,
    SobelDetector,
    get_detector,
)
from evalkit.inputs.edges.pipeline import detect_edges, edge_map, make_ab, photos_to_ab
from evalkit.inputs.edges.postprocess import (
    DEFAULT_MIN_COMPONENT,
    DEFAULT_THRESHOLD,
    edges_to_uint8,
    postprocess_hed,
)

__all__ = [
    "DEFAULT_MIN_COMPONENT",
    "DEFAULT_THRESHOLD",
    "FALLBACK_ID",
    "HedDetector",
    "HedUnavailable",
    "SobelDetector",
    "detect_edges",
    "edge_map",
    "edges_to_uint8",
    "get_detector",
    "make_ab",
    "photos_to_ab",
    "postprocess_hed",
]
