"""The sketch-set manifest: ``manifest.json`` at the root of a set.

Schema (``"schema": "evalkit.sketches/1"``)::

    {
      "schema": "evalkit.sketches/1",
      "sketches": [
        {
          "file": "car/car_01.png",          # required: path relative to the manifest, "/"-separated
          "domain": "car",                   # required: the generator's subject
          "provenance": "who or what made it, and how",   # required, non-empty
          "reference": "photos/car_01.jpg",  # optional: photo it was traced from (or null)
          "tags": ["procedural", "side-view"],            # optional list of strings
          "source_file": "IMG_2041.jpg",     # optional: original file an import came from
          "source_sha256": "…",              # optional: sha256 of that original file
          "normalization": {…}               # optional: what import did (polarity, crop, …)
        }
      ]
    }

Unknown keys are kept. For compatibility with the seed team's set
(``../shared/sketches/real/manifest.json``), ``source`` is read as ``provenance`` and
``reference_image`` as ``reference``. Files live one folder per domain (``car/``,
``person/``...) by convention; :func:`validate_manifest` reports a file whose folder is not
its domain only as a problem when the folder is another known domain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

SCHEMA = "evalkit.sketches/1"
MANIFEST_NAME = "manifest.json"
_ALIASES = {"source": "provenance", "reference_image": "reference"}
_KNOWN = ("file", "domain", "provenance", "reference", "tags")


class ManifestError(ValueError):
    """A manifest that cannot be read at all (message names the file and the fix)."""


@dataclass
class SketchEntry:
    """One sketch of a set. ``extra`` keeps every other key of the JSON object."""

    file: str
    domain: str
    provenance: str
    reference: str | None = None
    tags: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> SketchEntry:
        d = dict(obj)
        for old, new in _ALIASES.items():
            if old in d and new not in d:
                d[new] = d.pop(old)
        tags = d.get("tags") or []
        return cls(file=str(d.get("file") or ""), domain=str(d.get("domain") or ""),
                   provenance=str(d.get("provenance") or ""),
                   reference=d.get("reference") or None,
                   tags=[str(t) for t in tags] if isinstance(tags, list) else [str(tags)],
                   extra={k: v for k, v in d.items() if k not in _KNOWN})

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"file": self.file, "domain": self.domain,
                               "provenance": self.provenance, "reference": self.reference,
                               "tags": list(self.tags)}
        out.update(self.extra)
        return out


@dataclass
class Manifest:
    """A set's manifest. ``path`` is where it was read from (None when built in memory)."""

    entries: list[SketchEntry] = field(default_factory=list)
    path: Path | None = None

    @property
    def root(self) -> Path | None:
        return self.path.parent if self.path is not None else None

    def domains(self) -> list[str]:
        return sorted({e.domain for e in self.entries})

    def by_file(self) -> dict[str, SketchEntry]:
        return {e.file: e for e in self.entries}

    def upsert(self, entry: SketchEntry) -> None:
        """Add ``entry``, replacing an entry for the same file."""
        for i, e in enumerate(self.entries):
            if e.file == entry.file:
                self.entries[i] = entry
                return
        self.entries.append(entry)

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "sketches": [e.to_json() for e in self.entries]}


def manifest_path(root: str | Path) -> Path:
    return Path(root) / MANIFEST_NAME


def read_manifest(root_or_file: str | Path) -> Manifest:
    """Read ``manifest.json`` (give the set folder or the file). Raises :class:`ManifestError`
    when it is missing, not JSON, or not shaped ``{"sketches": [...]}``."""
    p = Path(root_or_file)
    if p.is_dir():
        p = p / MANIFEST_NAME
    if not p.is_file():
        raise ManifestError(f"{p} does not exist: create it with `evalkit sketches import "
                            f"SRC... --domain D --into {p.parent}`")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ManifestError(f"{p} is not readable JSON ({exc}); fix or regenerate it") from exc
    if isinstance(data, list):
        items = data
    elif isinstance(data, dict) and isinstance(data.get("sketches"), list):
        items = data["sketches"]
    else:
        raise ManifestError(f"{p}: expected an object with a \"sketches\" list "
                            f"(schema {SCHEMA}, see human_sketches/README.md)")
    if not all(isinstance(it, dict) for it in items):
        raise ManifestError(f"{p}: every item of \"sketches\" must be a JSON object")
    return Manifest([SketchEntry.from_json(it) for it in items], path=p)


def write_manifest(manifest: Manifest, root: str | Path) -> Path:
    """Write ``root/manifest.json`` (sorted by file, 2-space indent, trailing newline)."""
    p = manifest_path(root)
    manifest.entries.sort(key=lambda e: e.file)
    p.write_text(json.dumps(manifest.to_json(), indent=2, ensure_ascii=False) + "\n",
                 encoding="utf-8")
    manifest.path = p
    return p


def validate_manifest(manifest: Manifest, root: str | Path) -> list[tuple[str, str]]:
    """Schema problems as ``(file, message-with-fix)`` pairs; empty when valid.

    Checks: required keys present and non-empty, paths relative and inside ``root``, no file
    listed twice, a named reference photo exists, a file in a folder named
    after another domain of the set.
    """
    root = Path(root)
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()
    domains = set(manifest.domains())
    for i, e in enumerate(manifest.entries):
        label = e.file or f"entry #{i}"
        if not e.file:
            problems.append((label, "manifest entry has no \"file\": add the sketch's path "
                                    "relative to the set folder"))
            continue
        pp = PurePosixPath(e.file)
        if pp.is_absolute() or ".." in pp.parts or "\\" in e.file:
            problems.append((label, "\"file\" must be a relative '/'-separated path inside "
                                    "the set folder"))
        if e.file in seen:
            problems.append((label, "listed twice in the manifest: remove one entry"))
        seen.add(e.file)
        if not e.domain:
            problems.append((label, "no \"domain\": add the generator subject (car, person...)"))
        elif len(pp.parts) > 1 and pp.parts[0] != e.domain and pp.parts[0] in domains:
            problems.append((label, f"domain is '{e.domain}' but the file is in folder "
                                    f"'{pp.parts[0]}/': move it or fix the domain"))
        if not e.provenance.strip():
            problems.append((label, "no \"provenance\": say who or what made the sketch and "
                                    "how (e.g. 'drawn by hand on paper by ..., scanned')"))
        if e.reference:
            rp = PurePosixPath(e.reference)
            if rp.is_absolute() or ".." in rp.parts:
                problems.append((label, f"reference '{e.reference}' must be relative and "
                                        "inside the set folder"))
            elif not (root / e.reference).is_file():
                problems.append((label, f"reference photo '{e.reference}' does not exist: "
                                        "add it or set \"reference\" to null"))
    return problems
