"""Edge detectors that produce an edge-probability map for the pix2pix post-processing.

Two detectors, each identified by the id recorded with every AB set it makes:

``hed`` (id ``hed-opencv-dnn:<sha256 of the model, 12 hex>``)
    Holistically-Nested Edge Detection (Xie & Tu, ICCV 2015), the detector the seed used:
    the BSDS-trained model run through OpenCV's DNN module, on the RGB image converted to
    BGR, reflect-padded by 32 px, minus the Caffe mean (104.00698794, 116.66876762,
    122.67891434), no scaling; the fused sigmoid output is cropped back to the image.
    The Caffe model (``hed_pretrained_bsds.caffemodel`` + ``deploy.prototxt``) needs an
    OpenCV with the Caffe importer (OpenCV 4.x; OpenCV 5, installed here, removed it), and
    uses the centre-crop ``Crop`` layer of OpenCV's ``samples/dnn/edge_detection.py``. With
    OpenCV 5, convert it once to ONNX (``evalkit edges --convert-hed``,
    :mod:`evalkit.inputs.edges.convert`, same crop convention); the ``.onnx`` runs with any OpenCV.

``sobel`` (id ``fallback-sobel-v1``) - the documented fallback, used when no HED model is
    supplied (HED's weights cannot be shipped or downloaded here).
    Gaussian smoothing (sigma 1 px) of the RGB image in [0, 1], Sobel gradient magnitude per
    channel (:func:`skimage.filters.sobel`), the maximum over channels, divided by the
    magnitude a 0.25 step (about 64 grey levels) produces and clipped to [0, 1]. The result
    is a soft, few-pixel-wide ridge on every colour boundary, like HED's output, so the
    *same* post-processing (NMS, 25/255 threshold, thinning, small-component removal)
    turns it into 1-px strokes. How it differs from HED: it is a local contrast detector
    with no learned notion of object boundaries, so it also fires on texture, shading and
    JPEG noise with enough contrast and misses boundaries between regions of similar
    colour; on flat-shaded cartoon images (the shipped example) the two agree on the
    region outlines, on photographs HED is far cleaner. Edges from the two are different
    distributions: never mix them in one training or held-out set.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from scipy import ndimage
from skimage import filters

#: The Caffe mean of HED's BSDS model, BGR order (the seed's and pix2pix's batch_hed.py).
HED_MEAN_BGR = (104.00698794, 116.66876762, 122.67891434)
#: Reflect padding around the image before HED, in pixels (the seed's value).
HED_PAD = 32

FALLBACK_ID = "fallback-sobel-v1"


class EdgeDetector(Protocol):
    """Anything that turns an RGB image into an edge-probability map."""

    id: str
    description: str

    def probability(self, rgb: np.ndarray) -> np.ndarray:
        """``(H, W, 3)`` uint8 RGB -> ``(H, W)`` float32 edge probability in [0, 1]."""
        ...


class HedUnavailable(RuntimeError):
    """The HED model cannot be loaded with this OpenCV build (message says what to do)."""


def as_rgb_uint8(image: np.ndarray) -> np.ndarray:
    """Accept ``(H, W, 3)`` / ``(H, W, 4)`` / ``(H, W)`` uint8 and return ``(H, W, 3)`` uint8 RGB."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise TypeError(f"expected a uint8 image in [0, 255], got dtype {arr.dtype}")
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ValueError(f"expected an (H, W, 3) RGB image, got shape {arr.shape}")
    return np.ascontiguousarray(arr[..., :3])


