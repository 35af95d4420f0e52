"""The pix2pix authors' HED post-processing (``scripts/edges/PostprocessHED.m``) in Python.

The MATLAB recipe, per image, with its defaults ``threshold = 25/255`` and
``small_edge = 5``::

    [Ox, Oy] = gradient(convTri(E, 4), 1);
    [Oxx, ~] = gradient(Ox, 1);  [Oxy, Oyy] = gradient(Oy, 1);
    O = mod(atan(Oyy .* sign(-Oxy) ./ (Oxx + 1e-5)), pi);
    E = edgesNmsMex(E, O, 1, 5, 1.01, 1);     % r=1, s=5, m=1.01 (Piotr's toolbox)
    E = double(E >= max(eps, threshold));
    E = bwmorph(E, 'thin', inf);
    E = bwareaopen(E, small_edge);
    E = 1 - E;                                 % black strokes on white

:func:`postprocess_hed` returns the boolean edge mask (before the final inversion);
:func:`edges_to_uint8` does the inversion. The probability map is used at its own size (the
MATLAB script first ``imresize``-d it to the training width; callers resize images, not
probability maps, in evalkit).

Library mapping: ``convTri`` -> :func:`scipy.ndimage.correlate1d` with the same triangle
kernel and ``mode='reflect'`` (= MATLAB ``'symmetric'`` padding); ``gradient`` ->
:func:`numpy.gradient` (central differences, one-sided at the border, as MATLAB);
``bwmorph(.., 'thin', inf)`` -> :func:`skimage.morphology.thin` (the same Lam-Lee-Suen /
Guo-Hall two-subiteration algorithm); ``bwareaopen`` -> :func:`skimage.morphology.remove_small_objects`
with 8-connectivity (MATLAB's 2-D default). ``edgesNmsMex`` has no library equivalent and
is ported in :func:`edges_nms`.
"""

from __future__ import annotations

import inspect

import numpy as np
from scipy import ndimage
from skimage import morphology

#: PostprocessHED.m's default threshold on the HED probability (25/255).
DEFAULT_THRESHOLD = 25.0 / 255.0
#: PostprocessHED.m's default ``small_edge``: components with fewer pixels are removed.
DEFAULT_MIN_COMPONENT = 5


def conv_tri(image: np.ndarray, radius: int) -> np.ndarray:
    """Piotr's ``convTri(I, r)`` for integer ``r >= 1``: separable triangle filter.

    Kernel ``[1 .. r, r+1, r .. 1] / (r+1)^2`` along each axis, symmetric padding. Float
    in, float out, same shape.
    """
    if radius < 1:
        raise ValueError("conv_tri: radius must be a positive integer")
    kernel = np.concatenate([np.arange(1, radius + 2), np.arange(radius, 0, -1)]).astype(
        np.float64) / float((radius + 1) ** 2)
    out = ndimage.correlate1d(np.asarray(image, np.float64), kernel, axis=0, mode="reflect")
    return ndimage.correlate1d(out, kernel, axis=1, mode="reflect")


def edge_orientation(prob: np.ndarray) -> np.ndarray:
    """Edge-normal orientation in radians, in [0, pi), as PostprocessHED.m computes it.

    Angle measured from the +x (column) axis towards +y (row, downwards), from the second
    derivatives of the triangle-smoothed (r=4) probability map.
    """
    smooth = conv_tri(prob, 4)
    oy, ox = np.gradient(smooth)          # numpy: d/drow, d/dcol; MATLAB: [Ox, Oy]
    oxx = np.gradient(ox, axis=1)         # MATLAB: [Oxx, ~] = gradient(Ox)
    oyy, oxy = np.gradient(oy)            # MATLAB: [Oxy, Oyy] = gradient(Oy)
    # MATLAB's sign(0) is 0, which would give every perfectly axis-aligned ridge (no
    # cross-derivative at all: common in synthetic and cartoon images, measure-zero in real
    # HED output) the orientation 0 whatever its direction, so a horizontal ridge would be
    # "suppressed" along itself instead of across. Treating sign(0) as +1 gives such ridges
    # the orientation the formula tends to for any tiny Oxy (pi/2 for horizontal ridges);
    # everywhere else it is the MATLAB formula unchanged.
    sign = np.where(-oxy >= 0, 1.0, -1.0)
    return np.mod(np.arctan(oyy * sign / (oxx + 1e-5)), np.pi)


