"""Opening ``OUT/results.sqlite``: its schema, versions, and what is wrong with a file that
cannot be used (damaged, not an evalkit store, another schema version).

Split from :mod:`evalkit.store.results` (which reads and writes results) by job. Readers open the
file read-only (``mode=ro``; ``immutable=1`` for a WAL database in a folder nobody can write)
and never change it; the writer creates the schema and upgrades older stores in place
(columns are added, nothing is dropped). Errors are :class:`StoreError` (exit 2) whose
message says what the file is and what to do.
"""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from urllib.parse import quote

DB_NAME = "results.sqlite"
#: 2: checkpoints.domain, datasets.domain; 3: evaluations.signature and the history tables.
SCHEMA_VERSION = 3
SQLITE_MAGIC = b"SQLite format 3\x00"
REBUILD_HINT = ("move it aside and run `evalkit run` again \N{EM DASH} the outputs cache "
                "rebuilds it (`evalkit run --rebuild-store` does both)")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, started_at REAL, finished_at REAL, run_dir TEXT,
    argv TEXT, evalkit_version TEXT, tensorflow_version TEXT, torch_version TEXT,
    image_size INTEGER, options TEXT);
CREATE TABLE IF NOT EXISTS checkpoints (
    name TEXT PRIMARY KEY, step INTEGER, content_hash TEXT, path TEXT, status TEXT,
    error TEXT, architecture TEXT, updated_at REAL, domain TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS datasets (
    name TEXT PRIMARY KEY, kind TEXT, content_hash TEXT, n INTEGER, root TEXT,
    skipped TEXT, meta TEXT, updated_at REAL, domain TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS samples (
    dataset TEXT, idx INTEGER, sample_id TEXT, has_target INTEGER,
    PRIMARY KEY (dataset, idx));
CREATE TABLE IF NOT EXISTS evaluations (
    checkpoint TEXT, dataset TEXT, checkpoint_hash TEXT, dataset_hash TEXT, run_id INTEGER,
    outputs_dir TEXT, completed_at REAL, signature TEXT, PRIMARY KEY (checkpoint, dataset));
CREATE TABLE IF NOT EXISTS metrics (
    checkpoint TEXT, dataset TEXT, metric TEXT, value REAL, std REAL, ci_low REAL,
    ci_high REAL, n INTEGER, status TEXT, reason TEXT, flags TEXT,
    PRIMARY KEY (checkpoint, dataset, metric));
CREATE TABLE IF NOT EXISTS sample_metrics (
    checkpoint TEXT, dataset TEXT, sample_id TEXT, metric TEXT, value REAL,
    PRIMARY KEY (checkpoint, dataset, sample_id, metric));
CREATE TABLE IF NOT EXISTS evaluation_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT, checkpoint TEXT, dataset TEXT,
    checkpoint_hash TEXT, dataset_hash TEXT, run_id INTEGER, outputs_dir TEXT,
    completed_at REAL, signature TEXT, superseded_at REAL, why TEXT);
CREATE TABLE IF NOT EXISTS metric_history (
    history_id INTEGER, metric TEXT, value REAL, std REAL, ci_low REAL, ci_high REAL,
    n INTEGER, status TEXT, reason TEXT, flags TEXT, PRIMARY KEY (history_id, metric));
"""
class ResultsError(FileNotFoundError):
    """No results where results were expected (message says where and what to run)."""


class StoreError(ResultsError):
    """``results.sqlite`` exists but cannot be used: damaged, not an evalkit store, or of
    another schema version (exit 2; the message says what it is and what to do)."""


class StoreDamaged(StoreError):
    """``results.sqlite`` is not a readable SQLite database (truncated, overwritten)."""


def damaged(path: Path, detail: str) -> StoreDamaged:
    return StoreDamaged(f"{path} is damaged ({detail}); {REBUILD_HINT}")


def move_aside(path: str | Path) -> Path:
    """Rename a results database (and its -wal/-shm/-journal files) to
    ``results.sqlite.damaged-<UTC time>``; returns the new path of the database."""
    path = Path(path)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    dest = path.with_name(f"{path.name}.damaged-{stamp}")
    for suffix in ("", "-wal", "-shm", "-journal"):
        src = Path(str(path) + suffix)
        if src.exists():
            os.replace(src, Path(str(dest) + suffix))
    return dest


def columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {r[1] for r in conn.execute(f"PRAGMA table_info({table})")}



def check_header(path: Path, readonly: bool) -> None:
    """Tell garbage from an empty file before SQLite sees it (a 0-byte file is an empty
    SQLite database: the writer initializes it, a reader says it holds nothing)."""
    try:
        with open(path, "rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreError(f"{path} cannot be read ({exc})") from None
    if not head:
        if readonly:
            raise StoreError(f"{path} is empty (0 bytes), not an evalkit store: no "
                             "results yet; run `evalkit run` into this folder")
        return
    if head != SQLITE_MAGIC:
        raise damaged(path, f"not an SQLite database: it starts with {head[:8]!r}")


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A read-only connection that writes nothing beside the file."""
    uri = f"file:{quote(str(path.resolve()))}?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=30)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return conn
    except sqlite3.DatabaseError as exc:
        conn.close()
        if not (isinstance(exc, sqlite3.OperationalError)
                and ("unable to open" in str(exc) or "readonly" in str(exc))):
            raise damaged(path, str(exc)) from None
    # A WAL database in a folder we cannot write to (SQLite cannot create its -shm
    # file): nobody can be writing it either, so it can be read as immutable.
    return sqlite3.connect(uri + "&immutable=1", uri=True, timeout=30)


def schema_version(conn: sqlite3.Connection, path: Path) -> int | None:
    """The store's schema version (None: an empty database). Raises StoreDamaged when
    SQLite's quick_check fails, StoreError for another kind of database or a newer
    schema."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    check = conn.execute("PRAGMA quick_check").fetchone()
    if check is None or check[0] != "ok":
        raise damaged(path, f"integrity check: {check[0] if check else 'no answer'}")
    if tables and "meta" not in tables:
        others = ", ".join(sorted(t for t in tables if not t.startswith("sqlite_")))
        raise StoreError(f"{path} is not an evalkit store: an SQLite database with "
                         f"other tables ({others}); use another --out folder")
    if "meta" not in tables:
        return None
    row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    if row is None:
        raise StoreError(f"{path} is not an evalkit store: its meta table has no "
                         "schema_version; use another --out folder")
    try:
        version = int(row[0])
    except (TypeError, ValueError):
        raise StoreError(f"{path} is not an evalkit store: schema_version {row[0]!r}; "
                         "use another --out folder") from None
    if version > SCHEMA_VERSION:
        raise StoreError(f"{path} was written by a newer evalkit (store schema {version}; "
                         f"this evalkit reads up to {SCHEMA_VERSION}): upgrade evalkit to "
                         "read it")
    return version


def check_readable(version: int | None, path: Path) -> None:
    """Readers read only the current schema (they never upgrade a file)."""
    if version is None:
        raise StoreError(f"{path} is not an evalkit store: an empty SQLite database (no "
                         "tables); run `evalkit run` into this folder")
    if version < SCHEMA_VERSION:
        raise StoreError(f"{path} was written by an older evalkit (store schema {version}; "
                         f"this one reads {SCHEMA_VERSION}): `evalkit run` upgrades it in place")


def create_or_upgrade(conn: sqlite3.Connection) -> None:
    """Create the tables, bring an older store up to :data:`SCHEMA_VERSION` and record it
    (inside the caller's transaction)."""
    conn.executescript("BEGIN;" + SCHEMA)
    for table in ("checkpoints", "datasets"):
        if "domain" not in columns(conn, table):
            conn.execute(f"ALTER TABLE {table} ADD COLUMN domain TEXT NOT NULL DEFAULT ''")
    if "signature" not in columns(conn, "evaluations"):
        conn.execute("ALTER TABLE evaluations ADD COLUMN signature TEXT")
    conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                 (str(SCHEMA_VERSION),))
