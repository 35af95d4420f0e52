"""Procedural faceted gemstones (the example's ``gemstone`` domain), seeded like the faces.

A gem is seen from above, crown up, on a plain white background:

- cut (8): ``round``, ``oval``, ``cushion``, ``pear`` (brilliant-style: a table, star facets
  and split bezel facets on ``n = 8`` spokes), ``princess`` (4 spokes), ``trillion`` (3),
  ``hexagon`` (6), and ``emerald`` (a step cut: three rings of trapezoid facets);
- size (half-width 0.30..0.40 of the image), aspect, rotation, table size, a small shift;
- colour: one of 11 gem colours (ruby, sapphire, emerald, amethyst, topaz, citrine,
  aquamarine, peridot, garnet, pink sapphire, diamond), each channel jittered by +-20;
- shading: every facet is a flat plane lit from a random direction (brighter when it faces
  the light, more so the steeper it is) with a little per-facet jitter; facet edges are
  drawn darker, the outline darker still;
- highlights: 1..3 white four-pointed glints.

Images are RGB uint8 drawn at 4x (at least 256 px) with Pillow and downsampled with a
Lanczos filter, like :mod:`benchmarks.example.faces`. ``gem_params(seed)`` gives the sampled
parameters, ``render_gem(seed, size)`` the image and ``sketch_gem(seed, size)`` a
hand-drawn-style sketch of the same gem's outline and facet lines; all deterministic.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageDraw

from benchmarks.example.faces import wobble

GEM_COLOURS = {
    "ruby": (200, 25, 55), "sapphire": (30, 65, 190), "emerald": (25, 150, 85),
    "amethyst": (140, 65, 190), "topaz": (235, 150, 45), "citrine": (235, 200, 50),
    "aquamarine": (95, 200, 220), "peridot": (150, 200, 45), "garnet": (125, 20, 35),
    "pink": (240, 115, 170), "diamond": (205, 218, 232),
}
#: cut -> number of spokes of the brilliant pattern (0: the emerald step cut)
CUTS = {"round": 8, "oval": 8, "cushion": 8, "pear": 8, "princess": 4, "trillion": 3,
        "hexagon": 6, "emerald": 0}
BACKGROUND = (255, 255, 255)


@dataclass(frozen=True)
class GemParams:
    """One gem. Lengths are fractions of the image; angles in radians."""

    cut: str
    colour_name: str
    colour: tuple[int, int, int]
    radius: float        # half-width along the gem's long axis (0.30..0.40)
    aspect: float        # short / long axis (0.6..1.0; 1 for princess, trillion, hexagon)
    rotation: float      # of the whole gem
    table: float         # table size / outline size (0.42..0.58)
    shift: tuple[float, float]   # centre offset from the image centre (+-0.04)
    light: float         # direction the light comes from
    facet_seed: int      # per-facet shading jitter
    highlights: int      # 1..3

    def as_dict(self) -> dict:
        return asdict(self)


def gem_params(seed: int) -> GemParams:
    """Sample a gem from ``seed`` (deterministic; any non-negative int)."""
    rng = np.random.default_rng([int(seed), 0x6E35])
    cut = list(CUTS)[int(rng.integers(len(CUTS)))]
    name = list(GEM_COLOURS)[int(rng.integers(len(GEM_COLOURS)))]
    colour = tuple(int(np.clip(c + rng.integers(-20, 21), 0, 255)) for c in GEM_COLOURS[name])
    aspect = {"oval": rng.uniform(0.62, 0.8), "pear": rng.uniform(0.6, 0.75),
              "emerald": rng.uniform(0.6, 0.78), "cushion": rng.uniform(0.85, 1.0)
              }.get(cut, 1.0)
    return GemParams(
        cut=cut, colour_name=name, colour=colour,
        radius=float(rng.uniform(0.30, 0.40)), aspect=float(aspect),
        rotation=float(rng.uniform(0, 2 * math.pi)),
        table=float(rng.uniform(0.42, 0.58)),
        shift=(float(rng.uniform(-0.04, 0.04)), float(rng.uniform(-0.04, 0.04))),
        light=float(rng.uniform(0, 2 * math.pi)),
        facet_seed=int(rng.integers(2**31)), highlights=int(rng.integers(1, 4)),
    )


def _outline_radius(cut: str, theta: float) -> float:
    """Distance from the centre to the outline at angle ``theta`` (unit gem, before aspect)."""
    m = CUTS[cut]
    if cut in ("princess", "trillion", "hexagon"):   # regular polygon, a corner at theta 0
        sector = 2 * math.pi / m
        phi = (theta % sector) - sector / 2
        return math.cos(math.pi / m) / math.cos(phi)
    if cut == "cushion":                             # superellipse, p = 4: a rounded square
        c, s = abs(math.cos(theta)), abs(math.sin(theta))
        return (c ** 4 + s ** 4) ** -0.25
    if cut == "pear":                                # egg: wide end at theta 0, pointed at pi
        return 1.0 / (1.0 + 0.28 * (1 - math.cos(theta))) * (1.0 + 0.1 * math.cos(theta))
    return 1.0


class _Frame:
    """Maps unit gem coordinates (long axis x, aspect on y, then rotation) to pixels."""

    def __init__(self, p: GemParams, canvas: float):
        self.p, self.canvas = p, canvas
        self.cx = canvas * (0.5 + p.shift[0])
        self.cy = canvas * (0.5 + p.shift[1])
        self.r = canvas * p.radius
        self.cos, self.sin = math.cos(p.rotation), math.sin(p.rotation)

    def __call__(self, x: float, y: float) -> tuple[float, float]:
        y = y * self.p.aspect
        return (self.cx + self.r * (x * self.cos - y * self.sin),
                self.cy + self.r * (x * self.sin + y * self.cos))

    def polar(self, theta: float, scale: float = 1.0) -> tuple[float, float]:
        rho = scale * _outline_radius(self.p.cut, theta)
        return self(rho * math.cos(theta), rho * math.sin(theta))


@dataclass
class Facet:
    """A flat facet: its polygon in pixels and its tilt (0 = the flat table, 1 = steep)."""

    points: list[tuple[float, float]]
    tilt: float


def gem_facets(p: GemParams, canvas: float) -> tuple[list[tuple[float, float]], list[Facet]]:
    """The gem's outline polygon and its facets, in pixels of a ``canvas`` image."""
    f = _Frame(p, canvas)
    facets: list[Facet] = []
    if p.cut == "emerald":
        # step cut: an octagon (a rectangle with cut corners), three rings and the table
        c = 0.22                                           # corner cut, unit coordinates
        corners = [(1, 1 - c), (1 - c, 1), (-1 + c, 1), (-1, 1 - c), (-1, -1 + c),
                   (-1 + c, -1), (1 - c, -1), (1, -1 + c)]
        rings = [1.0, 0.82, 0.64, p.table]
        pts = [[f(x * k, y * k) for x, y in corners] for k in rings]
        outline = pts[0]
        for ring in range(3):
            for i in range(8):
                j = (i + 1) % 8
                facets.append(Facet([pts[ring][i], pts[ring][j], pts[ring + 1][j],
                                     pts[ring + 1][i]], tilt=0.9 - 0.25 * ring))
        facets.append(Facet(pts[3], tilt=0.0))
        return outline, facets
    n = CUTS[p.cut]
    theta = [2 * math.pi * k / n for k in range(n)]
    mid = [2 * math.pi * (k + 0.5) / n for k in range(n)]
    P = [f.polar(t) for t in theta]              # outline corners on the spokes
    Q = [f.polar(t) for t in mid]                # outline points between spokes
    T = [f.polar(t, p.table) for t in theta]     # table corners
    outline: list[tuple[float, float]] = []
    for k in range(n):
        outline += [P[k], Q[k]]
    for k in range(n):
        j = (k + 1) % n
        facets.append(Facet([T[k], T[j], Q[k]], tilt=0.45))          # star facet
        facets.append(Facet([T[k], P[k], Q[k]], tilt=0.8))           # bezel, two halves
        facets.append(Facet([T[j], Q[k], P[j]], tilt=0.8))
    facets.append(Facet(T, tilt=0.0))                                 # the table
    return outline, facets