@dataclass(frozen=True)
class SobelDetector:
    """The fallback detector (see the module docstring). ``sigma`` in pixels; ``saturation``
    is the intensity step (on the [0, 1] scale) whose smoothed Sobel response maps to 1."""

    sigma: float = 1.0
    saturation: float = 0.25

    @property
    def id(self) -> str:
        if (self.sigma, self.saturation) == (1.0, 0.25):
            return FALLBACK_ID
        return f"{FALLBACK_ID}(sigma={self.sigma:g},saturation={self.saturation:g})"

    @property
    def description(self) -> str:
        return (f"Sobel fallback (HED weights not supplied): Gaussian sigma {self.sigma:g} px, "
                "per-channel Sobel magnitude on RGB in [0, 1], max over channels, scaled so "
                f"a {self.saturation:g} step gives 1, clipped to [0, 1]; then the pix2pix "
                "PostprocessHED recipe")

    def probability(self, rgb: np.ndarray) -> np.ndarray:
        # The three channels in one (3, H, W) array: the same per-channel Gaussian (sigma 0
        # along the channel axis skips it) and the same Sobel as skimage.filters.sobel
        # (kernels and summation order as _generic_edge_filter), so values are identical to
        # filtering each channel on its own, in fewer, larger calls.
        img = np.ascontiguousarray(as_rgb_uint8(rgb).transpose(2, 0, 1)).astype(
            np.float64) / 255.0
        smooth = ndimage.gaussian_filter(img, (0.0, self.sigma, self.sigma), mode="nearest")
        mag = np.max(_sobel_magnitude(smooth), axis=0)
        return np.clip(mag / _unit_step_response(self.sigma, self.saturation), 0.0, 1.0
                       ).astype(np.float32)


#: skimage.filters.sobel's kernels (edges.py: SOBEL_EDGE x SOBEL_SMOOTH) along rows and
#: columns, as (1, 3, 3) kernels acting on each image of a (C, H, W) stack.
_SOBEL_EDGE, _SOBEL_SMOOTH = np.array([1, 0, -1]), np.array([1, 2, 1]) / 4
_SOBEL_KERNELS = (
    (_SOBEL_EDGE.reshape(3, 1) * _SOBEL_SMOOTH.reshape(1, 3))[None],
    (_SOBEL_EDGE.reshape(1, 3) * _SOBEL_SMOOTH.reshape(3, 1))[None],
)


def _sobel_magnitude(stack: np.ndarray) -> np.ndarray:
    """``skimage.filters.sobel(image, mode='nearest')`` of each float64 ``(H, W)`` image of a
    ``(C, H, W)`` stack: ``sqrt((g_row^2 + g_col^2) / 2)``, computed as scikit-image does."""
    out = np.zeros(stack.shape, dtype=stack.dtype)
    for kernel in _SOBEL_KERNELS:
        g = ndimage.convolve(stack, kernel, mode="nearest")
        g *= g
        out += g
    return np.sqrt(out) / np.sqrt(2, dtype=out.dtype)


@functools.lru_cache(maxsize=16)
def _unit_step_response(sigma: float, step: float) -> float:
    """Peak smoothed-Sobel magnitude of a vertical step of height ``step`` (calibration)."""
    img = np.zeros((32, 32))
    img[:, 16:] = step
    smooth = ndimage.gaussian_filter(img, sigma, mode="nearest")
    return float(filters.sobel(smooth, mode="nearest").max())


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class _CenterCropLayer:
    """Caffe ``Crop`` as OpenCV's ``samples/dnn/edge_detection.py`` defines it for HED:
    crop the first input to the spatial size of the second, centred."""

    def __init__(self, params, blobs):
        self.ystart = self.xstart = self.yend = self.xend = 0

    def getMemoryShapes(self, inputs):  # noqa: N802 - OpenCV's callback name
        in_shape, target_shape = inputs[0], inputs[1]
        h, w = target_shape[2], target_shape[3]
        self.ystart = (in_shape[2] - h) // 2
        self.xstart = (in_shape[3] - w) // 2
        self.yend, self.xend = self.ystart + h, self.xstart + w
        return [[in_shape[0], in_shape[1], h, w]]

    def forward(self, inputs):
        return [inputs[0][:, :, self.ystart:self.yend, self.xstart:self.xend]]


