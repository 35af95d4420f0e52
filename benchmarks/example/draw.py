"""The procedural stroke drawer that makes the starter set in ``human_sketches/``.

Not a person's drawing, and the manifest says so: every sketch is *drawn procedurally by
evalkit's stroke drawer* from a template of its domain (a face for ``person``, the seed's
Cartoon Set domain; a side view for ``car`` and ``shoe``) and a seed. What makes it look
hand-made, all seeded (``numpy.random.default_rng(seed)``):

* **Proportions**: every template measure (head shape, roof height, wheel size, heel
  height...) and the choice of parts (glasses, hair style, body type...) is drawn at random.
* **Placement**: the drawing is fitted so that its longer side spans 74-86% of the canvas
  (like the seed team's cropped sketches), then jittered as a whole (rotation +-4 deg,
  scale 0.9-1.05, shift +-4% of the canvas); cars and shoes mirrored half of the time.
* **Wobble**: each stroke is resampled every ~1 px and displaced along its normal by a
  sum of three low-frequency sines (1.5-4 cycles per canvas width, amplitude 0.6-1.6 px
  at 256 px) plus a faint tremor (15-25 cycles, a quarter of that amplitude).
* **Ends**: open strokes overshoot or stop short of their end by -1..+2% of the canvas;
  closed shapes (eyes, wheels) are drawn as one stroke that overlaps or leaves a gap of
  -0.15..+0.35 rad, as a hand does.
* **Pressure**: the pen width (1.6-2.8 px at 256 px, per sketch) varies along each stroke:
  it ramps in over the first 8%, fades to 50% at the end, and varies +-15% in between.
* **Rasterization** like a drawing app's export: each stroke is rendered as overlapping
  round dabs at 4x the output size, then downsampled (Lanczos) to an antialiased greyscale
  PNG, near-black ink (grey 15-45) on white.

``python -m benchmarks.example.draw OUT_DIR [--per-domain N]`` (from the repository root)
(re)makes the set with its ``manifest.json``; the same seeds give the same images. It makes
data and is not part of the evalkit package (evaluation never draws).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

Path2 = np.ndarray  # (K, 2) points in the unit square, x right, y down
SUPERSAMPLE = 4
DOMAIN_SEED_BASE = {"person": 1000, "car": 2000, "shoe": 3000}
DRAWER_VERSION = "stroke-drawer-v1"


# --- geometry ---------------------------------------------------------------------------

def seg(*pts) -> Path2:
    """A polyline through ``pts``."""
    pts = np.asarray(pts, dtype=float)
    out = [np.linspace(pts[i], pts[i + 1], 24, endpoint=False) for i in range(len(pts) - 1)]
    return np.vstack(out + [pts[-1:]])


def bez(*pts) -> Path2:
    """A Bezier curve of any degree with control points ``pts``."""
    p = np.asarray(pts, dtype=float)
    n = len(p) - 1
    t = np.linspace(0, 1, 64)[:, None]
    return sum(math.comb(n, k) * (1 - t) ** (n - k) * t ** k * p[k] for k in range(n + 1))


def ell(c, rx: float, ry: float, a0: float = 0.0, a1: float = 2 * math.pi) -> Path2:
    """Elliptic arc from angle ``a0`` to ``a1`` (radians, 0 = right, pi/2 = down)."""
    a = np.linspace(a0, a1, max(16, int(abs(a1 - a0) * 40)))
    return np.stack([c[0] + rx * np.cos(a), c[1] + ry * np.sin(a)], axis=1)


def curve(*pts) -> Path2:
    """A smooth curve through ``pts`` (Catmull-Rom)."""
    p = np.asarray(pts, dtype=float)
    p = np.vstack([2 * p[0] - p[1], p, 2 * p[-1] - p[-2]])
    t = np.linspace(0, 1, 20, endpoint=False)[:, None]
    out = []
    for i in range(1, len(p) - 2):
        p0, p1, p2, p3 = p[i - 1], p[i], p[i + 1], p[i + 2]
        out.append(0.5 * (2 * p1 + (-p0 + p2) * t + (2 * p0 - 5 * p1 + 4 * p2 - p3) * t ** 2
                          + (-p0 + 3 * p1 - 3 * p2 + p3) * t ** 3))
    return np.vstack(out + [p[-2:-1]])


class Sketch:
    """Strokes of one drawing; ``closed`` strokes get a hand-made seam instead of ends."""

    def __init__(self, rng: np.random.Generator, index: int = 0):
        self.rng = rng
        self.index = index  # cycles the template variants so a set covers all of them
        self.strokes: list[tuple[Path2, bool]] = []

    def pick(self, options: list[str]) -> str:
        """The variant for this sketch: options cycled by ``index``."""
        return options[self.index % len(options)]

    def add(self, path: Path2, closed: bool = False) -> None:
        self.strokes.append((np.asarray(path, dtype=float), closed))

    def oval(self, c, rx: float, ry: float) -> None:
        """A closed ellipse drawn as one stroke with an overlap or a gap."""
        a0 = self.rng.uniform(0, 2 * math.pi)
        self.add(ell(c, rx, ry, a0, a0 + 2 * math.pi + self.rng.uniform(-0.15, 0.35)), True)

    def u(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))


# --- hand imperfection and rendering ---------------------------------------------------

def _resample(path: Path2, step: float) -> Path2:
    d = np.r_[0, np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))]
    if d[-1] == 0:
        return path[:1]
    s = np.arange(0, d[-1] + step / 2, step)
    return np.stack([np.interp(s, d, path[:, 0]), np.interp(s, d, path[:, 1])], axis=1)


def handify(path: Path2, closed: bool, rng: np.random.Generator, amp: float
            ) -> tuple[Path2, np.ndarray]:
    """Wobble, overshoot and pressure (see the module docstring): (points, pressure)."""
    if not closed and len(path) > 1:
        for end in (0, -1):
            i2 = 1 if end == 0 else -2
            tangent = path[end] - path[i2]
            norm = np.linalg.norm(tangent)
            if norm > 0:
                ext = rng.uniform(-0.01, 0.02) if end == -1 else rng.uniform(-0.005, 0.01)
                if ext > 0:
                    new = path[end] + tangent / norm * ext
                    path = np.vstack([new, path]) if end == 0 else np.vstack([path, new])
    pts = _resample(path, 1 / 256)
    if len(pts) < 3:
        return pts, np.ones(len(pts))
    s = np.r_[0, np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))]
    tangent = np.gradient(pts, axis=0)
    tangent /= np.maximum(np.linalg.norm(tangent, axis=1, keepdims=True), 1e-12)
    normal = np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)
    offset = np.zeros(len(pts))
    for _ in range(3):
        offset += amp / 2 * np.sin(2 * math.pi * rng.uniform(1.5, 4) * s + rng.uniform(0, 6.3))
    offset += amp / 4 * np.sin(2 * math.pi * rng.uniform(15, 25) * s + rng.uniform(0, 6.3))
    pts = pts + normal * offset[:, None]
    t = s / s[-1]
    pressure = np.clip(np.minimum(0.55 + t / 0.08 * 0.45, 1.0), 0, 1)
    pressure *= 1.0 - 0.5 * np.clip((t - 0.85) / 0.15, 0, 1)
    pressure *= 1 + 0.15 * np.sin(2 * math.pi * rng.uniform(1, 3) * t + rng.uniform(0, 6.3))
    return pts, pressure


def render(sk: Sketch, size: int = 256, mirror: bool = False) -> Image.Image:
    """Rasterize with the affine jitter, wobble, pressure and supersampled dabs."""
    rng = sk.rng
    big = size * SUPERSAMPLE
    width = rng.uniform(1.6, 2.8) * SUPERSAMPLE * size / 256
    amp = rng.uniform(0.6, 1.6) / 256
    ink = int(rng.integers(15, 46))
    angle = math.radians(rng.uniform(-4, 4))
    scale = rng.uniform(0.9, 1.05)
    shift = rng.uniform(-0.04, 0.04, 2)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    allpts = np.vstack([p for p, _ in sk.strokes])
    lo, hi = allpts.min(axis=0), allpts.max(axis=0)
    fit = rng.uniform(0.74, 0.86) / max(hi - lo)  # fill the frame like a cropped drawing
    centre = (lo + hi) / 2
    canvas = Image.new("L", (big, big), 255)
    draw = ImageDraw.Draw(canvas)
    for path, closed in sk.strokes:
        p = (path - centre) * fit + 0.5
        if mirror:
            p[:, 0] = 1 - p[:, 0]
        p = (p - 0.5) @ rot.T * scale + 0.5 + shift
        pts, pressure = handify(p, closed, rng, amp)
        xy = pts * big
        for (x, y), pr in zip(xy, pressure, strict=True):
            r = max(0.5, width * pr / 2)
            draw.ellipse((x - r, y - r, x + r, y + r), fill=ink)
    return canvas.resize((size, size), Image.LANCZOS)


# --- templates ---------------------------------------------------------------------------

def draw_person(sk: Sketch) -> str:
    """A front-view face (the person domain is Google's Cartoon Set: faces)."""
    u = sk.u
    cx, cy = 0.5, u(0.52, 0.56)
    rx, ry = u(0.19, 0.25), u(0.25, 0.31)
    chin = u(0.75, 0.95)  # how pointed the chin is
    # head: top half ellipse + a chin curve
    sk.add(np.vstack([ell((cx, cy), rx, ry * 0.95, math.pi, 2 * math.pi + 0.05),
                      curve((cx + rx, cy + 0.01), (cx + rx * 0.8, cy + ry * 0.6),
                            (cx, cy + ry * chin + 0.04),
                            (cx - rx * 0.8, cy + ry * 0.6), (cx - rx, cy + 0.01))]))
    style = sk.pick(["cap", "spiky", "long", "bun", "side"])
    top = cy - ry * 0.95
    if style == "cap":
        sk.add(curve((cx - rx - 0.01, cy - 0.02), (cx - rx * 0.9, top - 0.02),
                     (cx, top - u(0.04, 0.07)), (cx + rx * 0.9, top - 0.02),
                     (cx + rx + 0.01, cy - 0.02)))
        sk.add(curve((cx - rx * 0.95, cy - ry * 0.45), (cx - rx * 0.3, top + 0.05),
                     (cx + rx * 0.5, top + 0.06), (cx + rx * 0.95, cy - ry * 0.45)))
    elif style == "spiky":
        n = int(sk.rng.integers(4, 7))
        xs = np.linspace(cx - rx * 0.95, cx + rx * 0.95, 2 * n + 1)
        ys = [cy - ry * 0.45 if k % 2 == 0 else cy - ry * 0.7 for k in range(2 * n + 1)]
        sk.add(seg(*zip(xs, ys, strict=True)))
    elif style == "long":
        for side in (-1, 1):
            sk.add(curve((cx, top - 0.03), (cx + side * rx * 1.1, top + 0.04),
                         (cx + side * (rx + 0.04), cy + ry * 0.3),
                         (cx + side * (rx + u(0.03, 0.07)), cy + ry * u(0.8, 1.1))))
        sk.add(curve((cx - rx * 0.9, cy - ry * 0.4), (cx, top + 0.06), (cx + rx * 0.9,
                                                                         cy - ry * 0.4)))
    elif style == "bun":
        sk.oval((cx + u(-0.02, 0.02), top - 0.06), u(0.06, 0.08), u(0.05, 0.065))
        sk.add(curve((cx - rx * 0.95, cy - ry * 0.5), (cx - rx * 0.2, top + 0.05),
                     (cx + rx * 0.95, cy - ry * 0.5)))
    else:  # side parting
        sk.add(curve((cx - rx - 0.01, cy - 0.03), (cx - rx * 0.6, top - 0.03),
                     (cx + rx * 0.6, top - 0.04), (cx + rx + 0.01, cy - 0.03)))
        sk.add(curve((cx - rx * 0.2, top + 0.01), (cx + rx * 0.3, cy - ry * 0.55),
                     (cx + rx * 0.95, cy - ry * 0.45)))
    # ears
    for side in (-1, 1):
        ex = cx + side * rx
        sk.add(curve((ex, cy - 0.03), (ex + side * 0.035, cy - 0.02),
                     (ex + side * 0.03, cy + 0.04), (ex, cy + 0.05)))
    # eyes, brows, glasses
    ey, dx = cy + u(-0.04, 0.0), rx * u(0.4, 0.5)
    er = u(0.025, 0.04)
    glasses = sk.rng.random() < 0.3
    for side in (-1, 1):
        ex = cx + side * dx
        sk.oval((ex, ey), er * u(1.1, 1.5), er * u(0.7, 1.0))
        if sk.rng.random() < 0.6:
            sk.oval((ex + u(-0.005, 0.005), ey), er * 0.3, er * 0.3)
        sk.add(bez((ex - er * 1.4, ey - er - 0.02), (ex, ey - er - u(0.03, 0.05)),
                   (ex + er * 1.4, ey - er - 0.02)))
        if glasses:
            sk.oval((ex, ey), er * 2.0, er * 1.8)
    if glasses:
        sk.add(bez((cx - dx + er * 2.0, ey), (cx, ey - 0.015), (cx + dx - er * 2.0, ey)))
    # nose and mouth
    ny = cy + ry * u(0.2, 0.3)
    sk.add(curve((cx + u(-0.01, 0.01), ey + 0.03), (cx - 0.015, ny), (cx + 0.02, ny + 0.01)))
    my, mw = cy + ry * u(0.5, 0.62), rx * u(0.35, 0.55)
    mouth = sk.rng.choice(["smile", "line", "open"])
    if mouth == "smile":
        sk.add(bez((cx - mw, my - 0.01), (cx, my + u(0.03, 0.06)), (cx + mw, my - 0.01)))
    elif mouth == "line":
        sk.add(bez((cx - mw * 0.8, my), (cx, my + 0.01), (cx + mw * 0.8, my)))
    else:
        sk.add(seg((cx - mw, my), (cx + mw, my)))
        sk.add(bez((cx - mw, my), (cx, my + u(0.05, 0.08)), (cx + mw, my)))
    # neck
    if sk.rng.random() < 0.6:
        for side in (-1, 1):
            nx = cx + side * rx * 0.45
            sk.add(seg((nx, cy + ry * 0.85), (nx + side * 0.005, min(0.97, cy + ry + 0.1))))
    return f"face, {style} hair, {mouth} mouth" + (", glasses" if glasses else "")


def draw_car(sk: Sketch) -> str:
    """A side-view car: sedan, hatchback or SUV."""
    u = sk.u
    body = sk.pick(["sedan", "hatchback", "suv"])
    x0, x1 = u(0.08, 0.14), u(0.86, 0.92)
    yb = u(0.62, 0.68)                               # bottom line
    yw = yb - u(0.17, 0.22) if body != "suv" else yb - u(0.22, 0.26)  # belt line
    yr = yw - (u(0.12, 0.16) if body != "suv" else u(0.15, 0.19))     # roof
    L = x1 - x0
    wr = u(0.065, 0.085) if body != "suv" else u(0.08, 0.095)
    wx = (x0 + L * u(0.2, 0.24), x0 + L * u(0.76, 0.8))
    hood = x1 - L * u(0.22, 0.3)
    ws = hood - L * u(0.1, 0.16)
    rear_top = x0 + L * (u(0.2, 0.26) if body == "sedan" else u(0.04, 0.08))
    rear_glass = rear_top + L * (u(0.08, 0.12) if body == "sedan" else u(0.02, 0.05))
    # outline: front bumper -> hood -> windshield -> roof -> rear glass -> trunk -> rear
    sk.add(curve((x1, yb - 0.01), (x1 + 0.01, yw + 0.04), (x1 - 0.01, yw + 0.005),
                 (hood, yw - 0.01)))
    sk.add(curve((hood, yw - 0.01), (ws + L * 0.05, yr + 0.03), (ws, yr),
                 (rear_glass, yr + 0.002)))
    sk.add(curve((rear_glass, yr), (rear_top, yw - 0.01 if body == "sedan" else yw - 0.04),
                 (x0 + 0.005, yw + 0.005), (x0 - 0.01, yw + 0.05), (x0, yb - 0.01)))
    # bottom with wheel arches
    ar = wr + 0.015
    sk.add(seg((x0, yb), (wx[0] - ar, yb)))
    sk.add(ell((wx[0], yb), ar, ar * 1.05, math.pi, 2 * math.pi))
    sk.add(seg((wx[0] + ar, yb), (wx[1] - ar, yb)))
    sk.add(ell((wx[1], yb), ar, ar * 1.05, math.pi, 2 * math.pi))
    sk.add(seg((wx[1] + ar, yb), (x1, yb)))
    # wheels (and hubs)
    hubs = sk.rng.random() < 0.7
    for x in wx:
        sk.oval((x, yb + 0.005), wr, wr)
        if hubs:
            sk.oval((x, yb + 0.005), wr * 0.45, wr * 0.45)
    # windows: split by a pillar
    wt, wb = yr + 0.02, yw - 0.01
    pillar = (ws + rear_glass) / 2 + u(-0.02, 0.02)
    sk.add(seg((ws - 0.01, wb), (ws - L * 0.05, wt + 0.01), (pillar - 0.01, wt),
               (pillar - 0.01, wb), (ws - 0.01, wb)))
    sk.add(seg((pillar + 0.01, wb), (pillar + 0.01, wt), (rear_glass + 0.01, wt + 0.005),
               (rear_top + L * 0.03, wb), (pillar + 0.01, wb)))
    # doors, handles, lights
    for dxp in (pillar, pillar - L * u(0.2, 0.25) if body == "suv" else None):
        if dxp is not None and x0 < dxp < x1:
            sk.add(seg((dxp, yw + 0.005), (dxp + u(-0.01, 0.01), yb - 0.01)))
    sk.add(seg((pillar + 0.03, yw + 0.03), (pillar + 0.06, yw + 0.03)))
    sk.add(seg((x1 - 0.045, yw + 0.02), (x1 - 0.005, yw + 0.025), (x1 - 0.01, yw + 0.05),
               (x1 - 0.045, yw + 0.045), (x1 - 0.045, yw + 0.02)))
    if sk.rng.random() < 0.5:
        sk.add(seg((x0 + 0.01, yw + 0.03), (x0 + 0.035, yw + 0.03)))
    return f"car side view, {body}" + (", hubcaps" if hubs else "")


def draw_shoe(sk: Sketch) -> str:
    """A side-view shoe: sneaker, boot, high heel or sandal."""
    u = sk.u
    kind = sk.pick(["sneaker", "boot", "heel", "sandal"])
    x0, x1 = u(0.1, 0.16), u(0.84, 0.9)
    L = x1 - x0
    yb = u(0.72, 0.8)
    if kind == "heel":
        hh = u(0.2, 0.28)
        toe_y = yb - 0.005
        sk.add(curve((x1, toe_y), (x1 - L * 0.25, toe_y - 0.01), (x0 + L * 0.45, yb - hh * 0.5),
                     (x0 + L * 0.15, yb - hh)))                       # sole arch
        sk.add(seg((x0 + L * 0.15, yb - hh), (x0 + L * 0.12, yb - hh + 0.02),
                   (x0 + L * 0.14, yb), (x0 + L * 0.19, yb), (x0 + L * 0.2, yb - hh + 0.02)))
        top = yb - hh - u(0.16, 0.22)
        vamp = (x0 + L * 0.55, yb - hh * 0.5 - u(0.1, 0.14))
        sk.add(curve((x0 + L * 0.15, yb - hh), (x0 + L * 0.05, top + 0.06), (x0 + L * 0.1, top)))
        sk.add(curve((x0 + L * 0.1, top), (x0 + L * 0.3, top + 0.1), vamp))
        sk.add(curve(vamp, (x1 - L * 0.15, toe_y - 0.1), (x1 + 0.01, toe_y - 0.03),
                     (x1, toe_y)))
        return "high heel"
    sole_h = u(0.03, 0.05)
    # sole: a long rounded band
    sk.add(curve((x0 + 0.02, yb - sole_h), (x0, yb - sole_h * 0.5), (x0 + 0.03, yb),
                 (x1 - 0.06, yb), (x1, yb - sole_h * 0.6), (x1 - 0.01, yb - sole_h)))
    sk.add(seg((x0 + 0.02, yb - sole_h), (x1 - 0.01, yb - sole_h)))
    top_sole = yb - sole_h
    if kind == "boot":
        shaft = u(0.3, 0.4)
        back = x0 + u(0.0, 0.03)
        front = x0 + L * u(0.38, 0.45)
        sk.add(curve((back + 0.01, top_sole), (back, top_sole - shaft * 0.5),
                     (back + 0.01, top_sole - shaft)))
        sk.add(seg((back + 0.01, top_sole - shaft), (front, top_sole - shaft - 0.01)))
        sk.add(curve((front, top_sole - shaft - 0.01), (front - 0.01, top_sole - shaft * 0.4),
                     (front + L * 0.15, top_sole - 0.09), (x1 - 0.04, top_sole - 0.05),
                     (x1 - 0.01, top_sole)))
        if sk.rng.random() < 0.6:
            sk.add(seg((back + 0.03, top_sole - shaft + 0.05),
                       (front - 0.02, top_sole - shaft + 0.045)))
        return "boot"
    if kind == "sandal":
        for k in range(int(sk.rng.integers(2, 4))):
            sx = x0 + L * (0.35 + 0.2 * k) + u(-0.03, 0.03)
            sk.add(curve((sx - 0.06, top_sole), (sx - 0.03, top_sole - u(0.09, 0.13)),
                         (sx + 0.05, top_sole - u(0.08, 0.12)), (sx + 0.08, top_sole)))
        hx = x0 + L * 0.12
        sk.add(curve((hx - 0.06, top_sole), (hx - 0.07, top_sole - u(0.12, 0.16)),
                     (hx + 0.02, top_sole - u(0.2, 0.24)), (hx + 0.08, top_sole - 0.12),
                     (hx + 0.1, top_sole)))                               # ankle strap
        return "sandal"
    # sneaker
    h = u(0.26, 0.32)
    collar = x0 + L * u(0.25, 0.32)
    sk.add(curve((x0 + 0.02, top_sole), (x0, top_sole - h * 0.6), (x0 + 0.02, top_sole - h),
                 (collar - 0.04, top_sole - h + 0.03), (collar, top_sole - h + 0.06)))
    sk.add(curve((collar, top_sole - h + 0.06), (collar + L * 0.12, top_sole - h + 0.03),
                 (collar + L * 0.25, top_sole - h * 0.6), (x1 - L * 0.12, top_sole - 0.07),
                 (x1 - 0.005, top_sole - 0.03), (x1 - 0.01, top_sole)))
    sk.add(curve((collar - 0.01, top_sole - h + 0.05), (collar + 0.02, top_sole - h - 0.01),
                 (collar + L * 0.08, top_sole - h - 0.015)))              # tongue
    for k in range(int(sk.rng.integers(3, 5))):                          # laces
        lx = collar + L * (0.06 + 0.06 * k)
        ly = top_sole - h * (0.72 - 0.11 * k)
        sk.add(seg((lx - 0.02, ly - 0.02), (lx + 0.025, ly + 0.015)))
    if sk.rng.random() < 0.6:
        sk.add(curve((x1 - L * 0.22, top_sole - 0.02), (x1 - L * 0.08, top_sole - 0.05),
                     (x1 - 0.01, top_sole - 0.02)))                    # toe cap
    if sk.rng.random() < 0.6:
        sk.add(bez((x0 + L * 0.12, top_sole - 0.03), (x0 + L * 0.45, top_sole - 0.01),
                   (x0 + L * 0.62, top_sole - h * 0.55)))                # side stripe
    return "sneaker"


TEMPLATES: dict[str, Callable[[Sketch], str]] = {
    "person": draw_person, "car": draw_car, "shoe": draw_shoe,
}


def draw_sketch(domain: str, seed: int, size: int = 256) -> tuple[Image.Image, str]:
    """Draw one sketch of ``domain`` with ``seed``: ``(L-mode image, variant description)``.

    The template variant (hair style, car body, shoe kind) cycles with ``seed``."""
    if domain not in TEMPLATES:
        raise ValueError(f"no template for domain '{domain}' (have: {', '.join(TEMPLATES)})")
    rng = np.random.default_rng(seed)
    sk = Sketch(rng, index=seed)
    variant = TEMPLATES[domain](sk)
    mirror = domain != "person" and bool(rng.random() < 0.5)
    return render(sk, size=size, mirror=mirror), variant


def make_starter_set(out_dir: str | Path, per_domain: int = 16, size: int = 256,
                     domains: tuple[str, ...] = ("person", "car", "shoe")) -> Path:
    """Write ``per_domain`` sketches per domain into ``out_dir/<domain>/`` and the manifest.

    Seeds are ``DOMAIN_SEED_BASE[domain] + i``; each manifest entry states the drawer, the
    template variant and the seed. Returns the manifest path.
    """
    from evalkit.inputs.sketches.manifest import Manifest, SketchEntry, write_manifest

    out = Path(out_dir)
    manifest = Manifest()
    for domain in domains:
        (out / domain).mkdir(parents=True, exist_ok=True)
        for i in range(per_domain):
            seed = DOMAIN_SEED_BASE[domain] + i
            im, variant = draw_sketch(domain, seed, size)
            name = f"{domain}/{domain}_{i + 1:02d}.png"
            im.save(out / name, optimize=True)
            manifest.upsert(SketchEntry(
                file=name, domain=domain,
                provenance=(f"drawn procedurally by evalkit's stroke drawer "
                            f"(benchmarks/example/draw.py, {DRAWER_VERSION}), seed {seed}: "
                            f"template '{variant}' with random proportions, hand wobble, "
                            "pen pressure, rasterized antialiased at 4x and downsampled; "
                            "not drawn by a person"),
                reference=None, tags=["procedural", variant.split(",")[0]],
                extra={"seed": seed, "drawer": DRAWER_VERSION}))
    return write_manifest(manifest, out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Make the procedural starter sketch set.")
    ap.add_argument("out_dir", type=Path)
    ap.add_argument("--per-domain", type=int, default=16)
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args(argv)
    print(make_starter_set(args.out_dir, args.per_domain, args.size))


if __name__ == "__main__":  # pragma: no cover
    main()
