"""Procedural cartoon faces in the spirit of Google's Cartoon Set (the seed's "person" data).

The Cartoon Set composes flat-shaded avatars from independently sampled parts on a plain
background; this module does the same, deterministically from an integer seed:

- face shape (oval, round, long, square-jawed, heart) and width, with ears;
- skin tone (10 tones), hair colour (10 colours), eye colour (6 colours);
- hair style (12: bald, buzz, short, side part, spiky, fringe, bob, long, ponytail,
  bun, curly, mohawk);
- eyes (5 shapes), eyebrows (5 shapes, 3 thicknesses), mouth (6 shapes), nose (3);
- glasses (none, round, square, sunglasses; 5 frame colours), facial hair (none,
  moustache, goatee, stubble, full beard).

That is well over 10^9 combinations, so every seed is practically a distinct face.
Images are RGB uint8 on a white background, drawn at 4x (at least 256 px) with Pillow and
downsampled with a Lanczos filter, so edges are anti-aliased at any size.

``face_params(seed)`` gives the sampled parts (a :class:`FaceParams`),
``render_face(seed, size)`` the image; the same seed always gives the same image.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageDraw

SKIN_TONES = [(255, 224, 196), (250, 208, 170), (241, 194, 150), (224, 172, 125),
              (198, 143, 99), (176, 121, 80), (141, 93, 58), (112, 72, 44), (86, 55, 34),
              (255, 213, 186)]
HAIR_COLOURS = [(30, 24, 20), (70, 45, 30), (110, 70, 40), (160, 110, 60), (215, 170, 95),
                (240, 215, 140), (180, 60, 30), (140, 140, 140), (235, 235, 235),
                (90, 60, 140)]
EYE_COLOURS = [(60, 40, 25), (40, 90, 160), (60, 130, 80), (110, 80, 50), (30, 30, 30),
               (120, 120, 150)]
FRAME_COLOURS = [(20, 20, 20), (150, 30, 30), (30, 60, 150), (190, 150, 60), (90, 90, 90)]

FACE_SHAPES = ["oval", "round", "long", "square", "heart"]
HAIR_STYLES = ["bald", "buzz", "short", "side_part", "spiky", "fringe", "bob", "long",
               "ponytail", "bun", "curly", "mohawk"]
EYE_SHAPES = ["dot", "round", "almond", "sleepy", "wide"]
BROW_SHAPES = ["straight", "arched", "angry", "worried", "flat_thick"]
MOUTH_SHAPES = ["smile", "grin", "open", "flat", "small_o", "smirk"]
NOSE_SHAPES = ["none", "button", "line"]
GLASSES = ["none", "none", "none", "round", "square", "sunglasses"]
FACIAL_HAIR = ["none", "none", "none", "moustache", "goatee", "stubble", "beard"]

BACKGROUND = (255, 255, 255)
#: Part sizes are fractions of (FACE_SCALE x image size): the face fills most of the frame.
FACE_SCALE = 1.12


@dataclass(frozen=True)
class FaceParams:
    """One avatar's parts. Colours are RGB uint8 triples; sizes are fractions of the image."""

    face_shape: str
    face_width: float      # half-width of the face, fraction of the image (0.20..0.27)
    face_height: float     # half-height of the face (0.26..0.33)
    skin: tuple[int, int, int]
    hair_style: str
    hair_colour: tuple[int, int, int]
    eye_shape: str
    eye_colour: tuple[int, int, int]
    eye_spacing: float     # half-distance between eye centres (0.075..0.10)
    brow_shape: str
    brow_thickness: int    # 1..3
    mouth_shape: str
    nose_shape: str
    glasses: str
    frame_colour: tuple[int, int, int]
    facial_hair: str

    def as_dict(self) -> dict:
        return asdict(self)


