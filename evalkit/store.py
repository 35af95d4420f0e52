"""Results in SQLite (``OUT/results.sqlite``), read back as pandas.

Tables:

* ``runs``: one row per ``evalkit run`` invocation with provenance (evalkit, TensorFlow and
  torch versions, image size, run folder, command line, start/finish time).
* ``checkpoints``: name, step, content hash, status (``ok``/``failed``), error, architecture.
* ``datasets``: name, kind, content hash, n, root, skipped files, meta.
* ``samples``: the sample ids of each dataset, in order.
* ``evaluations``: one row per (checkpoint, dataset) fully evaluated, with the hashes it
  was computed from and the run that computed it.
* ``metrics``: aggregate values (value, std, CI, n, status, reason, flags) per
  (checkpoint, dataset, metric).
* ``sample_metrics``: per-sample values.

Each (checkpoint, dataset) is written in ONE transaction that first deletes what was there:
a run killed at any point leaves either the whole evaluation or none of it, and a re-run
never counts anything twice (primary keys enforce it too).
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path

import pandas as pd

DB_NAME = "results.sqlite"
SCHEMA_VERSION = 2  # 2: checkpoints.domain, datasets.domain

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
    outputs_dir TEXT, completed_at REAL, PRIMARY KEY (checkpoint, dataset));
CREATE TABLE IF NOT EXISTS metrics (
    checkpoint TEXT, dataset TEXT, metric TEXT, value REAL, std REAL, ci_low REAL,
    ci_high REAL, n INTEGER, status TEXT, reason TEXT, flags TEXT,
    PRIMARY KEY (checkpoint, dataset, metric));
CREATE TABLE IF NOT EXISTS sample_metrics (
    checkpoint TEXT, dataset TEXT, sample_id TEXT, metric TEXT, value REAL,
    PRIMARY KEY (checkpoint, dataset, sample_id, metric));
"""

#: Columns of :func:`load_results`, in order.
RESULT_COLUMNS = ["checkpoint", "step", "domain", "dataset", "kind", "metric", "value", "n", "std",
                  "ci_low", "ci_high", "status", "reason", "flags", "checkpoint_hash",
                  "dataset_hash"]


def _num(v: float | None) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


class ResultsError(FileNotFoundError):
    """No results where results were expected (message says where and what to run)."""


