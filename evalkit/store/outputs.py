"""Checked reads of the served-output cache, ``OUT/outputs/<checkpoint>/<dataset>/``.

Every folder's ``manifest.json`` (written by :class:`evalkit.execute.generate.OutputCache`)
lists each PNG with the sha256 of its bytes. Every reader of those PNGs goes through
:class:`CheckedFolder`: ``run`` (cached outputs, and a re-run's complete evaluations),
racing, the report's grids, the TensorBoard/MLflow images and the review server. A PNG
whose bytes no longer match (even another valid image of the same size), or that is
missing, fails with :class:`OutputChanged` naming the file.

**How a check is keyed.** Hashing every PNG on every read grows with checkpoints x samples
while an unchanged re-run does not: measured 0.30 % of the re-run with 180 outputs at 256 px
and 1.39 % with 900, so past 2 % from about 1,300 outputs; the keyed check measured 0.01 %
and 0.06 % (``benchmarks/bench_output_check.py``, reports/benchmarks.md). A file whose
sha256 matched has its
``(size, mtime_ns, ctime_ns, inode)`` recorded in ``.checked.json`` beside the manifest
(by ``evalkit run``; the readers write nothing);
a later read whose ``fstat`` gives the same four numbers trusts the file without hashing
it, and any difference (a write, ``touch``, a copy, a new hard link) makes it hash the file
again. ``ctime`` cannot be set by a user, so an edit whose mtime is put back afterwards
(``touch -r``) is still seen; a file changed less than 2 s before its check gets no key
(timestamps are coarse), so the first read after a write always hashes. ``EVALKIT_OUTPUT_CHECK=full`` hashes every file on every
read. Not detected: a manifest rewritten together with its files (the manifest is the
reference; whoever can rewrite ``OUT`` can rewrite both), and a change made between a
check and the read that follows it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

MANIFEST = "manifest.json"
#: Stat keys of files whose sha256 matched (see the module docstring).
CHECKED = ".checked.json"


class OutputChanged(Exception):
    """A cached output PNG that fails its check; ``path`` and ``reason`` say which/why."""

    def __init__(self, path: Path, reason: str):
        super().__init__(f"cached output {path} {reason}")
        self.path = path
        self.reason = reason


def full_check() -> bool:
    """Whether every read hashes every file (``EVALKIT_OUTPUT_CHECK=full``)."""
    return os.environ.get("EVALKIT_OUTPUT_CHECK", "").strip().lower() == "full"


def stat_key(st: os.stat_result) -> list[int]:
    """The numbers a keyed check compares: size, mtime_ns, ctime_ns, inode."""
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


#: A file changed less than this long ago (ns) gets no key yet: timestamps are coarse
#: (a few ms), so a write right after the check could keep all four numbers.
SETTLE_NS = 2_000_000_000


def _save(folder: Path, keys: dict[str, list[int]]) -> None:
    tmp = folder / f"{CHECKED}.tmp{os.getpid()}"
    try:
        tmp.write_text(json.dumps(keys))
        os.replace(tmp, folder / CHECKED)
    except OSError:  # a read-only OUT: checks stay correct, only slower
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


class CheckedFolder:
    """One output folder: its manifest's sha256 per file, and the stat keys of files
    already checked. Raises ``OSError``/``ValueError`` when the manifest is missing or
    unreadable (a folder without one is incomplete, not changed)."""

    def __init__(self, folder: str | Path, manifest: dict | None = None):
        self.folder = Path(folder)
        if manifest is None:
            manifest = json.loads((self.folder / MANIFEST).read_text())
        if not isinstance(manifest, dict):
            raise ValueError(f"{self.folder / MANIFEST} is not a JSON object")
        self.manifest = manifest
        try:
            self.digests = dict(zip(manifest["files"], manifest["sha256"], strict=True))
        except (KeyError, TypeError) as exc:
            raise ValueError(f"{self.folder / MANIFEST} lists no sha256 per file") from exc
        self.full = full_check()
        try:
            keys = json.loads((self.folder / CHECKED).read_text())
            self.keys = keys if isinstance(keys, dict) and not self.full else {}
        except (OSError, ValueError):
            self.keys = {}
        self._dirty = False

    def files(self) -> dict[str, str]:
        """sample id -> file name, from the manifest."""
        return dict(zip(self.manifest["ids"], self.manifest["files"], strict=True))

    def read(self, name: str) -> bytes:
        """The bytes of ``name`` once checked; raises :class:`OutputChanged`."""
        data = self._check(name, want_bytes=True)
        assert data is not None
        return data

    def check(self, name: str) -> Path:
        """The path of ``name`` once checked (for a link or a copy); raises
        :class:`OutputChanged`."""
        self._check(name, want_bytes=False)
        return self.folder / name

    def problems(self) -> list[OutputChanged]:
        """Every file of the manifest that fails its check (none: the folder is intact)."""
        bad = []
        for name in self.digests:
            try:
                self._check(name, want_bytes=False)
            except OutputChanged as exc:
                bad.append(exc)
        return bad

    def _check(self, name: str, want_bytes: bool) -> bytes | None:
        path = self.folder / name
        digest = self.digests.get(name)
        if digest is None:
            raise OutputChanged(path, "is not listed in its folder's manifest")
        try:
            with open(path, "rb") as f:
                key = stat_key(os.fstat(f.fileno()))
                if not self.full and self.keys.get(name) == key:
                    return f.read() if want_bytes else None
                data = f.read()
        except FileNotFoundError:
            raise OutputChanged(path, "is missing (listed in its folder's manifest)") from None
        except OSError as exc:
            raise OutputChanged(path, f"cannot be read ({exc.strerror or exc})") from exc
        if hashlib.sha256(data).hexdigest() != digest:
            raise OutputChanged(path, "changed since it was written (sha256 mismatch)")
        if not self.full and time.time_ns() - key[2] > SETTLE_NS:  # ctime: last change
            self.keys[name] = key
            self._dirty = True
        return data if want_bytes else None

    def save_keys(self) -> None:
        """Write the stat keys of files checked by hash in this object's life (once, at the
        end of a pass over the folder; never in ``full`` mode). Only ``evalkit run`` calls
        it: the readers (report, review server, dashboard images) use the keys and write
        nothing."""
        if self._dirty:
            _save(self.folder, {k: v for k, v in self.keys.items() if k in self.digests})
            self._dirty = False