def face_params(seed: int) -> FaceParams:
    """Sample an avatar's parts from ``seed`` (deterministic; any non-negative int)."""
    rng = np.random.default_rng([int(seed), 0x0FACE])

    def pick(options):
        return options[int(rng.integers(len(options)))]

    return FaceParams(
        face_shape=pick(FACE_SHAPES),
        face_width=float(rng.uniform(0.20, 0.27)),
        face_height=float(rng.uniform(0.26, 0.33)),
        skin=pick(SKIN_TONES),
        hair_style=pick(HAIR_STYLES),
        hair_colour=pick(HAIR_COLOURS),
        eye_shape=pick(EYE_SHAPES),
        eye_colour=pick(EYE_COLOURS),
        eye_spacing=float(rng.uniform(0.075, 0.10)),
        brow_shape=pick(BROW_SHAPES),
        brow_thickness=int(rng.integers(1, 4)),
        mouth_shape=pick(MOUTH_SHAPES),
        nose_shape=pick(NOSE_SHAPES),
        glasses=pick(GLASSES),
        frame_colour=pick(FRAME_COLOURS),
        facial_hair=pick(FACIAL_HAIR),
    )


def _darker(colour, factor: float = 0.7):
    return tuple(int(c * factor) for c in colour)


def _face_polygon(p: FaceParams, cx: float, cy: float, s: float, n: int = 72):
    """Outline of the face as a polygon (image pixels)."""
    w, h = p.face_width * s, p.face_height * s
    pts = []
    for i in range(n):
        t = 2 * math.pi * i / n
        x, y = math.cos(t), math.sin(t)   # y > 0: lower half (chin)
        if p.face_shape == "round":
            rx, ry = w * 1.05, h * 0.92
        elif p.face_shape == "long":
            rx, ry = w * 0.9, h * 1.05
        else:
            rx, ry = w, h
        if p.face_shape == "square" and y > 0:
            # superellipse jaw
            x = math.copysign(abs(x) ** 0.6, x)
            y = math.copysign(abs(y) ** 0.6, y)
        if p.face_shape == "heart" and y > 0:
            x *= 1.0 - 0.35 * y
        pts.append((cx + rx * x, cy + ry * y))
    return pts


def _draw_back_hair(d: ImageDraw.ImageDraw, p: FaceParams, cx, cy, s):
    w, h = p.face_width * s, p.face_height * s
    c = p.hair_colour
    if p.hair_style == "long":
        d.rounded_rectangle([cx - w * 1.25, cy - h * 1.05, cx + w * 1.25, cy + h * 1.25],
                            radius=int(w * 0.6), fill=c)
    elif p.hair_style == "bob":
        d.rounded_rectangle([cx - w * 1.22, cy - h * 1.08, cx + w * 1.22, cy + h * 0.45],
                            radius=int(w * 0.7), fill=c)
    elif p.hair_style == "ponytail":
        d.ellipse([cx + w * 0.7, cy - h * 0.6, cx + w * 1.5, cy + h * 0.6], fill=c)
    elif p.hair_style == "bun":
        d.ellipse([cx - w * 0.45, cy - h * 1.6, cx + w * 0.45, cy - h * 0.8], fill=c)
    elif p.hair_style == "curly":
        for i in range(11):
            t = math.pi * (1.05 + 0.9 * i / 10)
            bx, by = cx + w * 1.05 * math.cos(t), cy - h * 0.15 + h * 1.0 * math.sin(t)
            r = w * 0.38
            d.ellipse([bx - r, by - r, bx + r, by + r], fill=c)


