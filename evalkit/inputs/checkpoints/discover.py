"""Find every TensorFlow checkpoint saved under a run folder.

A checkpoint is ``<prefix>-<N>.index`` plus its data shards
``<prefix>-<N>.data-<i>-of-<k>`` (``tf.train.Checkpoint.save`` writes ``ckpt-N``). Each is
named by its prefix relative to the run folder (``ckpt-3``, ``run2/ckpt-10``) and ordered
by step ``N`` (then name). Problems visible from the file listing alone (missing shards)
are recorded on the reference; deeper ones surface when loading.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from evalkit.core.hashing import combine, file_sha256

_INDEX_RE = re.compile(r"^(?P<base>.+)-(?P<step>\d+)\.index$")
_SHARD_RE = re.compile(r"\.data-(\d{5})-of-(\d{5})$")


@dataclass
class CheckpointRef:
    """One checkpoint on disk.

    Attributes:
        name: prefix relative to the run folder, POSIX style (``run2/ckpt-10``).
        step: the ``N`` of ``ckpt-N``.
        prefix: absolute path prefix (what ``tf.train.Checkpoint.restore`` takes).
        files: the index file and the data shards found, sorted.
        problem: one-line reason the checkpoint cannot be used, if visible already.
        kind: the model source kind (:mod:`evalkit.inputs.sources`); ``tf-checkpoint`` is the seed's.
        settings: evaluation settings that change the outputs of the same files (a
            non-default ``contract``); part of the content hash, empty by default.
        latest: ordered after every checkpoint of the same step (pix2pix's ``latest``).
    """

    name: str
    step: int
    prefix: Path
    files: list[Path] = field(default_factory=list)
    problem: str | None = None
    kind: str = "tf-checkpoint"
    settings: dict[str, str] = field(default_factory=dict)
    latest: bool = False

    def files_hash(self) -> str:
        """sha256 over the checkpoint's files: each file's name relative to the prefix (for
        a single-file checkpoint, its extension) and bytes. Copies and renamed duplicates
        hash alike, so they share cached outputs."""
        if self.prefix.is_dir():  # a folder checkpoint (SavedModel): paths inside it
            parts = (f"{p.relative_to(self.prefix).as_posix()}:{file_sha256(p)}"
                     for p in self.files)
        elif self.files == [self.prefix]:  # a single file
            parts = (f"{self.prefix.suffix}:{file_sha256(self.prefix)}",)
        else:
            base = self.prefix.name
            parts = (f"{p.name.replace(base, '', 1)}:{file_sha256(p)}" for p in self.files)
        return combine(parts)

    def content_hash(self) -> str:
        """:meth:`files_hash`, combined with :attr:`settings` when there are any."""
        return settings_hash(self.files_hash(), self.settings)


def settings_hash(files_hash: str, settings: dict[str, str]) -> str:
    """The content hash of files evaluated with ``settings`` (just ``files_hash`` if none)."""
    if not settings:
        return files_hash
    return combine([files_hash, *(f"{k}={v}" for k, v in sorted(settings.items()))])


def walk_files(run_dir: Path, exclude: list[str | Path] | None = None,
               pattern: str = "*") -> list[Path]:
    """Paths under ``run_dir`` matching ``pattern``, hidden ones and those under
    ``exclude`` skipped, sorted."""
    skip = [Path(p).resolve() for p in exclude or []]
    out = []
    for path in run_dir.rglob(pattern):
        rel = path.relative_to(run_dir)
        if any(part.startswith(".") for part in rel.parts):
            continue
        if any(path.resolve().is_relative_to(s) for s in skip):
            continue
        out.append(path)
    return sorted(out)


def _shards(prefix: Path) -> tuple[list[Path], str | None]:
    found = sorted(prefix.parent.glob(prefix.name + ".data-*-of-*"))
    found = [p for p in found if _SHARD_RE.search(p.name)]
    if not found:
        return [], f"data shard {prefix.name}.data-00000-of-00001 is missing"
    total = int(_SHARD_RE.search(found[0].name).group(2))
    have = {int(_SHARD_RE.search(p.name).group(1)) for p in found}
    missing = [i for i in range(total) if i not in have]
    if missing:
        return found, (f"data shard {prefix.name}.data-{missing[0]:05d}-of-{total:05d} is "
                       f"missing ({len(missing)} of {total} shards)")
    return found, None


def discover_checkpoints(run_dir: str | Path,
                         exclude: list[str | Path] | None = None) -> list[CheckpointRef]:
    """Every checkpoint under ``run_dir`` (subfolders included, hidden ones and those in
    ``exclude`` -- e.g. evalkit's own output folder -- skipped), ordered by step then name."""
    run_dir = Path(run_dir)
    refs = []
    for index in walk_files(run_dir, exclude, "*.index"):
        m = _INDEX_RE.match(index.name)
        if not m:
            continue
        prefix = index.with_name(index.name[: -len(".index")])
        shards, problem = _shards(prefix)
        name = prefix.relative_to(run_dir).as_posix()
        refs.append(CheckpointRef(name=name, step=int(m.group("step")), prefix=prefix,
                                  files=[index, *shards], problem=problem))
    refs.sort(key=lambda r: (r.step, r.name))
    return refs
