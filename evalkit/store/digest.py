"""A content digest of ``OUT/results.sqlite`` read with :mod:`sqlite3` alone (no pandas).

An unchanged ``evalkit run`` re-prints the results table and re-checks the report stamp;
both are pure functions of the store's rows. :func:`store_digest` lets the caller memoize
them: when the digest equals the one recorded after the last computation, the stored
answer is still right, and the run never imports pandas (about 0.4 s of CPU, most of an
unchanged run's cost).

The digest covers every row of every table except what each run rewrites without changing
the content: the ``updated_at`` columns (touched for every checkpoint and dataset on every
run), the ``runs`` table's ids and times and the ``meta`` table's run ids (one row each per
run) and SQLite's own tables; the run settings themselves (folder, command line, versions,
options, metric signatures) count, once per distinct value.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Collection
from pathlib import Path

#: Columns rewritten by every run without a change of content.
_VOLATILE = {"updated_at"}
#: ``runs`` columns that change on every run (the rest are its settings).
_RUN_VOLATILE = {"id", "started_at", "finished_at"}
_META = ("SELECT DISTINCT CASE WHEN key LIKE 'signature:%' THEN 'signature' ELSE key END AS k, "
         "value FROM meta ORDER BY k, value")


def store_digest(out: str | Path, tables: Collection[str] | None = None) -> str | None:
    """sha256 (hex) of the rows of ``OUT/results.sqlite`` (of these ``tables`` only, when
    given), or None when there is no readable store (the caller then computes the slow way,
    which reports the problem)."""
    path = Path(out) / "results.sqlite"
    if not path.is_file():
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    h = hashlib.sha256()
    wanted = None if tables is None else set(tables)
    try:
        tables = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name")]
        for table in tables:
            if wanted is not None and table not in wanted:
                continue
            if table == "meta":  # one signature:<run id> row per run: each distinct value once
                h.update(b"\0meta\0")
                for row in conn.execute(_META):
                    h.update(repr(row).encode())
                continue
            cols = [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]
            skip = _VOLATILE | (_RUN_VOLATILE if table == "runs" else set())
            keep = [c for c in cols if c not in skip]
            if not keep:
                continue
            sel = ", ".join(f'"{c}"' for c in keep)
            distinct = "DISTINCT " if table == "runs" else ""
            h.update(f"\0{table}\0{sel}\0".encode())
            for row in conn.execute(f'SELECT {distinct}{sel} FROM "{table}" ORDER BY {sel}'):
                h.update(repr(row).encode())
                h.update(b"\n")
    except sqlite3.Error:
        return None
    finally:
        conn.close()
    return h.hexdigest()


def run_dirs(out: str | Path) -> list[str]:
    """The distinct run folders recorded in ``OUT/results.sqlite`` (sorted; [] when none
    or unreadable)."""
    path = Path(out) / "results.sqlite"
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            rows = conn.execute("SELECT DISTINCT run_dir FROM runs WHERE run_dir IS NOT NULL "
                                "ORDER BY run_dir").fetchall()
        finally:
            conn.close()
    except sqlite3.Error:
        return []
    return [r[0] for r in rows]