class Store:
    """A connection to one evaluation folder's results database."""

    def __init__(self, out_dir: str | Path, create: bool = True):
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / DB_NAME
        if not create and not self.path.exists():
            raise ResultsError(f"no results in {self.out_dir} ({DB_NAME} not found): run "
                               f"'evalkit run RUN_DIR --out {self.out_dir}' first")
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.conn = sqlite3.connect(self.path, timeout=30)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        self.conn.executescript(SCHEMA)
        with self.conn:
            self.conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                              (str(SCHEMA_VERSION),))

    def close(self) -> None:
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- runs -------------------------------------------------------------------------
    def start_run(self, run_dir: str, argv: list[str], image_size: int, options: dict) -> int:
        import evalkit

        versions = _library_versions()
        with self.conn:
            cur = self.conn.execute(
                "INSERT INTO runs (started_at, run_dir, argv, evalkit_version, "
                "tensorflow_version, torch_version, image_size, options) VALUES (?,?,?,?,?,?,?,?)",
                (time.time(), run_dir, json.dumps(argv), evalkit.__version__,
                 versions.get("tensorflow"), versions.get("torch"), image_size,
                 json.dumps(options, default=str)))
        return int(cur.lastrowid)

    def finish_run(self, run_id: int) -> None:
        with self.conn:
            self.conn.execute("UPDATE runs SET finished_at=? WHERE id=?", (time.time(), run_id))

    # -- checkpoints and datasets ---------------------------------------------------------
    def put_checkpoint(self, name: str, step: int, content_hash: str | None, path: str,
                       status: str, error: str | None = None,
                       architecture: str | None = None, domain: str = "") -> None:
        with self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO checkpoints VALUES (?,?,?,?,?,?,?,?,?)",
                (name, step, content_hash, path, status, error, architecture, time.time(),
                 domain))

    def note_discovered(self, name: str, step: int, path: str, domain: str = "") -> None:
        """Record a discovered checkpoint as ``pending`` unless it is on record already
        (the gate's default candidate is the newest *discovered* checkpoint)."""
        with self.conn:
            self.conn.execute(
                "INSERT OR IGNORE INTO checkpoints (name, step, path, status, updated_at, "
                "domain) VALUES (?,?,?,?,?,?)", (name, step, path, "pending", time.time(),
                                                 domain))

    def mark_checkpoint_failed(self, name: str, step: int, content_hash: str | None,
                               path: str, reason: str, domain: str = "") -> None:
        """Record a failed checkpoint and drop its evaluations, in one transaction (results
        of earlier content must not stand beside a failure of the current content)."""
        with self.conn:
            self._delete_evaluations(checkpoint=name)
            self.conn.execute(
                "INSERT OR REPLACE INTO checkpoints VALUES (?,?,?,?,?,?,?,?,?)",
                (name, step, content_hash, path, "failed", reason, None, time.time(), domain))

    def checkpoint_status(self, name: str) -> str | None:
        row = self.conn.execute("SELECT status FROM checkpoints WHERE name=?",
                                (name,)).fetchone()
        return None if row is None else row[0]

    def set_run_signature(self, run_id: int, signature: str) -> None:
        """The metric settings a run used (the engine recomputes when they change)."""
        with self.conn:
            self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                              (f"signature:{run_id}", signature))

    def run_signature(self, run_id: int) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?",
                                (f"signature:{run_id}",)).fetchone()
        return None if row is None else row[0]

    def put_dataset(self, ds) -> None:
        """Record a dataset; if its content changed, its old evaluations are dropped."""
        with self.conn:
            row = self.conn.execute("SELECT content_hash FROM datasets WHERE name=?",
                                    (ds.name,)).fetchone()
            if row and row[0] != ds.content_hash:
                self._delete_evaluations(dataset=ds.name)
            self.conn.execute(
                "INSERT OR REPLACE INTO datasets VALUES (?,?,?,?,?,?,?,?,?)",
                (ds.name, ds.kind, ds.content_hash, len(ds), str(ds.root),
                 json.dumps([s.__dict__ for s in ds.skipped]),
                 json.dumps(ds.meta, default=str), time.time(), ds.domain))
            self.conn.execute("DELETE FROM samples WHERE dataset=?", (ds.name,))
            self.conn.executemany(
                "INSERT INTO samples VALUES (?,?,?,?)",
                [(ds.name, i, sid, int(h)) for i, (sid, h) in
                 enumerate(zip(ds.ids, ds.has_targets, strict=True))])

    def _delete_evaluations(self, checkpoint: str | None = None,
                            dataset: str | None = None) -> None:
        where, args = [], []
        if checkpoint is not None:
            where.append("checkpoint=?")
            args.append(checkpoint)
        if dataset is not None:
            where.append("dataset=?")
            args.append(dataset)
        clause = " AND ".join(where)
        for table in ("evaluations", "metrics", "sample_metrics"):
            self.conn.execute(f"DELETE FROM {table} WHERE {clause}", args)

    # -- evaluations -------------------------------------------------------------------
    def evaluation(self, checkpoint: str, dataset: str) -> dict | None:
        """The stored evaluation of a (checkpoint, dataset), with its metric statuses."""
        row = self.conn.execute(
            "SELECT checkpoint_hash, dataset_hash, run_id, outputs_dir FROM evaluations "
            "WHERE checkpoint=? AND dataset=?", (checkpoint, dataset)).fetchone()
        if row is None:
            return None
        statuses = dict(self.conn.execute(
            "SELECT metric, status FROM metrics WHERE checkpoint=? AND dataset=?",
            (checkpoint, dataset)).fetchall())
        return {"checkpoint_hash": row[0], "dataset_hash": row[1], "run_id": row[2],
                "outputs_dir": row[3], "metrics": statuses}

    def put_evaluation(self, checkpoint: str, dataset: str, checkpoint_hash: str,
                       dataset_hash: str, run_id: int, outputs_dir: str,
                       values: Iterable, sample_ids: list[str]) -> None:
        """Write one (checkpoint, dataset) evaluation atomically, replacing any old one."""
        values = list(values)
        with self.conn:
            self._delete_evaluations(checkpoint, dataset)
            self.conn.execute("INSERT INTO evaluations VALUES (?,?,?,?,?,?,?)",
                              (checkpoint, dataset, checkpoint_hash, dataset_hash, run_id,
                               outputs_dir, time.time()))
            self.conn.executemany(
                "INSERT INTO metrics VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                [(checkpoint, dataset, v.metric, _num(v.value), _num(v.std), _num(v.ci_low),
                  _num(v.ci_high), int(v.n), v.status, v.reason,
                  json.dumps(v.flags, default=str, sort_keys=True)) for v in values])
            rows = []
            for v in values:
                if v.per_sample is None:
                    continue
                for sid, x in zip(sample_ids, v.per_sample, strict=True):
                    if x is not None and math.isfinite(float(x)):
                        rows.append((checkpoint, dataset, sid, v.metric, float(x)))
            self.conn.executemany("INSERT INTO sample_metrics VALUES (?,?,?,?,?)", rows)

    def retryable_skip_reasons(self, checkpoint: str | None = None,
                               dataset: str | None = None) -> list[str]:
        """Distinct reasons of metrics skipped for something that may go away (flag
        ``retryable``, e.g. missing weights), optionally for one checkpoint and dataset."""
        where, args = ["status='skipped'", "json_extract(flags, '$.retryable') = 1"], []
        for column, value in (("checkpoint", checkpoint), ("dataset", dataset)):
            if value is not None:
                where.append(f"{column}=?")
                args.append(value)
        rows = self.conn.execute(
            f"SELECT DISTINCT reason FROM metrics WHERE {' AND '.join(where)}", args).fetchall()
        return [r[0] or "" for r in rows]

    # -- reading -----------------------------------------------------------------------
    def results(self) -> pd.DataFrame:
        df = pd.read_sql_query(
            "SELECT m.checkpoint, c.step, COALESCE(d.domain, c.domain, '') AS domain, m.dataset, "
            "d.kind, m.metric, m.value, m.n, m.std, "
            "m.ci_low, m.ci_high, m.status, m.reason, m.flags, e.checkpoint_hash, "
            "e.dataset_hash FROM metrics m "
            "JOIN evaluations e ON e.checkpoint=m.checkpoint AND e.dataset=m.dataset "
            "LEFT JOIN checkpoints c ON c.name=m.checkpoint "
            "LEFT JOIN datasets d ON d.name=m.dataset "
            "ORDER BY c.step, m.checkpoint, m.dataset, m.metric", self.conn)
        return df[RESULT_COLUMNS]

    def checkpoints(self) -> pd.DataFrame:
        return pd.read_sql_query("SELECT * FROM checkpoints ORDER BY step, name", self.conn)

    def datasets(self) -> pd.DataFrame:
        return pd.read_sql_query("SELECT * FROM datasets ORDER BY name", self.conn)

    def sample_metrics(self) -> pd.DataFrame:
        return pd.read_sql_query(
            "SELECT sm.*, s.idx FROM sample_metrics sm LEFT JOIN samples s "
            "ON s.dataset=sm.dataset AND s.sample_id=sm.sample_id "
            "ORDER BY sm.checkpoint, sm.dataset, s.idx, sm.metric", self.conn)

    def evaluations(self) -> pd.DataFrame:
        return pd.read_sql_query("SELECT * FROM evaluations", self.conn)

    def runs(self) -> pd.DataFrame:
        return pd.read_sql_query("SELECT * FROM runs ORDER BY id", self.conn)


def _library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist, key in (("tensorflow-cpu", "tensorflow"), ("tensorflow", "tensorflow"),
                      ("torch", "torch"), ("torchmetrics", "torchmetrics")):
        if key in out:
            continue
        try:
            out[key] = version(dist)
        except PackageNotFoundError:
            pass
    return out


def load_results(out_dir: str | Path) -> pd.DataFrame:
    """Aggregate results of ``out_dir`` as a DataFrame with :data:`RESULT_COLUMNS`:
    one row per (checkpoint, dataset, metric)."""
    with closing(Store(out_dir, create=False)) as store:
        return store.results()