def _draw_front_hair(d: ImageDraw.ImageDraw, p: FaceParams, cx, cy, s):
    w, h = p.face_width * s, p.face_height * s
    c = p.hair_colour
    top = [cx - w * 1.08, cy - h * 1.12, cx + w * 1.08, cy + h * 0.1]
    style = p.hair_style
    if style == "bald":
        return
    if style == "buzz":
        d.chord([cx - w * 1.0, cy - h * 1.02, cx + w * 1.0, cy + h * 0.2], 180, 360, fill=c)
        return
    if style == "mohawk":
        d.polygon([(cx - w * 0.18, cy - h * 0.8), (cx, cy - h * 1.45),
                   (cx + w * 0.18, cy - h * 0.8)], fill=c)
        d.chord([cx - w * 0.3, cy - h * 1.2, cx + w * 0.3, cy - h * 0.5], 180, 360, fill=c)
        return
    if style == "spiky":
        d.chord(top, 180, 360, fill=c)
        for i in range(6):
            x0 = cx - w * 0.95 + i * w * 0.38
            d.polygon([(x0, cy - h * 0.8), (x0 + w * 0.19, cy - h * 1.4),
                       (x0 + w * 0.38, cy - h * 0.8)], fill=c)
        return
    d.chord(top, 180, 360, fill=c)
    if style in ("short", "bun", "ponytail", "curly"):
        d.chord([cx - w * 1.0, cy - h * 0.9, cx + w * 1.0, cy - h * 0.35], 180, 360, fill=c)
    elif style == "side_part":
        d.polygon([(cx - w * 1.0, cy - h * 0.5), (cx - w * 0.2, cy - h * 0.95),
                   (cx + w * 1.0, cy - h * 0.45), (cx + w * 1.05, cy - h * 0.8),
                   (cx - w * 1.05, cy - h * 0.8)], fill=c)
    elif style == "fringe":
        d.rectangle([cx - w * 0.95, cy - h * 0.8, cx + w * 0.95, cy - h * 0.42], fill=c)
    elif style in ("bob", "long"):
        d.polygon([(cx - w * 1.05, cy - h * 0.3), (cx - w * 0.1, cy - h * 0.95),
                   (cx + w * 1.05, cy - h * 0.3), (cx + w * 1.05, cy - h * 0.9),
                   (cx - w * 1.05, cy - h * 0.9)], fill=c)


def _draw_facial_hair(d: ImageDraw.ImageDraw, p: FaceParams, cx, cy, s):
    w, h = p.face_width * s, p.face_height * s
    c = p.hair_colour if p.hair_style != "bald" else (60, 45, 35)
    fh = p.facial_hair
    if fh == "beard":
        d.chord([cx - w * 0.98, cy - h * 0.6, cx + w * 0.98, cy + h * 1.08], 0, 180, fill=c)
    elif fh == "stubble":
        d.chord([cx - w * 0.95, cy - h * 0.35, cx + w * 0.95, cy + h * 1.02], 10, 170,
                fill=_mix(p.skin, c, 0.35))
    elif fh == "goatee":
        d.ellipse([cx - w * 0.25, cy + h * 0.62, cx + w * 0.25, cy + h * 0.98], fill=c)
    if fh in ("moustache", "beard", "goatee"):
        d.ellipse([cx - w * 0.4, cy + h * 0.28, cx + w * 0.4, cy + h * 0.45], fill=c)


def _mix(a, b, t: float):
    return tuple(int(round(x * (1 - t) + y * t)) for x, y in zip(a, b, strict=True))


def _draw_eyes(d: ImageDraw.ImageDraw, p: FaceParams, cx, cy, s):
    ey = cy - p.face_height * s * 0.05
    r = s * 0.035
    for sx in (-1, 1):
        ex = cx + sx * p.eye_spacing * s
        shape = p.eye_shape
        if shape == "dot":
            d.ellipse([ex - r * 0.5, ey - r * 0.5, ex + r * 0.5, ey + r * 0.5], fill=(25, 25, 25))
            continue
        rw = r * (1.5 if shape in ("almond", "wide") else 1.0)
        rh = r * (0.6 if shape == "almond" else 0.55 if shape == "sleepy" else 1.0)
        d.ellipse([ex - rw, ey - rh, ex + rw, ey + rh], fill=(255, 255, 255),
                  outline=(40, 40, 40), width=max(1, int(s * 0.006)))
        ir = min(rw, rh) * 0.8
        d.ellipse([ex - ir, ey - ir, ex + ir, ey + ir], fill=p.eye_colour)
        pr = ir * 0.45
        d.ellipse([ex - pr, ey - pr, ex + pr, ey + pr], fill=(15, 15, 15))
        if shape == "sleepy":
            d.chord([ex - rw, ey - rh * 1.4, ex + rw, ey + rh * 0.6], 180, 360, fill=p.skin)


