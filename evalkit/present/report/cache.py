"""Reuse of the report's drawn files between renders, keyed by the content they show.

``render_report`` renders into a new folder each time and swaps it into place. Files that
cost time to make (plots, the PNG-encoded grid inputs and targets) are entered in
``report/.evalkit-cache.json`` under a **key**: a sha256 of everything the file shows (the
data drawn, layout parameters) plus :func:`code_version` (evalkit's version, the report
code and templates, matplotlib's version, :data:`VERSION`). The next render asks
:meth:`ReportCache.get` for a key first: when the previous report has it (and its files
still have the recorded sha256), their bytes are written into the new folder and nothing is
drawn; otherwise the caller draws and :meth:`ReportCache.put` records the files. Entries
not used by a render are not carried into its index, and their files go with the old folder
(stale files never pile up). Reused files are byte-identical to drawn ones, so a report
rendered incrementally is the same, file for file, as one rendered from scratch.

``hits`` / ``misses`` count the lookups of one render (tests and benchmarks read them).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

#: Bump when a cached file would look different for the same key and code.
VERSION = 1
#: The index file in the report folder.
INDEX = ".evalkit-cache.json"
#: Result columns that are bookkeeping, not content: left out of data keys.
_VOLATILE = ("run_id", "completed_at")


@cache
def code_version() -> str:
    """Digest of the code that makes the report's files: evalkit's version and every
    source file and template of the package (the data loaders shape the grid inputs, not
    only the report code), matplotlib's and Pillow's versions and :data:`VERSION`; part of
    every key."""
    from importlib.metadata import PackageNotFoundError, version

    import evalkit

    h = hashlib.sha256(f"{evalkit.__version__}|{VERSION}".encode())
    for dist in ("matplotlib", "pillow"):
        try:
            h.update(f"|{dist} {version(dist)}".encode())
        except PackageNotFoundError:
            h.update(f"|{dist} ?".encode())
    root = Path(evalkit.__file__).parent
    for p in sorted(root.rglob("*")):
        if p.suffix in (".py", ".html", ".css", ".js") and p.is_file():
            h.update(p.relative_to(root).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def _listing(folder: Path) -> dict[str, tuple[int, int]]:
    """name -> (size, mtime_ns) of the files directly in ``folder``."""
    try:
        return {e.name: (e.stat().st_size, e.stat().st_mtime_ns)
                for e in os.scandir(folder) if e.is_file()}
    except OSError:
        return {}


def _part(x: Any) -> str:
    if isinstance(x, pd.DataFrame):
        return x.drop(columns=[c for c in _VOLATILE if c in x.columns]).to_csv(index=False)
    return json.dumps(x, sort_keys=True, default=str)


def key(kind: str, *parts: Any) -> str:
    """The key of a file (or group of files) of ``kind`` showing ``parts`` (DataFrames
    are hashed by their CSV text without bookkeeping columns, other parts as JSON)."""
    h = hashlib.sha256(f"{kind}|{code_version()}".encode())
    for p in parts:
        h.update(b"\0")
        h.update(_part(p).encode())
    return h.hexdigest()


class ReportCache:
    """The previous report's index (``old``: its folder, may be missing) and the index of
    the report being rendered into ``new``.

    An entry is ``{"dir": folder relative to the report root, "files": {name: sha256},
    "value": JSON}``: the value is what the caller returns alongside the files (e.g. a
    plot list for the page)."""

    def __init__(self, old: Path | None, new: Path) -> None:
        self.old, self.new = old, Path(new)
        self.entries: dict[str, dict] = {}
        self.hits = self.misses = 0
        self._prev: dict[str, dict] = {}
        if old is not None:
            try:
                prev = json.loads((Path(old) / INDEX).read_text(encoding="utf-8"))
                if isinstance(prev, dict) and prev.get("version") == VERSION:
                    self._prev = dict(prev.get("entries") or {})
            except (OSError, ValueError):
                self._prev = {}

    def _rel(self, folder: Path) -> str:
        return Path(folder).resolve().relative_to(self.new.resolve()).as_posix()

    def get(self, k: str, folder: Path) -> Any | None:
        """Write the files cached under key ``k`` into ``folder`` (under the new report)
        and return their value; ``None`` (nothing written) when the previous report does
        not have them intact."""
        e = self._prev.get(k)
        if e is None or self.old is None:
            self.misses += 1
            return None
        datas = {}
        try:
            for name, sha in e["files"].items():
                data = (Path(self.old) / e["dir"] / name).read_bytes()
                if hashlib.sha256(data).hexdigest() != sha:
                    raise ValueError(name)
                datas[name] = data
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            self.misses += 1
            return None
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        for name, data in datas.items():
            dest = folder / name
            dest.unlink(missing_ok=True)
            try:  # a link: no second copy of the bytes (the old folder goes away)
                os.link(Path(self.old) / e["dir"] / name, dest)
            except OSError:
                dest.write_bytes(data)
        self.entries[k] = {"dir": self._rel(folder), "files": e["files"],
                           "value": e.get("value")}
        self.hits += 1
        return e.get("value")

    def put(self, k: str, folder: Path, names: list[str], value: Any) -> None:
        """Record the files ``names`` just written in ``folder`` under key ``k``, with
        ``value`` (JSON, not None) for :meth:`get` to return; a value that JSON would not
        give back unchanged is not cached (the next render draws again)."""
        try:
            if value is None or json.loads(json.dumps(value)) != value:
                return
        except (TypeError, ValueError):
            return
        folder = Path(folder)
        files = {n: hashlib.sha256((folder / n).read_bytes()).hexdigest() for n in names}
        self.entries[k] = {"dir": self._rel(folder), "files": files, "value": value}

    def call(self, k: str, folder: Path, make: Callable[[], Any]) -> Any:
        """``make()``'s value, drawn only when :meth:`get` has nothing under ``k``; the
        files it writes into ``folder`` (those new or changed there) are recorded. A call
        that wrote no file is not recorded (it drew nothing: it is called again next
        time)."""
        got = self.get(k, folder)
        if got is not None:
            return got
        folder = Path(folder)
        before = _listing(folder)
        value = make()
        after = _listing(folder)
        names = sorted(n for n, st in after.items() if before.get(n) != st)
        if names:
            self.put(k, folder, names, value)
        return value

    def save(self) -> None:
        """Write the new report's index (sorted: the same report gives the same bytes)."""
        text = json.dumps({"version": VERSION, "entries": self.entries}, sort_keys=True,
                          indent=0)
        (self.new / INDEX).write_text(text, encoding="utf-8")