def _shade(colour, b: float) -> tuple[int, int, int]:
    """``colour`` at brightness ``b``: darker below 1, mixed towards white above 1."""
    if b <= 1.0:
        return tuple(int(round(c * b)) for c in colour)
    t = min(1.0, b - 1.0)
    return tuple(int(round(c + (255 - c) * t)) for c in colour)


def draw_gem(p: GemParams, size: int = 256) -> np.ndarray:
    """Render gem ``p`` as ``(size, size, 3)`` uint8 RGB on white (``size >= 16``)."""
    if size < 16:
        raise ValueError("gem images must be at least 16 px")
    s = max(4 * size, 256)
    img = Image.new("RGB", (s, s), BACKGROUND)
    d = ImageDraw.Draw(img)
    outline, facets = gem_facets(p, s)
    cx = sum(x for x, _ in outline) / len(outline)
    cy = sum(y for _, y in outline) / len(outline)
    lx, ly = math.cos(p.light), math.sin(p.light)
    rng = np.random.default_rng(p.facet_seed)
    edge = _shade(p.colour, 0.45)
    d.polygon(outline, fill=_shade(p.colour, 0.7))
    for facet in facets:
        mx = sum(x for x, _ in facet.points) / len(facet.points)
        my = sum(y for _, y in facet.points) / len(facet.points)
        norm = math.hypot(mx - cx, my - cy) or 1.0
        facing = ((mx - cx) * lx + (my - cy) * ly) / norm      # -1 (away) .. 1 (to the light)
        b = 0.82 + 0.45 * facet.tilt * facing + float(rng.normal(0, 0.07))
        if facet.tilt == 0.0:
            b = 0.95 + float(rng.normal(0, 0.05))
        d.polygon(facet.points, fill=_shade(p.colour, b), outline=edge,
                  width=max(1, int(s * 0.005)))
    d.polygon(outline, outline=_shade(p.colour, 0.35), width=max(2, int(s * 0.009)))
    # glints: four-pointed stars on table and bezel corners
    corners = [pt for facet in facets for pt in facet.points]
    for i in rng.choice(len(corners), size=p.highlights, replace=False):
        gx, gy = corners[int(i)]
        arm, w = s * rng.uniform(0.035, 0.06), s * 0.008
        d.polygon([(gx - arm, gy), (gx, gy - w), (gx + arm, gy), (gx, gy + w)], fill=BACKGROUND)
        d.polygon([(gx, gy - arm), (gx - w, gy), (gx, gy + arm), (gx + w, gy)], fill=BACKGROUND)
        d.ellipse([gx - 2 * w, gy - 2 * w, gx + 2 * w, gy + 2 * w], fill=BACKGROUND)
    if s != size:
        img = img.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(img, dtype=np.uint8)