def _draw_brows(d: ImageDraw.ImageDraw, p: FaceParams, cx, cy, s):
    by = cy - p.face_height * s * 0.28
    half = s * 0.045
    width = max(2, int(s * 0.008 * (1 + p.brow_thickness)))
    if p.brow_shape == "flat_thick":
        width = int(width * 1.6)
    colour = _darker(p.hair_colour, 0.8) if p.hair_style != "bald" else (70, 50, 40)
    for sx in (-1, 1):
        bx = cx + sx * p.eye_spacing * s
        inner, outer = bx - sx * half, bx + sx * half
        shape = p.brow_shape
        if shape == "arched":
            d.arc([bx - half, by - half * 0.3, bx + half, by + half * 0.9], 200, 340,
                  fill=colour, width=width)
            continue
        dy_in = {"angry": half * 0.45, "worried": -half * 0.45}.get(shape, 0.0)
        d.line([(inner, by + dy_in), (outer, by)], fill=colour, width=width)


def _draw_nose(d: ImageDraw.ImageDraw, p: FaceParams, cx, cy, s):
    ny = cy + p.face_height * s * 0.15
    shade = _darker(p.skin, 0.8)
    if p.nose_shape == "button":
        r = s * 0.02
        d.ellipse([cx - r, ny - r, cx + r, ny + r], fill=shade)
    elif p.nose_shape == "line":
        d.line([(cx, ny - s * 0.05), (cx - s * 0.015, ny + s * 0.01), (cx + s * 0.01, ny + s * 0.01)],
               fill=shade, width=max(1, int(s * 0.006)))


def _draw_mouth(d: ImageDraw.ImageDraw, p: FaceParams, cx, cy, s):
    my = cy + p.face_height * s * 0.55
    half = s * 0.06
    lip = (150, 50, 55)
    width = max(2, int(s * 0.008))
    shape = p.mouth_shape
    if shape == "smile":
        d.arc([cx - half, my - half * 0.8, cx + half, my + half * 0.5], 20, 160,
              fill=lip, width=width)
    elif shape == "grin":
        d.chord([cx - half, my - half * 0.6, cx + half, my + half * 0.6], 0, 180,
                fill=(255, 255, 255), outline=lip, width=width)
    elif shape == "open":
        d.ellipse([cx - half * 0.6, my - half * 0.35, cx + half * 0.6, my + half * 0.5],
                  fill=(90, 20, 30))
    elif shape == "flat":
        d.line([(cx - half * 0.8, my), (cx + half * 0.8, my)], fill=lip, width=width)
    elif shape == "small_o":
        r = half * 0.25
        d.ellipse([cx - r, my - r, cx + r, my + r], fill=(90, 20, 30))
    else:  # smirk
        d.line([(cx - half * 0.7, my + half * 0.05), (cx + half * 0.5, my - half * 0.05),
                (cx + half * 0.8, my - half * 0.3)], fill=lip, width=width)


def _draw_glasses(d: ImageDraw.ImageDraw, p: FaceParams, cx, cy, s):
    if p.glasses == "none":
        return
    ey = cy - p.face_height * s * 0.05
    r = s * 0.062
    width = max(2, int(s * 0.009))
    colour = p.frame_colour
    for sx in (-1, 1):
        ex = cx + sx * p.eye_spacing * s
        box = [ex - r, ey - r * 0.8, ex + r, ey + r * 0.8]
        if p.glasses == "round":
            d.ellipse(box, outline=colour, width=width)
        elif p.glasses == "square":
            d.rectangle(box, outline=colour, width=width)
        else:
            d.rounded_rectangle(box, radius=int(r * 0.4), fill=(25, 25, 35), outline=colour,
                                width=width)
    d.line([(cx - p.eye_spacing * s + r, ey), (cx + p.eye_spacing * s - r, ey)],
           fill=colour, width=width)