# -- the folder tree: recycled between renders -------------------------------------------
# Each render writes a new folder and drops the old one. Removing a directory costs about
# 3 ms on ext4 mounted with ``discard`` (these machines), and a report of 8 domains x 24
# checkpoints has ~450 of them: 1.5 s per render. Unlinking files and renaming a folder
# cost next to nothing, so the old report's tree is kept, emptied of files, beside the
# report (``.<report>.dirs``) and becomes the next render's folder.


def dirs_folder(final: Path) -> Path:
    """Where the previous report's emptied folder tree waits: ``.<name>.dirs`` beside
    the report folder ``final``."""
    return final.with_name(f".{final.name}.dirs")


def begin(final: Path, tmp: Path) -> set[str]:
    """Create the render folder ``tmp`` (which must not exist): the recycled tree of
    :func:`dirs_folder` when there is one, else an empty folder. Returns the recycled
    folders (paths), for :func:`prune`."""
    kept = dirs_folder(final)
    try:
        if kept.is_symlink() or not kept.is_dir():  # only a real folder is taken
            raise FileNotFoundError(kept)
        os.rename(kept, tmp)
        recycled = set()
        for root, dirs, files in os.walk(tmp):  # only folders: nothing else is trusted
            for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
                os.unlink(os.path.join(root, name))
            if root != str(tmp):
                recycled.add(root)
        return recycled
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        return set()


def prune(recycled: set[str]) -> None:
    """Remove the recycled folders this render left empty (deepest first): the render's
    tree is then exactly the one a render from scratch makes."""
    for d in sorted(recycled, key=len, reverse=True):
        try:
            if not os.listdir(d):
                os.rmdir(d)
        except OSError:
            pass


def recycle(old: Path, final: Path) -> None:
    """Keep the replaced report ``old``'s folders, emptied of every file and link, as
    :func:`dirs_folder` for the next render; falls back to removing ``old``."""
    target = dirs_folder(final)
    try:
        if target.is_symlink() or target.is_file():
            target.unlink()
        shutil.rmtree(target, ignore_errors=True)
        for root, dirs, files in os.walk(old):
            for name in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
                os.unlink(os.path.join(root, name))
        os.rename(old, target)
    except OSError:
        shutil.rmtree(old, ignore_errors=True)