def edges_nms(prob: np.ndarray, orientation: np.ndarray, radius: int = 1,
              border: int = 5, multiplier: float = 1.01) -> np.ndarray:
    """Non-maximum suppression along the edge normal: Piotr Dollar's ``edgesNmsMex``.

    Hand-written because neither scikit-image nor OpenCV offers NMS along a *given*
    orientation field on a soft map (Canny's NMS is tied to its own Sobel gradients, and
    ``cv2.ximgproc`` is not in opencv-python-headless). Same semantics as the C++ source:

    - a pixel ``e = E(y, x) > 0`` is kept unless, for some ``d`` in ``-r..r`` (``d != 0``),
      ``e * m < E(y + d*sin(O), x + d*cos(O))`` (bilinear interpolation, coordinates clamped
      to the image as the toolbox's ``interp`` does);
    - then the ``s`` pixels nearest each border fade linearly: the value at distance ``k``
      (0-based) from a border is multiplied by ``k / s`` (so the outermost row is zeroed).

    ``prob`` float in [0, 1], ``orientation`` radians; returns float64, same shape.
    """
    e = np.asarray(prob, np.float64)
    h, w = e.shape
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    cos_o, sin_o = np.cos(orientation), np.sin(orientation)
    keep = e > 0
    scaled = e * multiplier
    for d in range(-radius, radius + 1):
        if d == 0:
            continue
        # The toolbox clamps to [0, size - 1.001] before bilinear interpolation.
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


def remove_small_components(mask: np.ndarray, min_component: int) -> np.ndarray:
    """MATLAB ``bwareaopen(mask, min_component)``: drop 8-connected components with fewer
    than ``min_component`` pixels. Bool in, bool out."""
    mask = np.asarray(mask, bool)
    if min_component <= 1:
        return mask.copy()
    params = inspect.signature(morphology.remove_small_objects).parameters
    if "max_size" in params:  # scikit-image >= 0.26: removes sizes <= max_size
        return morphology.remove_small_objects(mask, max_size=min_component - 1, connectivity=2)
    return morphology.remove_small_objects(mask, min_size=min_component, connectivity=2)


def postprocess_hed(prob: np.ndarray, threshold: float = DEFAULT_THRESHOLD,
                    min_component: int = DEFAULT_MIN_COMPONENT) -> np.ndarray:
    """PostprocessHED.m on one edge-probability map.

    ``prob``: ``(H, W)`` float in [0, 1] (HED's fused sigmoid output, or the fallback
    detector's pseudo-probability). Returns ``(H, W)`` bool, True on edge pixels: NMS along
    the edge normal, ``>= max(eps, threshold)``, thinned to 1 px, components of fewer than
    ``min_component`` pixels (8-connected) removed.
    """
    prob = np.asarray(prob, dtype=np.float64)
    if prob.ndim != 2:
        raise ValueError(f"postprocess_hed expects an (H, W) map, got shape {prob.shape}")
    if prob.size and (np.nanmin(prob) < 0.0 or np.nanmax(prob) > 1.0):
        raise ValueError("postprocess_hed expects probabilities in [0, 1] "
                         f"(got [{np.nanmin(prob):.3g}, {np.nanmax(prob):.3g}])")
    prob = np.nan_to_num(prob, nan=0.0)
    nms = edges_nms(prob, edge_orientation(prob), radius=1, border=5, multiplier=1.01)
    mask = nms >= max(np.finfo(np.float64).eps, float(threshold))
    mask = morphology.thin(mask)
    return remove_small_components(mask, min_component)


def edges_to_uint8(mask: np.ndarray) -> np.ndarray:
    """Edge mask (True = edge) -> ``(H, W)`` uint8, black (0) strokes on white (255)."""
    return np.where(np.asarray(mask, bool), 0, 255).astype(np.uint8)
