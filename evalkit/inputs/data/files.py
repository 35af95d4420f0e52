"""Finding and opening input files: nothing hidden, nothing read from outside the set.

Every loader (held-out pairs, sketch sets, ``sketches check``, ``edges``) goes through this
module, so the rules are the same everywhere:

* **Folders never hide files.** :func:`scan_folder` returns the image files and, for every
  other entry, a :class:`~evalkit.inputs.data.dataset.Skipped` with its reason: not an image
  extension, a symlink loop, a broken symlink, a symlink leading outside the set, a
  symlinked folder (not followed), a subfolder that this layout does not read. Only the
  set's own metadata files (:data:`METADATA_FILES`) are passed over silently.
* **Paths stay inside the set.** :func:`confine` refuses absolute paths, ``..`` and
  backslashes in a relative path, and paths whose real location (symlinks resolved) is
  outside the set's folder.
* **Opening is bounded and honest.** :func:`read_image` refuses images above
  :data:`MAX_PIXELS` before decoding them (a 100,000 px wide PNG header would otherwise
  allocate gigabytes), decodes the whole file (a truncated file fails here, with its
  name), and says when an animated image has more than one frame (the first is used, as
  Pillow's ``Image.open`` - and so the service - reads it).
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from evalkit.inputs.data.dataset import Skipped
from evalkit.inputs.data.serving import mode_cause, served_defect, sketch_to_input

#: Extensions read as images (case-insensitive). GIF and TIFF are read like the others:
#: Pillow opens them and the serving contract applies.
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".gif", ".tif", ".tiff"}
#: A set's own metadata, never reported as a skipped input.
METADATA_FILES = {"manifest.json", "detector.json", "README.md", "README.txt", "README"}
#: Largest image evalkit decodes, pixels (100 Mpx: an A3 page scanned at 600 dpi is 70 Mpx).
#: Larger ones are skipped with the fix (downscale), before decoding.
MAX_PIXELS = 100_000_000


def first_line(exc: BaseException) -> str:
    """A one-line reason for an exception (its message's first line, or its type)."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _symlink_problem(path: Path, root_real: Path) -> str | None:
    """Why a symlink cannot be used (loop, broken, outside the set), or None if it can."""
    try:
        target = path.resolve(strict=True)
    except RuntimeError:  # Python < 3.13 reports loops as RuntimeError
        return "symlink loop: the link points (through others) back to itself; remove it"
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "symlink loop: the link points (through others) back to itself; remove it"
        return f"broken symlink (its target {os.readlink(path)!r} does not exist)"
    if not target.is_relative_to(root_real):
        return (f"symlink leads outside the set (to {target}): copy the file into the "
                "set folder instead")
    return None


def scan_folder(root: str | Path, *, recursive: bool, exclude: set[str] | None = None,
                top: Path | None = None) -> tuple[list[Path], list[Skipped]]:
    """Image files under ``root`` (sorted by relative path) and every other entry, skipped.

    Args:
        root: the folder to list.
        recursive: descend into subfolders; when False a subfolder is listed as skipped.
        exclude: relative ``/``-paths (from ``top``) to pass over silently besides
            :data:`METADATA_FILES` (e.g. a manifest's reference photos).
        top: the set's folder that paths must stay inside and that skipped files are named
            relative to (default ``root``).

    Symlinks to files inside ``top`` are read; symlinked folders are not followed (listed).
    """
    root = Path(root)
    top = Path(top) if top is not None else root
    top_real = top.resolve()
    exclude = exclude or set()
    images: list[Path] = []
    skipped: list[Skipped] = []

    def rel(p: Path) -> str:
        return p.relative_to(top).as_posix()

    def walk(folder: Path) -> None:
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            skipped.append(Skipped(rel(folder) or ".", f"folder cannot be listed: {first_line(exc)}"))
            return
        for entry in entries:
            path = Path(entry.path)
            name = rel(path)
            if name in exclude or (folder == top and entry.name in METADATA_FILES):
                continue
            if entry.is_symlink():
                problem = _symlink_problem(path, top_real)
                if problem:
                    skipped.append(Skipped(name, problem))
                    continue
                if path.is_dir():
                    skipped.append(Skipped(name, "symlink to a folder: not followed (copy or "
                                                 "link the files themselves)"))
                    continue
            if entry.is_dir(follow_symlinks=False):
                if recursive:
                    walk(path)
                else:
                    skipped.append(Skipped(name, "subfolder not read (this layout reads the "
                                                 "files of the top folder only)"))
                continue
            if not path.is_file():
                skipped.append(Skipped(name, "not a regular file"))
            elif path.suffix.lower() not in IMAGE_EXTENSIONS:
                skipped.append(Skipped(name, f"not an image file (extension "
                                             f"'{path.suffix or '(none)'}'; read: "
                                             f"{', '.join(sorted(IMAGE_EXTENSIONS))})"))
            else:
                images.append(path)

    walk(root)
    return images, skipped


def confine(root: str | Path, rel: str) -> tuple[Path | None, str | None]:
    """``(root / rel, None)`` when ``rel`` stays inside ``root``, else ``(None, reason)``.

    Refused: empty, absolute, ``..``, backslash, or a real location (symlinks resolved)
    outside ``root``; a symlink loop is refused too (with that reason).
    """
    if not rel:
        return None, "empty path"
    pp = PurePosixPath(rel)
    if pp.is_absolute() or Path(rel).is_absolute():
        return None, "absolute path: manifest paths must be relative to the set folder"
    if ".." in pp.parts:
        return None, "'..' in the path: manifest paths must stay inside the set folder"
    if "\\" in rel:
        return None, "backslash in the path: use '/'-separated paths"
    root = Path(root)
    path = root / rel
    try:
        real = path.resolve()
    except RuntimeError:
        return None, "symlink loop: remove the link"
    if not real.is_relative_to(root.resolve()):
        return None, f"leads outside the set folder (to {real}) through a symlink"
    if path.is_symlink():
        problem = _symlink_problem(path, root.resolve())
        if problem:
            return None, problem
    return path, None


def read_image(path: str | Path) -> tuple[Image.Image, str | None]:
    """Open and fully decode one image file: ``(image, note)``.

    ``note`` says when the file holds several frames (animated GIF/WebP/APNG, multi-page
    TIFF): the first frame is returned, as ``Image.open`` gives it. Raises ``ValueError``
    for an image above :data:`MAX_PIXELS` (before decoding) and Pillow's errors for files
    it cannot decode; both name the problem, the caller names the file.
    """
    with Image.open(path) as im:
        w, h = im.size
        if w * h > MAX_PIXELS:
            raise ValueError(f"image is {w}x{h} ({w * h / 1e6:.0f} Mpx), above the "
                             f"{MAX_PIXELS / 1e6:.0f} Mpx evalkit reads: downscale it")
        frames = int(getattr(im, "n_frames", 1) or 1)
        im.seek(0)
        im.load()
        out = im.copy()
    note = None
    if frames > 1:
        note = (f"animated ({frames} frames): the first frame is used, as the service "
                "reads it")
    return out, note


#: Least ink a usable served sketch holds, in fully dark pixels at 256 px, scaled by
#: ``(size / 256)^2``; ink = ``sum(clip(page - x, 0, 1))``, page = the median served value.
#: The 22 real drawings in ``shared/sketches/real`` hold 739-2148 at 256 and 48-140 at 64.
MIN_INK_PX = 50.0
#: Fewer pixels darker than half (served value < 0.5) than this, at 256 px and scaled like
#: :data:`MIN_INK_PX`, makes the strokes *faint* as served: a warning, the service still
#: sees them.
FAINT_MIN_PX = 50


@dataclass
class ServedVerdict:
    """What the service would see of one sketch file at one size (:func:`judge_served_sketch`).

    Attributes:
        served: the served input, ``(size, size)`` float32 in [0, 1] (None when unreadable).
        size: the served side, px.
        error_code: None when usable; else ``unreadable``, ``empty`` (blank or nearly blank
            as served) or ``polarity`` (inverted as served). Such a file is never scored.
        error: the cause and what to do, for ``error_code``.
        warnings: ``(code, message)`` pairs for a usable sketch: ``faint`` (strokes fade
            below half-dark at this size), ``mode`` (a file mode the service mis-renders).
        note: as in :func:`read_image` (animated files).
        source_size: ``(width, height)`` of the file, px.
        stroke_px: served pixels darker than half.
        ink_px: ink as served, in fully dark pixels (see :data:`MIN_INK_PX`).
    """

    served: np.ndarray | None
    size: int
    error_code: str | None = None
    error: str | None = None
    warnings: list[tuple[str, str]] = field(default_factory=list)
    note: str | None = None
    source_size: tuple[int, int] = (0, 0)
    stroke_px: int = 0
    ink_px: float = 0.0

    @property
    def usable(self) -> bool:
        return self.error_code is None


def _scaled(size: int, at_256: float) -> float:
    """A pixel count stated at 256 px, scaled to ``size`` by area (at least 1)."""
    return max(1.0, at_256 * (size / 256) ** 2)


def judge_served_sketch(src: str | Path | Image.Image, size: int) -> ServedVerdict:
    """The one judgement of a sketch as the service serves it at ``size`` px.

    ``evalkit run`` (:func:`served_sketch`, every sketch and held-out input) and ``evalkit
    sketches check`` both call it, so they cannot disagree. Errors are only what the
    service would see unreadable, blank (values spanning < ``BLANK_CONTRAST``, or less ink
    than :data:`MIN_INK_PX`) or inverted (:func:`evalkit.inputs.data.serving.served_defect`;
    the file mode's part is named). Warnings (the sketch is still scored): faint strokes
    (< :data:`FAINT_MIN_PX` px darker than half, with the canvas-to-served scale that
    thins them), a mode the service mis-renders in part (16-bit...).
    """
    try:
        im, note = (src, None) if isinstance(src, Image.Image) else read_image(src)
        x = sketch_to_input(im, size)
    except ValueError as exc:  # read_image's refusals say the fix themselves
        return ServedVerdict(None, size, "unreadable", first_line(exc))
    except Exception as exc:  # any decoder error
        return ServedVerdict(None, size, "unreadable",
                             f"cannot be decoded ({first_line(exc)}): re-export it as PNG")
    v = ServedVerdict(x, size, note=note, source_size=im.size,
                      stroke_px=int((x < 0.5).sum()))
    defect = served_defect(im, x)
    if defect:
        v.error_code = "empty" if defect.startswith("blank") else "polarity"
        v.error = defect
        return v
    v.ink_px = float(np.clip(np.median(x) - x, 0.0, 1.0).sum())
    cause = mode_cause(im)
    floor = _scaled(size, MIN_INK_PX)
    if v.ink_px < floor:
        v.error_code = "empty"
        v.error = (f"nearly blank as served: {v.ink_px:.1f} px of ink at {size} px (at least "
                   f"{floor:g} needed); " + (cause or "the drawing is too small or too light "
                                                     "to survive serving"))
        return v
    if cause:
        v.warnings.append(("mode", f"{cause} (the service sees {v.stroke_px} px darker than "
                                   f"half at {size} px)"))
    min_px = _scaled(size, FAINT_MIN_PX)
    if v.stroke_px < min_px:
        side = max(im.size)
        factor = side / size
        w, h = im.size
        head = (f"faint as served: {v.stroke_px} px darker than half at {size} px "
                f"(darkest {float(x.min()):.2f})")
        if factor <= 1:
            advice = "light strokes: export them darker (the service scores them as they are)"
        elif size < 256:
            advice = (f"thin strokes vanish below {factor / 2:.1f} px on this {w}x{h} canvas "
                      f"at {size} px; evaluate at 256, the served size")
        else:
            advice = (f"strokes thinner than {factor / 2:.1f} px on this {w}x{h} canvas fade "
                      f"below half-dark at {size} px; export with a wider pen or a canvas of "
                      f"at most {2 * size} px")
        v.warnings.append(("faint", f"{head}: {advice}"))
    return v


def served_sketch(src: str | Path | Image.Image, size: int) -> tuple[np.ndarray, str | None]:
    """A sketch file as the service serves it: ``((size, size) float32 in [0, 1], note)``.

    Raises ``ValueError`` naming the cause when :func:`judge_served_sketch` finds it
    unusable (unreadable, blank or inverted as served), so such a file is listed as skipped
    and never scored. ``note`` as in :func:`read_image`.
    """
    v = judge_served_sketch(src, size)
    if not v.usable:
        raise ValueError(v.error)
    return v.served, v.note
