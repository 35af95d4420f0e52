"""Photos -> edges -> pix2pix AB pairs, the seed's data preparation (HED + PostprocessHED
+ combine.py), with the detector recorded beside the pairs in ``detector.json``."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from evalkit.inputs.data.files import first_line, read_image, scan_folder
from evalkit.inputs.edges.detectors import FALLBACK_ID, EdgeDetector, as_rgb_uint8, get_detector
from evalkit.inputs.edges.postprocess import (
    DEFAULT_MIN_COMPONENT,
    DEFAULT_THRESHOLD,
    edges_to_uint8,
    postprocess_hed,
)

DETECTOR_FILE = "detector.json"
#: Smallest photo side edge detection accepts, px (the post-processing takes gradients,
#: which need 2 samples along each axis).
MIN_SIDE = 2
#: What detector.json says when the pairs were made by the fallback detector.
#: Why a photo with an empty edge map is skipped.
BLANK_REASON = ("edge map is empty: the detector found no edge (a flat, blank or fully "
                "transparent image); as a pair it would be a blank drawing, so it is not "
                "written (--keep-blank writes it)")
FALLBACK_NOTE = ("not HED edges: made by the Sobel fallback detector; models trained on HED "
                 "pairs score differently on them")


def detect_edges(rgb: np.ndarray, detector: str | EdgeDetector | None = None, *,
                 hed_model: str | Path | None = None, hed_proto: str | Path | None = None,
                 threshold: float = DEFAULT_THRESHOLD,
                 min_component: int = DEFAULT_MIN_COMPONENT) -> tuple[np.ndarray, str]:
    """The seed's edge image of one photo.

    ``rgb``: ``(H, W, 3)`` uint8. ``detector``: ``"hed"`` (needs ``hed_model``), ``"sobel"``
    (the fallback), a detector object, or None (HED when ``hed_model`` is given, else the
    fallback). Returns ``((H, W) uint8, black (0) strokes on white (255), detector id)``.
    """
    mask, det_id = _edge_mask(rgb, detector, hed_model, hed_proto, threshold, min_component)
    return edges_to_uint8(mask), det_id


def edge_map(rgb: np.ndarray, detector: str | EdgeDetector | None = None) -> np.ndarray:
    """``(H, W)`` bool edge mask (True = 1-px edge) of an ``(H, W, 3)`` uint8 RGB image."""
    return _edge_mask(rgb, detector, None, None, DEFAULT_THRESHOLD, DEFAULT_MIN_COMPONENT)[0]


def _edge_mask(rgb, detector, hed_model, hed_proto, threshold, min_component):
    det = detector if hasattr(detector, "probability") else get_detector(
        detector, hed_model=hed_model, hed_proto=hed_proto)
    prob = det.probability(as_rgb_uint8(rgb))
    return postprocess_hed(prob, threshold=threshold, min_component=min_component), det.id


def make_ab(photo_rgb: np.ndarray | Image.Image, edges_uint8: np.ndarray | Image.Image
            ) -> Image.Image:
    """pix2pix AB image (the seed's combine.py): edges A on the left, photo B on the right.

    Both halves must have the same size; the edges (uint8 grey, or any mode) are written as
    RGB grey. Returns an RGB :class:`PIL.Image.Image` of size ``(2W, H)``.
    """
    photo = photo_rgb if isinstance(photo_rgb, Image.Image) else Image.fromarray(
        as_rgb_uint8(photo_rgb))
    edges = edges_uint8 if isinstance(edges_uint8, Image.Image) else Image.fromarray(
        np.asarray(edges_uint8, dtype=np.uint8))
    if photo.size != edges.size:
        raise ValueError(f"edge image {edges.size} and photo {photo.size} differ in size")
    ab = Image.new("RGB", (photo.width * 2, photo.height), (255, 255, 255))
    ab.paste(edges.convert("RGB"), (0, 0))
    ab.paste(photo.convert("RGB"), (photo.width, 0))
    return ab


@dataclass
class EdgesResult:
    """What :func:`photos_to_ab` wrote."""

    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    detector_id: str = ""
    #: photos whose edge map is empty (no stroke pixel): also in ``skipped``, or, with
    #: ``keep_blank``, written as blank pairs
    blank: list[Path] = field(default_factory=list)


def detector_record(det: EdgeDetector, threshold: float, min_component: int,
                    **extra) -> dict:
    """The provenance written to ``detector.json``."""
    return {
        "detector": det.id,
        "hed": not det.id.startswith(FALLBACK_ID),
        **({"warning": FALLBACK_NOTE} if det.id.startswith(FALLBACK_ID) else {}),
        "description": det.description,
        "postprocess": {
            "recipe": "pix2pix PostprocessHED.m: NMS (r=1, s=5, m=1.01) along the edge normal, "
                      "threshold, thin to 1 px, remove small 8-connected components, invert",
            "threshold": threshold,
            "min_component_px": min_component,
        },
        "layout": "AB: edges (black strokes on white) left, photo right",
        **extra,
    }


def photos_to_ab(photos: Iterable[Path] | Path, out_dir: str | Path,
                 detector: str | EdgeDetector | None = None, *,
                 hed_model: str | Path | None = None, hed_proto: str | Path | None = None,
                 size: int | None = None, fmt: str = "jpg",
                 threshold: float = DEFAULT_THRESHOLD,
                 min_component: int = DEFAULT_MIN_COMPONENT,
                 keep_blank: bool = False) -> EdgesResult:
    """Turn photos (a folder or a list of files) into AB pairs under ``out_dir``.

    ``size``: resize each photo to ``size x size`` (Pillow bicubic) before edge detection;
    None keeps each photo's size. ``fmt``: ``jpg`` (the seed's combine.py, quality 95) or
    ``png`` (lossless). Writes ``<stem>.<fmt>`` per photo (``<stem>_<ext>.<fmt>`` when two
    photos share a stem) and ``detector.json``; every photo that cannot be read or processed
    (unreadable, truncated, smaller than :data:`MIN_SIDE` px, a detector error) and every
    non-image entry of the folder is listed in ``skipped`` with its reason; the rest go on.
    A photo whose edge map is empty (no edge pixel: a flat or fully transparent image) is
    listed in ``blank`` and skipped with :data:`BLANK_REASON` (a blank pair would be served
    as a blank page and scored as if someone drew it), or written when ``keep_blank``.
    """
    if fmt not in ("jpg", "png"):
        raise ValueError("fmt must be 'jpg' or 'png'")
    result = EdgesResult()
    if isinstance(photos, (str, Path)):
        folder = Path(photos)
        if not folder.is_dir():
            raise FileNotFoundError(f"photo folder {folder} does not exist")
        photos, other = scan_folder(folder, recursive=False)
        result.skipped.extend((folder / o.file, o.reason) for o in other)
    det = detector if hasattr(detector, "probability") else get_detector(
        detector, hed_model=hed_model, hed_proto=hed_proto)
    result.detector_id = det.id
    if hasattr(det, "load"):
        det.load()  # a model that cannot be read is a usage error, not N skipped photos
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    names: dict[str, Path] = {}
    for path in photos:
        path = Path(path)
        target = out_dir / f"{path.stem}.{fmt}"
        if target.name in names:  # x.png and x.jpg would write the same x.jpg
            target = out_dir / f"{path.stem}_{path.suffix.lstrip('.').lower()}.{fmt}"
        try:
            if target.name in names:
                raise ValueError(f"its output name {target.name} is taken by "
                                 f"{names[target.name].name}: rename one of them")
            im, _ = read_image(path)
            im = im.convert("RGB")
            if size is not None:
                im = im.resize((size, size))
            rgb = np.asarray(im, dtype=np.uint8)
            if min(rgb.shape[:2]) < MIN_SIDE:
                raise ValueError(f"image is {rgb.shape[1]}x{rgb.shape[0]} px: edge detection "
                                 f"needs at least {MIN_SIDE} px on each side")
            edges, _ = detect_edges(rgb, det, threshold=threshold, min_component=min_component)
            if not (edges < 128).any():
                result.blank.append(path)
                if not keep_blank:
                    raise ValueError(BLANK_REASON)
            ab = make_ab(rgb, edges)
            if fmt == "jpg":
                ab.save(target, quality=95)
            else:
                ab.save(target)
        except Exception as exc:  # unreadable, truncated, too small, detector error: go on
            result.skipped.append((path, first_line(exc)))
            continue
        names[target.name] = path
        result.written.append(target)
    kept_blank = [p.name for p in result.blank] if keep_blank else []
    write_detector_json(out_dir, det, threshold, min_component, count=len(result.written),
                        image_size=size, **({"blank_kept": kept_blank} if kept_blank else {}))
    return result


def write_detector_json(out_dir: Path, det: EdgeDetector, threshold: float = DEFAULT_THRESHOLD,
                        min_component: int = DEFAULT_MIN_COMPONENT, **extra) -> Path:
    """Write ``detector.json`` (which detector and recipe made the AB files) in ``out_dir``."""
    path = Path(out_dir) / DETECTOR_FILE
    path.write_text(json.dumps(detector_record(det, threshold, min_component, **extra),
                               indent=2) + "\n")
    return path