def draw_face(p: FaceParams, size: int = 256) -> np.ndarray:
    """Render parts ``p`` as ``(size, size, 3)`` uint8 RGB on white (``size >= 16``)."""
    if size < 16:
        raise ValueError("face images must be at least 16 px")
    s = max(4 * size, 256)
    img = Image.new("RGB", (s, s), BACKGROUND)
    d = ImageDraw.Draw(img)
    cx, cy = s * 0.5, s * 0.56
    canvas, s = s, s * FACE_SCALE   # parts are sized in units of s
    _draw_back_hair(d, p, cx, cy, s)
    # neck
    w = p.face_width * s
    d.rectangle([cx - w * 0.4, cy + p.face_height * s * 0.6, cx + w * 0.4, canvas],
                fill=_darker(p.skin, 0.9))
    # ears
    for sx in (-1, 1):
        ex = cx + sx * w * (1.02 if p.face_shape != "round" else 1.08)
        d.ellipse([ex - w * 0.16, cy - w * 0.2, ex + w * 0.16, cy + w * 0.2], fill=p.skin)
    d.polygon(_face_polygon(p, cx, cy, s), fill=p.skin)
    _draw_facial_hair(d, p, cx, cy, s)
    _draw_front_hair(d, p, cx, cy, s)
    _draw_brows(d, p, cx, cy, s)
    _draw_eyes(d, p, cx, cy, s)
    _draw_nose(d, p, cx, cy, s)
    _draw_mouth(d, p, cx, cy, s)
    _draw_glasses(d, p, cx, cy, s)
    if canvas != size:
        img = img.resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(img, dtype=np.uint8)


def render_face(seed: int, size: int = 256) -> np.ndarray:
    """The avatar of ``seed`` as ``(size, size, 3)`` uint8 RGB on white; deterministic."""
    return draw_face(face_params(seed), size)


# ---------------------------------------------------------------------------------------
# Hand-drawn-style sketches of a face: the parts' outlines, traced with a wobbling pen.


def ellipse_pts(box, start: float = 0.0, end: float = 360.0, n: int = 40):
    x0, y0, x1, y1 = box
    cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
    ts = np.radians(np.linspace(start, end, n))
    return list(zip(cx + rx * np.cos(ts), cy + ry * np.sin(ts), strict=True))


def wobble(points, rng: np.random.Generator, amplitude: float, spacing: float = 2.0):
    """Resample a polyline every ``spacing`` px and displace it by smooth random noise
    (a sum of three low-frequency sinusoids per axis, ``amplitude`` px at most), the slow
    drift of a hand-held pen. Also overshoots or stops short at the ends by up to 3 px."""
    pts = np.asarray(points, dtype=np.float64)
    seg = np.hypot(*np.diff(pts, axis=0).T)
    length = float(seg.sum())
    if length == 0:
        return [tuple(p) for p in pts]
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    t = np.linspace(0.0, length, max(2, int(length / spacing)))
    x, y = np.interp(t, cum, pts[:, 0]), np.interp(t, cum, pts[:, 1])
    for axis in (x, y):
        for _ in range(3):
            freq = rng.uniform(0.5, 2.5) * 2 * np.pi / max(length, 1.0)
            axis += (amplitude / 3) * np.sin(freq * t + rng.uniform(0, 2 * np.pi))
    return list(zip(x, y, strict=True))


