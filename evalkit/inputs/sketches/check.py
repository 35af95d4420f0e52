"""Validate a sketch set (``evalkit sketches check DIR``).

Every check looks at the sketch *as served* (:func:`evalkit.inputs.data.serving.sketch_to_input`
at the run's image size, default :data:`SERVE_SIZE`; stroke pixels = served value < 0.5),
i.e. at what the generator receives, never at an upscaled copy, except the file-level
ones. Errors (exit 1; run skips or refuses the same files):

``manifest``     no/unreadable ``manifest.json``, or an entry missing file/domain/provenance,
                 a missing reference photo, a path outside the set (see
                 :mod:`evalkit.inputs.sketches.manifest`).
``missing``      a file the manifest lists does not exist.
``outside``      a manifest path whose real location is outside the set (a symlink leaving
                 it; absolute and ``..`` paths are ``manifest`` problems). ``run`` refuses
                 the same paths (:func:`evalkit.inputs.data.files.confine`).
``unlisted``     an image in the set's folders that the manifest does not list.
``skipped``      an entry of the set's folders that run would skip: not an image, a symlink
                 loop, a symlink leaving the set, a symlinked folder.
``unreadable``, ``empty``, ``polarity``: the file as served at the run's size is
                 unreadable, blank or nearly blank, or inverted. This is
                 :func:`evalkit.inputs.data.files.judge_served_sketch`, the same call
                 ``evalkit run`` makes for every sketch, so check and run cannot disagree
                 (a 16-bit PNG the service clips to white, a grey+alpha PNG shown black...:
                 the cause is named).

Warnings (:data:`WARNING_CHECKS`: the service accepts the drawing and run scores it; exit 0
unless ``--strict``):

``faint``        fewer than :data:`evalkit.inputs.data.files.FAINT_MIN_PX` served px darker
                 than half (scaled by ``(size / 256)^2``): thin strokes on a large canvas
                 fade when shrunk; the message names the width that vanishes and what to do.
``mode``         a file mode the service mis-renders in part (16-bit...), strokes still seen.
``duplicate``    same bytes (sha256) or the same served pixels as an earlier file.
``not-square``   width != height: the service squashes it to a square (aspect distorted).
``stroke-width`` stroke width (:func:`evalkit.inputs.sketches.normalize.stroke_width`, px at the
                 served size) above :data:`MAX_WIDTH_PX` x ``size / 256``, or, in a domain
                 of at least :data:`MIN_GROUP` sketches, outside ``[median / F, median * F]``
                 with ``F =`` :data:`WIDTH_FACTOR` (the domain's median width).

Each :class:`Problem` names the file and says how to fix it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evalkit.core.hashing import file_sha256
from evalkit.inputs.data.files import (
    FAINT_MIN_PX,
    confine,
    judge_served_sketch,
    scan_folder,
)
from evalkit.inputs.sketches.manifest import (
    MANIFEST_NAME,
    ManifestError,
    read_manifest,
    validate_manifest,
)
from evalkit.inputs.sketches.normalize import stroke_width

SERVE_SIZE = 256
EMPTY_MIN_PX = FAINT_MIN_PX  # the earlier name: below it the strokes are *faint* (a warning)
MAX_WIDTH_PX = 8.0
WIDTH_FACTOR = 2.0
MIN_GROUP = 4
_REEXPORT = ("re-export it from the drawing app as an 8-bit PNG, dark strokes on white, or "
             "import the drawing with `evalkit sketches import FILE --mode scan`")
#: Checks that are style notes about a drawing the service accepts: warnings, exit 0
#: unless ``--strict``. Every other check is an error (run skips or refuses that file too).
WARNING_CHECKS = frozenset({"duplicate", "not-square", "stroke-width", "faint", "mode"})


@dataclass
class Problem:
    """One problem: the file (relative to the set), a check code, and a message with the fix."""

    file: str
    check: str
    message: str

    @property
    def severity(self) -> str:
        """``warning`` for the style checks in :data:`WARNING_CHECKS`, else ``error``."""
        return "warning" if self.check in WARNING_CHECKS else "error"

    def __str__(self) -> str:
        return f"{self.file}: [{self.check}] {self.message}"


@dataclass
class SketchStats:
    """What the checks measured for one readable sketch (served at :data:`SERVE_SIZE`)."""

    file: str
    domain: str
    stroke_px: int
    stroke_width: float
    median_value: float
    size: tuple[int, int]


@dataclass
class CheckReport:
    """Result of :func:`check_set`: ``ok`` when there are no problems."""

    root: Path
    n_files: int
    problems: list[Problem] = field(default_factory=list)
    stats: list[SketchStats] = field(default_factory=list)
    domains: list[str] = field(default_factory=list)  # of the set's entries, sorted

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        """No errors (warnings allowed: ``--strict`` fails on them too)."""
        return not self.errors


def _images_under(root: Path, problems: list[Problem]) -> list[str]:
    """Images of the set (relative paths); every other entry is a ``skipped`` problem."""
    found, other = scan_folder(root, recursive=True)
    problems.extend(Problem(s.file, "skipped", f"run skips it: {s.reason}") for s in other)
    return [p.relative_to(root).as_posix() for p in found]


def check_set(root: str | Path, serve_size: int = SERVE_SIZE) -> CheckReport:
    """Run every check on the set in ``root``; see the module docstring for the list."""
    root = Path(root)
    report = CheckReport(root=root, n_files=0)
    problems = report.problems
    if not root.is_dir():
        problems.append(Problem(str(root), "missing", "the set folder does not exist"))
        return report
    images = _images_under(root, problems)
    references: set[str] = set()
    try:
        manifest = read_manifest(root)
    except ManifestError as exc:
        problems.append(Problem(MANIFEST_NAME, "manifest", str(exc)))
        entries = [(f, f.split("/")[0] if "/" in f else "") for f in images]
    else:
        for file, msg in validate_manifest(manifest, root):
            problems.append(Problem(file, "manifest", msg))
        references = {e.reference for e in manifest.entries if e.reference}
        entries = [(e.file, e.domain) for e in manifest.entries if e.file]
        listed = {f for f, _ in entries}
        for f in images:
            if f not in listed and f not in references:
                problems.append(Problem(f, "unlisted", "image not listed in manifest.json: "
                                        "add an entry (or import it) or remove the file"))
    report.n_files = len(entries)
    report.domains = sorted({d for _, d in entries})

    seen_bytes: dict[str, str] = {}
    seen_pixels: dict[str, str] = {}
    seen_files: set[str] = set()
    flagged = {p.file for p in problems}
    scale = serve_size / SERVE_SIZE
    for file, domain in entries:
        if file in seen_files:  # listed twice: a manifest problem already
            continue
        seen_files.add(file)
        path, reason = confine(root, file)
        if path is None:
            if file not in flagged:
                problems.append(Problem(file, "outside", f"{reason}: run refuses it too"))
            continue
        if not path.is_file():
            problems.append(Problem(file, "missing", "listed in manifest.json but the file "
                                    "does not exist: add it or remove the entry"))
            continue
        verdict = judge_served_sketch(path, serve_size)  # exactly what `run` decides
        if not verdict.usable:
            code = verdict.error_code or "unreadable"
            fix = "" if code == "unreadable" else f"; {_REEXPORT}"
            problems.append(Problem(file, code, f"{verdict.error}{fix}"))
            continue
        x, size = verdict.served, verdict.source_size
        assert x is not None
        digest = file_sha256(path)
        if digest in seen_bytes:
            problems.append(Problem(file, "duplicate", f"same bytes as {seen_bytes[digest]}: "
                                    "both are scored; remove one unless you mean to weigh it "
                                    "twice"))
            continue
        seen_bytes[digest] = file
        pix = hashlib.sha256(np.round(x * 255).astype(np.uint8).tobytes()).hexdigest()
        if pix in seen_pixels:
            problems.append(Problem(file, "duplicate", "same served pixels as "
                                    f"{seen_pixels[pix]}: both are scored; remove one unless "
                                    "you mean to weigh it twice"))
            continue
        seen_pixels[pix] = file
        if size[0] != size[1]:
            problems.append(Problem(file, "not-square", f"is {size[0]}x{size[1]}: the service "
                                    "squashes it to a square; export a square canvas, or "
                                    "import it with `--mode scan` (pads it to a square)"))
        problems.extend(Problem(file, code, msg) for code, msg in verdict.warnings)
        if any(code == "faint" for code, _ in verdict.warnings):
            continue  # no strokes to measure a width on
        median = float(np.median(x))
        mask = x < 0.5
        n_px = int(mask.sum())
        report.stats.append(SketchStats(file=file, domain=domain, stroke_px=n_px,
                                        stroke_width=stroke_width(mask),
                                        median_value=median, size=size))

    by_domain: dict[str, list[SketchStats]] = {}
    for s in report.stats:
        by_domain.setdefault(s.domain, []).append(s)
    for domain, group in by_domain.items():
        med = float(np.median([s.stroke_width for s in group]))
        for s in group:
            if s.stroke_width > MAX_WIDTH_PX * scale:
                problems.append(Problem(s.file, "stroke-width", f"strokes {s.stroke_width:.1f}"
                                        f" px wide at {serve_size} px (> "
                                        f"{MAX_WIDTH_PX * scale:g}): filled areas or a very "
                                        "thick pen, unlike the thin edge maps the model was "
                                        "trained on; it is scored as it is (keep it if your "
                                        "users draw this way)"))
            elif len(group) >= MIN_GROUP and not (med / WIDTH_FACTOR <= s.stroke_width
                                                  <= med * WIDTH_FACTOR):
                problems.append(Problem(
                    s.file, "stroke-width",
                    f"strokes {s.stroke_width:.2f} px wide vs the median {med:.2f} px of domain "
                    f"'{domain or '(none)'}' (x1/{WIDTH_FACTOR:g}..x{WIDTH_FACTOR:g} is usual): "
                    "a different pen; it is scored as it is, so compare its per-sample "
                    "scores with care"))
    return report
