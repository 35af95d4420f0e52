"""What an unchanged ``evalkit run`` re-prints, remembered by content (no pandas import).

The results table and the report's up-to-date check are pure functions of the store's rows
(and a few files); computing them reads the store through pandas, whose import alone is
~0.4 s of CPU, most of an unchanged run. Here each answer is kept in ``OUT`` with a key
over everything it is computed from (:func:`evalkit.store.digest.store_digest` plus the
files and code); when the key still matches, the kept answer is returned and pandas is not
imported. Any change of a row, a file or the code changes the key and recomputes.

* ``OUT/.evalkit-table.json``: the final table's text.
* ``OUT/report/.evalkit-quick``: that ``OUT/report`` was up to date (or rendered) for this
  key, with the report stamp it had then; ``evalkit report`` (which drops the stamp) and a
  re-render (which replaces the folder) invalidate it.

The report key covers what :func:`evalkit.present.report.stamp.fingerprint` reads (the
store, ``selection.json``, the ranking config of the recorded run folders, the report
code), a superset of it; ``tests/test_quiet_and_lazy.py`` pins that function's source so
that a change to what it reads is a test failure until this key follows.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import evalkit
from evalkit.store.digest import run_dirs, store_digest

TABLE_MEMO = ".evalkit-table.json"
REPORT_MEMO = ".evalkit-quick"


def _write(path: Path, data: dict) -> None:
    """Best effort (a read-only OUT just recomputes next time)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)
    except OSError:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _sources(*modules: str) -> bytes:
    """The source bytes of these evalkit modules (dotted names under ``evalkit``)."""
    root = Path(evalkit.__file__).parent
    out = b""
    for name in modules:
        p = root.joinpath(*name.split(".")[1:]).with_suffix(".py")
        out += p.read_bytes() if p.is_file() else b""
    return out


#: The tables the final table is made from (:func:`evalkit.commands.results.checkpoint_table`:
#: ``Store.results()`` and ``Store.checkpoints()``); not ``runs``, so that a new command line
#: does not recompute it.
TABLE_SOURCES = ("checkpoints", "datasets", "evaluations", "metrics")


def table_key(out: Path) -> str | None:
    """Key of the final table: the rows it is made from, the evalkit version and the table
    code (the table's module, ``run``'s printing of it, the escaping of names)."""
    digest = store_digest(out, TABLE_SOURCES)
    if digest is None:
        return None
    h = hashlib.sha256(evalkit.__version__.encode())
    h.update(_sources("evalkit.commands.results", "evalkit.commands.run", "evalkit.core.names"))
    h.update(digest.encode())
    return h.hexdigest()


def remember_table(out: Path, compute: Callable[[], str]) -> str:
    """The final table's text: kept in ``OUT/.evalkit-table.json`` under :func:`table_key`,
    computed (``compute()``) and kept when the key differs."""
    key = table_key(out)
    memo = out / TABLE_MEMO
    if key is not None and _read(memo).get("key") == key:
        return str(_read(memo).get("text", ""))
    text = compute()
    if key is not None:
        _write(memo, {"key": key, "text": text})
    return text


def report_key(out: Path, config_path: Path | None = None) -> str | None:
    """Key of the report check: the store's rows, ``selection.json`` (and the
    ``selection.previous.json`` it replaced), the evalkit.toml found for every recorded run
    folder (or ``config_path``, when the caller renders with that one), and the report
    code."""
    from evalkit.core.config import find_config
    from evalkit.present.report.stamp import _code_digest

    digest = store_digest(out)
    if digest is None:
        return None
    h = hashlib.sha256(_code_digest().encode())
    h.update(digest.encode())
    for sel in (out / "selection.json", out / "selection.previous.json"):
        h.update(sel.read_bytes() if sel.is_file() else b"-")
    if config_path is not None:
        h.update(f"\0config\0{config_path}\0".encode())
        if Path(config_path).is_file():
            h.update(Path(config_path).read_bytes())
    for run_dir in run_dirs(out):
        cfg = find_config(Path(run_dir)) if Path(run_dir).is_dir() else None
        h.update(f"\0{run_dir}\0{cfg}\0".encode())
        if cfg is not None and Path(cfg).is_file():
            h.update(Path(cfg).read_bytes())
    return h.hexdigest()


def _stamp_text(out: Path) -> str | None:
    from evalkit.present.report.stamp import STAMP

    try:
        return (out / "report" / STAMP).read_text()
    except OSError:
        return None


def report_if_stale(out: Path, render_if_stale: Callable[..., tuple[Path, bool]],
                    config_path: Path | None = None) -> tuple[Path, bool]:
    """``render_if_stale(out)`` (:mod:`evalkit.present.report.stamp`) unless the report was
    found up to date (or rendered) for the same :func:`report_key` and still carries the
    stamp it had then; returns ``(index.html, rendered)``."""
    index = out / "report" / "index.html"
    memo = _read(out / "report" / REPORT_MEMO)
    key = report_key(out, config_path)
    stamp = _stamp_text(out)
    if key is not None and memo.get("key") == key and stamp is not None \
            and memo.get("stamp") == stamp and index.is_file():
        return index, False
    path, rendered = render_if_stale(out, config_path)
    key, stamp = report_key(out, config_path), _stamp_text(out)
    if key is not None and stamp is not None:
        _write(out / "report" / REPORT_MEMO, {"key": key, "stamp": stamp})
    return path, rendered