def render_gem(seed: int, size: int = 256) -> np.ndarray:
    """The gem of ``seed`` as ``(size, size, 3)`` uint8 RGB on white; deterministic."""
    return draw_gem(gem_params(seed), size)


def sketch_strokes(p: GemParams, size: int = 256) -> list[list[tuple[float, float]]]:
    """The lines a person would draw for gem ``p``: the outline, then every facet edge once
    (shared edges are not drawn twice); polylines in pixels of a ``size`` image."""
    outline, facets = gem_facets(p, size)
    strokes = [outline + [outline[0]]]
    seen: set[tuple] = set()
    key = lambda a, b: tuple(sorted((tuple(np.round(a, 3)), tuple(np.round(b, 3)))))  # noqa: E731
    for a, b in zip(outline, outline[1:] + outline[:1], strict=True):
        seen.add(key(a, b))
    for facet in facets:
        pts = facet.points
        for a, b in zip(pts, pts[1:] + pts[:1], strict=True):
            k = key(a, b)
            if k not in seen:
                seen.add(k)
                strokes.append([a, b])
    return strokes


def sketch_gem(seed: int, size: int = 256, pen_px: float | None = None,
               wobble_px: float | None = None, sketch_seed: int = 0) -> np.ndarray:
    """A hand-drawn-style sketch of gem ``seed``: ``(size, size)`` uint8, dark strokes (0) on
    white (255): :func:`sketch_strokes` traced with a round pen ``pen_px`` wide (default
    size/100, at least 1) drifting up to ``wobble_px`` (default size/100: facet edges are
    short, a face's wobble would scramble them) off the true line
    (:func:`benchmarks.example.faces.wobble`); ``sketch_seed`` picks the wobble."""
    pen = max(1, round(pen_px if pen_px is not None else size / 100))
    amp = wobble_px if wobble_px is not None else size / 100
    rng = np.random.default_rng([int(seed), int(sketch_seed), 0x6E5C])
    img = Image.new("L", (size, size), 255)
    d = ImageDraw.Draw(img)
    for stroke in sketch_strokes(gem_params(seed), size):
        d.line(wobble(stroke, rng, amp), fill=int(rng.integers(0, 50)), width=pen,
               joint="curve")
    return np.asarray(img, dtype=np.uint8)