def sketch_strokes(p: FaceParams, size: int = 256) -> list[list[tuple[float, float]]]:
    """The outlines a person would draw for ``p``: face, ears, hair, brows, eyes, nose,
    mouth, glasses, beard; polylines in pixels of a ``size`` image."""
    canvas = size
    s = size * FACE_SCALE
    cx, cy = canvas * 0.5, canvas * 0.56
    w, h = p.face_width * s, p.face_height * s
    strokes: list[list[tuple[float, float]]] = []
    face = _face_polygon(p, cx, cy, s, n=60)
    strokes.append(face + [face[0]])
    for sx in (-1, 1):
        ex = cx + sx * w * (1.02 if p.face_shape != "round" else 1.08)
        strokes.append(ellipse_pts([ex - w * 0.16, cy - w * 0.2, ex + w * 0.16, cy + w * 0.2],
                                    (-80 if sx > 0 else 100), (80 if sx > 0 else 260), 16))
    strokes.append([(cx - w * 0.4, cy + h * 0.9), (cx - w * 0.4, canvas)])
    strokes.append([(cx + w * 0.4, cy + h * 0.9), (cx + w * 0.4, canvas)])
    if p.hair_style not in ("bald",):
        top = [cx - w * 1.08, cy - h * 1.12, cx + w * 1.08, cy + h * 0.1]
        strokes.append(ellipse_pts(top, 180, 360, 30))
        if p.hair_style in ("long", "bob"):
            bottom = cy + (h * 1.2 if p.hair_style == "long" else h * 0.45)
            strokes.append([(cx - w * 1.1, cy - h * 0.4), (cx - w * 1.2, bottom)])
            strokes.append([(cx + w * 1.1, cy - h * 0.4), (cx + w * 1.2, bottom)])
        if p.hair_style in ("spiky", "mohawk"):
            for i in range(5 if p.hair_style == "spiky" else 1):
                x0 = cx - w * 0.8 + i * w * 0.4 if p.hair_style == "spiky" else cx - w * 0.18
                strokes.append([(x0, cy - h * 0.95), (x0 + w * 0.18, cy - h * 1.4),
                                (x0 + w * 0.36, cy - h * 0.95)])
        if p.hair_style == "bun":
            strokes.append(ellipse_pts([cx - w * 0.45, cy - h * 1.6, cx + w * 0.45, cy - h * 0.8],
                                        150, 390, 20))
    ey, by = cy - h * 0.05, cy - h * 0.28
    r = s * 0.035
    for sx in (-1, 1):
        ex = cx + sx * p.eye_spacing * s
        rw = r * (1.5 if p.eye_shape in ("almond", "wide") else 1.0)
        rh = r * (0.6 if p.eye_shape == "almond" else 0.55 if p.eye_shape == "sleepy" else 1.0)
        strokes.append(ellipse_pts([ex - rw, ey - rh, ex + rw, ey + rh], 0, 360, 16))
        half = s * 0.045
        strokes.append([(ex - half, by + (half * 0.3 if p.brow_shape == "angry" and sx < 0
                                           else 0)), (ex + half, by)])
        if p.glasses != "none":
            g = s * 0.062
            box = [ex - g, ey - g * 0.8, ex + g, ey + g * 0.8]
            if p.glasses == "square":
                strokes.append([(box[0], box[1]), (box[2], box[1]), (box[2], box[3]),
                                (box[0], box[3]), (box[0], box[1])])
            else:
                strokes.append(ellipse_pts(box, 0, 360, 20))
    my, half = cy + h * 0.55, s * 0.06
    if p.mouth_shape in ("open", "small_o"):
        strokes.append(ellipse_pts([cx - half * 0.5, my - half * 0.3, cx + half * 0.5,
                                     my + half * 0.4], 0, 360, 16))
    elif p.mouth_shape == "flat":
        strokes.append([(cx - half * 0.8, my), (cx + half * 0.8, my)])
    else:
        strokes.append(ellipse_pts([cx - half, my - half * 0.8, cx + half, my + half * 0.5],
                                    20, 160, 16))
    if p.nose_shape != "none":
        ny = cy + h * 0.15
        strokes.append([(cx, ny - s * 0.05), (cx - s * 0.015, ny + s * 0.01),
                        (cx + s * 0.01, ny + s * 0.01)])
    if p.facial_hair == "beard":
        strokes.append(ellipse_pts([cx - w * 0.98, cy - h * 0.6, cx + w * 0.98, cy + h * 1.08],
                                    0, 180, 24))
    if p.facial_hair in ("moustache", "beard", "goatee"):
        strokes.append(ellipse_pts([cx - w * 0.4, cy + h * 0.28, cx + w * 0.4, cy + h * 0.45],
                                    0, 360, 16))
    return strokes


def sketch_face(seed: int, size: int = 256, pen_px: float | None = None,
                wobble_px: float | None = None, sketch_seed: int = 0) -> np.ndarray:
    """A hand-drawn-style sketch of face ``seed``: ``(size, size)`` uint8, dark strokes (0)
    on white (255). The outlines of :func:`sketch_strokes` are traced with a round pen
    ``pen_px`` wide (default size/100, at least 1) that drifts up to ``wobble_px`` (default
    size/70) off the true outline; ``sketch_seed`` picks the wobble (deterministic)."""
    pen = max(1, round(pen_px if pen_px is not None else size / 100))
    amp = wobble_px if wobble_px is not None else size / 70
    rng = np.random.default_rng([int(seed), int(sketch_seed), 0x5CE7C4])
    img = Image.new("L", (size, size), 255)
    d = ImageDraw.Draw(img)
    for stroke in sketch_strokes(face_params(seed), size):
        pts = wobble(stroke, rng, amp)
        d.line(pts, fill=int(rng.integers(0, 50)), width=pen, joint="curve")
    return np.asarray(img, dtype=np.uint8)