class HedDetector:
    """HED through OpenCV DNN (see the module docstring for the exact pre-processing).

    ``model``: ``.caffemodel`` (with ``proto`` = deploy prototxt) or ``.onnx``. The output
    used is the network's last output (HED's ``sigmoid-fuse``), channel 0.
    """

    def __init__(self, model: str | Path, proto: str | Path | None = None, pad: int = HED_PAD):
        self.model = Path(model)
        self.proto = Path(proto) if proto is not None else None
        self.pad = int(pad)
        if not self.model.is_file():
            raise FileNotFoundError(f"HED model {self.model} not found")
        if self.proto is not None and not self.proto.is_file():
            raise FileNotFoundError(f"HED prototxt {self.proto} not found")
        self.id = f"hed-opencv-dnn:{_sha256(self.model)[:12]}"
        self.description = (f"HED ({self.model.name}) through OpenCV DNN: BGR, reflect pad "
                            f"{self.pad}, Caffe mean {HED_MEAN_BGR}; then the pix2pix "
                            "PostprocessHED recipe")
        self._net = None

    def _load(self):
        import cv2

        if self.model.suffix.lower() == ".onnx":
            return cv2.dnn.readNetFromONNX(str(self.model))
        if self.proto is None:
            raise HedUnavailable("a Caffe HED model needs its deploy prototxt (--hed-proto)")
        if not hasattr(cv2.dnn, "readNetFromCaffe"):
            raise HedUnavailable(
                f"OpenCV {cv2.__version__} has no Caffe importer (removed in OpenCV 5): "
                f"convert the model once with `evalkit edges --convert-hed {self.proto} "
                f"{self.model} --out hed.onnx` and pass --hed-model hed.onnx")
        try:
            cv2.dnn_registerLayer("Crop", _CenterCropLayer)
        except Exception:  # already registered in this process
            pass
        return cv2.dnn.readNetFromCaffe(str(self.proto), str(self.model))

    def load(self) -> None:
        """Read the model now (raises :class:`HedUnavailable` / OpenCV's error early)."""
        if self._net is None:
            self._net = self._load()

    def probability(self, rgb: np.ndarray) -> np.ndarray:
        import cv2

        self.load()
        img = as_rgb_uint8(rgb)
        h, w = img.shape[:2]
        bgr = img[..., ::-1].astype(np.float32)
        p = self.pad
        padded = np.pad(bgr, ((p, p), (p, p), (0, 0)), mode="reflect") if p else bgr
        blob = cv2.dnn.blobFromImage(np.ascontiguousarray(padded), scalefactor=1.0,
                                     size=(w + 2 * p, h + 2 * p), mean=HED_MEAN_BGR,
                                     swapRB=False, crop=False)
        self._net.setInput(blob)
        out = np.asarray(self._net.forward())
        prob = out.reshape(out.shape[-2], out.shape[-1]) if out.ndim == 2 else out[0, 0]
        if prob.shape != (h + 2 * p, w + 2 * p):
            raise RuntimeError(f"HED output has shape {prob.shape}, expected "
                               f"{(h + 2 * p, w + 2 * p)} (padded input)")
        prob = prob[p:p + h, p:p + w]
        return np.clip(prob, 0.0, 1.0).astype(np.float32)


@functools.lru_cache(maxsize=4)
def _cached_hed(model: str, proto: str | None) -> HedDetector:
    return HedDetector(model, proto)


def get_detector(name: str | None = None, hed_model: str | Path | None = None,
                 hed_proto: str | Path | None = None) -> EdgeDetector:
    """Pick a detector: ``"hed"`` (needs ``hed_model``), ``"sobel"``, or ``None`` = HED when
    a model is given, else the fallback."""
    if name is None:
        name = "hed" if hed_model is not None else "sobel"
    name = name.lower()
    if name == "hed":
        if hed_model is None:
            raise ValueError("detector 'hed' needs the HED model file (hed_model / --hed-model)")
        return _cached_hed(str(hed_model), str(hed_proto) if hed_proto is not None else None)
    if name in ("sobel", "fallback", FALLBACK_ID):
        return SobelDetector()
    raise ValueError(f"unknown edge detector {name!r}: use 'hed' or 'sobel'")
