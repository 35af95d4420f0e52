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
Guo-Hall two-subiteration algorithm; :func:`thin` re-implements it on the foreground pixels
only, with scikit-image's own lookup tables, for speed, with identical output); ``bwareaopen`` -> :func:`skimage.morphology.remove_small_objects`
with 8-connectivity (MATLAB's 2-D default). ``edgesNmsMex`` has no library equivalent and
is ported in :func:`edges_nms`.
"""

from __future__ import annotations

import inspect

import numpy as np
from scipy import ndimage
from skimage import morphology

try:  # scikit-image's Guo-Hall lookup tables (private names; fall back to its thin())
    from skimage.morphology._skeletonize import G123_LUT, G123P_LUT
except ImportError:  # pragma: no cover - a scikit-image that moved them
    G123_LUT = G123P_LUT = None

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
    return _orientation(prob, None).reshape(np.shape(prob))


def _orientation(prob: np.ndarray, at: np.ndarray | None) -> np.ndarray:
    """:func:`edge_orientation` at the flat indices ``at`` only (1-D), or everywhere (None,
    flattened). The derivatives need the whole map; the elementwise formula does not."""
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
    oxx, oyy, oxy = (a.ravel() if at is None else a.ravel()[at] for a in (oxx, oyy, oxy))
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
    cand = np.flatnonzero(e > 0)
    orient = np.asarray(orientation, np.float64).ravel()[cand]
    return _nms(e, cand, orient, radius, border, multiplier)


def _nms(e: np.ndarray, cand: np.ndarray, orient: np.ndarray, radius: int, border: int,
         multiplier: float) -> np.ndarray:
    """:func:`edges_nms` evaluated at the flat indices ``cand`` only (``orient`` = the
    orientation there); every other pixel of the result is 0. Each pixel's test reads only
    its own value, orientation and interpolated neighbours, so restricting it to the pixels
    that can be kept gives exactly the values of the whole-image computation there."""
    h, w = e.shape
    rows, cols = np.divmod(cand, w)
    rows, cols = rows.astype(np.float64), cols.astype(np.float64)
    cos_o, sin_o = np.cos(orient), np.sin(orient)
    flat = e.ravel()
    vals = flat[cand]
    keep = vals > 0
    scaled = vals * multiplier
    for d in range(-radius, radius + 1):
        if d == 0:
            continue
        at = np.flatnonzero(keep)  # a pixel already suppressed needs no further test
        # The toolbox clamps to [0, size - 1.001] before bilinear interpolation.
        r = np.clip(rows[at] + d * sin_o[at], 0.0, h - 1.001)
        c = np.clip(cols[at] + d * cos_o[at], 0.0, w - 1.001)
        if h >= 2 and w >= 2 and np.isfinite(r).all() and np.isfinite(c).all():
            neighbour = _bilinear(flat, w, r, c)
        else:  # degenerate map or NaN orientation: scipy's own border/NaN handling
            neighbour = ndimage.map_coordinates(e, [r, c], order=1, mode="nearest")
        keep[at] = ~(scaled[at] < neighbour)
    out = np.zeros(e.shape, np.float64)
    out.ravel()[cand[keep]] = vals[keep]
    s = int(min(border, w // 2, h // 2))
    if s > 0:
        ramp = np.arange(s, dtype=np.float64) / float(s)
        out[:, :s] *= ramp[None, :]
        out[:, w - s:] *= ramp[None, ::-1]
        out[:s, :] *= ramp[:, None]
        out[h - s:, :] *= ramp[::-1, None]
    return out


def _bilinear(flat: np.ndarray, w: int, r: np.ndarray, c: np.ndarray) -> np.ndarray:
    """``ndimage.map_coordinates(image, [r, c], order=1)`` for coordinates inside
    ``[0, H - 1) x [0, W - 1)`` of the row-major ``(H, W)`` image ``flat`` of width ``w``.

    Hand-written (2-3x faster than map_coordinates' generic spline loop) with scipy's own
    arithmetic, so the values are the same bit for bit: weights ``1 - t`` and
    ``1 - (1 - t)``, each corner's value times its row weight times its column weight,
    summed in row-major corner order (tests/test_adherence_fast.py compares the two).
    """
    r0, c0 = np.floor(r), np.floor(c)
    wr0 = 1.0 - (r - r0)
    wr1 = 1.0 - wr0
    wc0 = 1.0 - (c - c0)
    wc1 = 1.0 - wc0
    i = r0.astype(np.intp) * w + c0.astype(np.intp)
    v = flat[i] * wr0 * wc0
    v += flat[i + 1] * wr0 * wc1
    v += flat[i + w] * wr1 * wc0
    v += flat[i + w + 1] * wr1 * wc1
    return v


#: (row offset, column offset, weight) of the 8 neighbours in scikit-image's thin() code.
_THIN_NEIGHBOURS = ((-1, -1, 8), (-1, 0, 4), (-1, 1, 2), (0, -1, 16), (0, 1, 1),
                    (1, -1, 32), (1, 0, 64), (1, 1, 128))


def thin(mask: np.ndarray) -> np.ndarray:
    """``skimage.morphology.thin(mask)`` (to convergence), same output, faster on sparse maps.

    Hand-written because scikit-image correlates the *whole* image twice per iteration
    until nothing changes (17 iterations on a noisy 256 px edge map, most deleting a few
    pixels). This runs the same two parallel Guo-Hall subiterations with scikit-image's
    own lookup tables, but each subiteration looks only at the foreground pixels whose 3x3
    neighbourhood changed since that subiteration last looked at them (at first: all of
    them): a pixel's deletion test reads nothing else, so every other pixel would be kept
    again. Each subiteration therefore deletes exactly the pixels scikit-image's deletes,
    and it stops after the first iteration that deletes nothing, as scikit-image does.
    ``(H, W)`` bool in, bool out.
    """
    m = np.asarray(mask, dtype=bool)
    if m.ndim != 2:
        raise ValueError(f"thin expects an (H, W) mask, got shape {m.shape}")
    if G123_LUT is None:  # pragma: no cover
        return morphology.thin(m)
    h, w = m.shape
    padded = np.zeros((h + 2, w + 2), np.uint8)  # zero border = correlate(mode='constant')
    padded[1:-1, 1:-1] = m
    flat = padded.ravel()
    offsets = np.array([dy * (w + 2) + dx for dy, dx, _ in _THIN_NEIGHBOURS])
    weights = np.array([wt for _, _, wt in _THIN_NEIGHBOURS], np.uint8)
    luts = (G123_LUT, G123P_LUT)
    todo = [flat.astype(bool), flat.astype(bool)]  # per subiteration: pixels to (re)test
    changed = True
    while changed:
        changed = False
        for lut, pending in zip(luts, todo, strict=True):
            idx = np.flatnonzero(pending)
            pending[idx] = False
            idx = idx[flat[idx] == 1]
            if len(idx) == 0:
                continue
            code = np.zeros(len(idx), np.uint8)
            for off, wt in zip(offsets.tolist(), weights, strict=True):
                code += flat[idx + off] * wt
            gone = idx[lut[code]]
            if len(gone):
                flat[gone] = 0
                touched = (gone[:, None] + offsets[None, :]).ravel()
                for other in todo:
                    other[touched] = True
                changed = True
    return padded[1:-1, 1:-1].astype(bool)


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
    level = max(np.finfo(np.float64).eps, float(threshold))
    # NMS only where the result can reach the threshold: NMS output <= the pixel's own value
    # (kept or zeroed, then faded by a ramp <= 1), so any pixel below ``level`` ends up
    # False whatever its neighbours; the others get exactly edges_nms's value.
    cand = np.flatnonzero(prob >= level)
    nms = _nms(prob, cand, _orientation(prob, cand), radius=1, border=5,
               multiplier=1.01)
    mask = thin(nms >= level)
    return remove_small_components(mask, min_component)


def edges_to_uint8(mask: np.ndarray) -> np.ndarray:
    """Edge mask (True = edge) -> ``(H, W)`` uint8, black (0) strokes on white (255)."""
    return np.where(np.asarray(mask, bool), 0, 255).astype(np.uint8)
