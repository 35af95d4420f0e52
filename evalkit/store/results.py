"""Results in SQLite (``OUT/results.sqlite``), read back as pandas.

Tables:

* ``runs``: one row per ``evalkit run`` invocation with provenance (evalkit, TensorFlow and
  torch versions, image size, run folder, command line, start/finish time).
* ``checkpoints``: name, step, content hash, status (``ok``/``failed``), error, architecture.
* ``datasets``: name, kind, content hash, n, root, skipped files, meta.
* ``samples``: the sample ids of each dataset, in order.
* ``evaluations``: the CURRENT evaluation of each (checkpoint, dataset), with the hashes and
  metric settings (``signature``) it was computed from and the run that completed it.
* ``metrics``: aggregate values (value, std, CI, n, status, reason, flags) per
  (checkpoint, dataset, metric) of the current evaluations.
* ``sample_metrics``: per-sample values of the current evaluations.
* ``evaluation_history`` / ``metric_history``: evaluations that were superseded (the data,
  ``--limit``, the checkpoint's content or the metric settings changed, or the checkpoint
  now fails), with their aggregate values. Nothing is silently discarded:
  ``Store.results(history=True)`` / ``evalkit results --all`` show them.

An evaluation is keyed by (checkpoint hash, dataset content hash, metric settings). Each
(checkpoint, dataset) is written in ONE transaction that first moves a differently-keyed
current evaluation into history: a run killed at any point leaves either the whole
evaluation or none of it, and a re-run never counts anything twice (primary keys enforce it).

Read paths (``Store(out, create=False)``) open the file read-only and write nothing, so they
work on a read-only folder. A damaged file or one that is not an evalkit store raises
:class:`StoreError` (exit 2) saying what it is and what to do.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from evalkit.core.faults import DiskFull, is_disk_full
from evalkit.store import file as SF
from evalkit.store.file import (  # noqa: F401  (re-exported: callers import them from here)
    DB_NAME,
    SCHEMA,
    SCHEMA_VERSION,
    ResultsError,
    StoreDamaged,
    StoreError,
    move_aside,
)

if TYPE_CHECKING:
    import pandas as pd

_EVAL_COLS = ("checkpoint, dataset, checkpoint_hash, dataset_hash, run_id, outputs_dir, "
              "completed_at, signature")
_METRIC_COLS = "metric, value, std, ci_low, ci_high, n, status, reason, flags"

#: Columns of :func:`load_results`, in order.
RESULT_COLUMNS = ["checkpoint", "step", "domain", "dataset", "kind", "metric", "value", "n", "std",
                  "ci_low", "ci_high", "status", "reason", "flags", "checkpoint_hash",
                  "dataset_hash"]
#: Extra columns of ``Store.results(history=True)``.
HISTORY_COLUMNS = ["current", "run_id", "completed_at", "superseded_at", "why"]


def _num(v: float | None) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


class Store:
    """A connection to one evaluation folder's results database.

    Args:
        out_dir: the evaluation folder.
        create: True for the writer (``evalkit run``): creates the folder and the database,
            upgrades an older schema in place. False for readers: the file must exist and
            is opened read-only (nothing is written, a read-only folder works).

    Raises:
        ResultsError: reader and no database.
        StoreError: damaged, foreign, newer (or, for a reader, older) schema.
    """

    def __init__(self, out_dir: str | Path, create: bool = True):
        self.out_dir = Path(out_dir)
        self.path = self.out_dir / DB_NAME
        self.readonly = not create
        if self.readonly and not self.path.exists():
            raise ResultsError(f"no results in {self.out_dir} ({DB_NAME} not found): run "
                               f"'evalkit run RUN_DIR --out {self.out_dir}' first")
        SF.check_header(self.path, self.readonly)
        if self.readonly:
            self.conn = SF.connect_readonly(self.path)
        else:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            self.conn = sqlite3.connect(self.path, timeout=30)
        try:
            self._open()
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            if is_disk_full(exc):
                raise DiskFull(self.path, self._space_estimate()) from exc
            if not self.readonly and isinstance(exc, sqlite3.OperationalError) and (
                    "readonly" in str(exc) or "unable to open" in str(exc)):
                raise StoreError(f"cannot write {self.path} ({exc}): use an --out folder "
                                 "you can write to (reading works here)") from None
            raise SF.damaged(self.path, str(exc)) from None
        except BaseException:
            self.conn.close()
            raise

    def _open(self) -> None:
        version = SF.schema_version(self.conn, self.path)
        if self.readonly:
            SF.check_readable(version, self.path)
            return
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.execute("PRAGMA foreign_keys=ON")
        with self._write():
            SF.create_or_upgrade(self.conn)

    @contextmanager
    def _write(self) -> Iterator[None]:
        """One transaction; a full disk becomes :class:`DiskFull` (nothing half-written:
        SQLite rolls the transaction back)."""
        try:
            with self.conn:
                yield
        except sqlite3.OperationalError as exc:
            if is_disk_full(exc):
                raise DiskFull(self.path, self._space_estimate()) from exc
            raise

    def _space_estimate(self) -> int:
        """About what a write to the database may need: SQLite may rewrite every page of
        the file through its journal, so its current size (with the WAL) plus 1 MiB."""
        size = 0
        for suffix in ("", "-wal", "-journal"):
            try:
                size += os.path.getsize(str(self.path) + suffix)
            except OSError:
                pass
        return size + (1 << 20)

    def _query(self, sql: str, args: Iterable = ()) -> pd.DataFrame:
        import pandas as pd  # here: an unchanged run never reads a DataFrame

        try:
            return pd.read_sql_query(sql, self.conn, params=list(args))
        except (sqlite3.DatabaseError, pd.errors.DatabaseError) as exc:
            raise SF.damaged(self.path, str(exc).splitlines()[-1]) from None

    def close(self) -> None:
        if not self.readonly:
            # At rest the database is one file in rollback mode, so that readers can open it
            # in a read-only folder (a WAL database needs a writable -shm file beside it).
            try:
                self.conn.execute("PRAGMA journal_mode=DELETE")
            except sqlite3.DatabaseError:
                pass  # another connection is reading: it stays in WAL mode, still correct
        self.conn.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- runs -------------------------------------------------------------------------
    def start_run(self, run_dir: str, argv: list[str], image_size: int, options: dict) -> int:
        import evalkit

        versions = _library_versions()
        with self._write():
            cur = self.conn.execute(
                "INSERT INTO runs (started_at, run_dir, argv, evalkit_version, "
                "tensorflow_version, torch_version, image_size, options) VALUES (?,?,?,?,?,?,?,?)",
                (time.time(), run_dir, json.dumps(argv), evalkit.__version__,
                 versions.get("tensorflow"), versions.get("torch"), image_size,
                 json.dumps(options, default=str)))
        return int(cur.lastrowid)

    def finish_run(self, run_id: int) -> None:
        with self._write():
            self.conn.execute("UPDATE runs SET finished_at=? WHERE id=?", (time.time(), run_id))

    # -- checkpoints and datasets ---------------------------------------------------------
    def put_checkpoint(self, name: str, step: int, content_hash: str | None, path: str,
                       status: str, error: str | None = None,
                       architecture: str | None = None, domain: str = "") -> None:
        with self._write():
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
        """Record a failed checkpoint and move its evaluations into history, in one
        transaction (results of earlier content must not stand beside a failure of the
        current content)."""
        with self._write():
            self._archive(f"checkpoint failed: {reason}", checkpoint=name)
            self.conn.execute(
                "INSERT OR REPLACE INTO checkpoints VALUES (?,?,?,?,?,?,?,?,?)",
                (name, step, content_hash, path, "failed", reason, None, time.time(), domain))

    def checkpoint_status(self, name: str) -> str | None:
        row = self.conn.execute("SELECT status FROM checkpoints WHERE name=?",
                                (name,)).fetchone()
        return None if row is None else row[0]

    def set_run_signature(self, run_id: int, signature: str) -> None:
        """The metric settings a run used (the engine recomputes when they change)."""
        with self._write():
            self.conn.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                              (f"signature:{run_id}", signature))

    def run_signature(self, run_id: int) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?",
                                (f"signature:{run_id}",)).fetchone()
        return None if row is None else row[0]

    def put_dataset(self, ds) -> str | None:
        """Record a dataset. If its content changed (other files, another ``--limit``), its
        current evaluations move into history and a one-line note saying so is returned
        (None when nothing changed)."""
        note = None
        row = self.conn.execute("SELECT content_hash, n, kind, root, domain FROM datasets "
                                "WHERE name=?", (ds.name,)).fetchone()
        if row and tuple(row) == (ds.content_hash, len(ds), ds.kind, str(ds.root), ds.domain):
            return None  # unchanged: no write (a re-run should cost next to nothing)
        with self._write():
            if row and row[0] != ds.content_hash:
                moved = self._archive(f"dataset changed ({row[1]} -> {len(ds)} samples)",
                                      dataset=ds.name)
                if moved:
                    note = (f"data changed: dataset {ds.name} changed since the last run ({row[1]} -> "
                            f"{len(ds)} samples, content {str(row[0])[:12]} -> "
                            f"{ds.content_hash[:12]}): the new results become the current "
                            f"ones; the {moved} earlier evaluation(s) are kept as history "
                            "(evalkit results OUT --all)")
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
        return note

    @staticmethod
    def _where(checkpoint: str | None, dataset: str | None) -> tuple[str, list[str]]:
        where, args = [], []
        for column, value in (("checkpoint", checkpoint), ("dataset", dataset)):
            if value is not None:
                where.append(f"{column}=?")
                args.append(value)
        return " AND ".join(where) or "1", args

    def _archive(self, why: str, checkpoint: str | None = None, dataset: str | None = None,
                 keep: bool = False) -> int:
        """Copy the matching current evaluations (and their aggregate metrics) into history
        and, unless ``keep``, delete them from the current tables. Call inside a
        transaction. Returns how many evaluations were archived."""
        clause, args = self._where(checkpoint, dataset)
        rows = self.conn.execute(f"SELECT {_EVAL_COLS} FROM evaluations WHERE {clause}",
                                 args).fetchall()
        now = time.time()
        for row in rows:
            cur = self.conn.execute(
                f"INSERT INTO evaluation_history ({_EVAL_COLS}, superseded_at, why) "
                "VALUES (?,?,?,?,?,?,?,?,?,?)", (*row, now, why))
            self.conn.execute(
                f"INSERT INTO metric_history (history_id, {_METRIC_COLS}) "
                f"SELECT ?, {_METRIC_COLS} FROM metrics WHERE checkpoint=? AND dataset=?",
                (cur.lastrowid, row[0], row[1]))
        if not keep:
            for table in ("evaluations", "metrics", "sample_metrics"):
                self.conn.execute(f"DELETE FROM {table} WHERE {clause}", args)
        return len(rows)

    # -- evaluations -------------------------------------------------------------------
    def evaluation(self, checkpoint: str, dataset: str) -> dict | None:
        """The current evaluation of a (checkpoint, dataset): hashes, ``signature`` (the
        metric settings, falling back to its run's for stores written before schema 3),
        ``metrics`` (metric -> status) and ``skipped`` (metric -> flags of a metric
        skipped for a reason that may go away, e.g. missing weights)."""
        row = self.conn.execute(
            "SELECT checkpoint_hash, dataset_hash, run_id, outputs_dir, signature "
            "FROM evaluations WHERE checkpoint=? AND dataset=?",
            (checkpoint, dataset)).fetchone()
        if row is None:
            return None
        rows = self.conn.execute(
            "SELECT metric, status, flags FROM metrics WHERE checkpoint=? AND dataset=?",
            (checkpoint, dataset)).fetchall()
        retryable = {}
        for metric, status, flags in rows:
            try:
                f = json.loads(flags or "{}")
            except ValueError:
                f = {}
            if status == "skipped" and f.get("retryable"):
                retryable[metric] = f
        signature = row[4] if row[4] is not None else self.run_signature(row[2])
        return {"checkpoint_hash": row[0], "dataset_hash": row[1], "run_id": row[2],
                "outputs_dir": row[3], "signature": signature,
                "metrics": {m: s for m, s, _ in rows}, "retryable": retryable}

    def put_evaluation(self, checkpoint: str, dataset: str, checkpoint_hash: str,
                       dataset_hash: str, run_id: int, outputs_dir: str,
                       values: Iterable, sample_ids: list[str], signature: str | None = None,
                       only: Iterable[str] | None = None) -> None:
        """Write one (checkpoint, dataset) evaluation atomically.

        ``only=None``: ``values`` is the whole evaluation; a current one with another key
        (checkpoint hash, dataset hash, signature) moves into history first, one with the
        same key is replaced. ``only=[metrics]``: ``values`` replace just those metrics of
        the current evaluation (a retried or re-configured metric family); if the signature
        changed, the evaluation as it was is copied into history first.
        """
        values = list(values)
        now = time.time()
        with self._write():
            cur = self.conn.execute(
                "SELECT checkpoint_hash, dataset_hash, signature FROM evaluations "
                "WHERE checkpoint=? AND dataset=?", (checkpoint, dataset)).fetchone()
            same = cur is not None and tuple(cur) == (checkpoint_hash, dataset_hash, signature)
            if only is None or cur is None or tuple(cur[:2]) != (checkpoint_hash, dataset_hash):
                if cur is not None and not same:
                    self._archive(_why(cur, checkpoint_hash, dataset_hash), checkpoint, dataset)
                else:
                    self._delete(checkpoint, dataset, None)
                self.conn.execute(f"INSERT INTO evaluations ({_EVAL_COLS}) VALUES "
                                  "(?,?,?,?,?,?,?,?)",
                                  (checkpoint, dataset, checkpoint_hash, dataset_hash, run_id,
                                   outputs_dir, now, signature))
            else:
                if not same:
                    self._archive("metric settings changed", checkpoint, dataset, keep=True)
                self._delete(checkpoint, dataset, [v.metric for v in values] + list(only))
                self.conn.execute(
                    "UPDATE evaluations SET run_id=?, outputs_dir=?, completed_at=?, "
                    "signature=? WHERE checkpoint=? AND dataset=?",
                    (run_id, outputs_dir, now, signature, checkpoint, dataset))
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

    def _delete(self, checkpoint: str, dataset: str, metrics: list[str] | None) -> None:
        """Delete current rows of one (checkpoint, dataset): all, or just ``metrics``."""
        if metrics is None:
            self.conn.execute("DELETE FROM evaluations WHERE checkpoint=? AND dataset=?",
                              (checkpoint, dataset))
            tables, extra, margs = ("metrics", "sample_metrics"), "", []
        else:
            tables = ("metrics", "sample_metrics")
            extra = f" AND metric IN ({','.join('?' * len(metrics))})"
            margs = list(metrics)
        for table in tables:
            self.conn.execute(f"DELETE FROM {table} WHERE checkpoint=? AND dataset=?{extra}",
                              [checkpoint, dataset, *margs])

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

    def counts(self) -> tuple[int, int]:
        """(current evaluations, checkpoints with at least one)."""
        row = self.conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT checkpoint) FROM evaluations").fetchone()
        return int(row[0]), int(row[1])

    # -- reading -----------------------------------------------------------------------
    def results(self, history: bool = False) -> pd.DataFrame:
        """One row per (checkpoint, dataset, metric) of the current evaluations, with
        :data:`RESULT_COLUMNS`. ``history=True``: superseded evaluations too, with the
        extra :data:`HISTORY_COLUMNS` (``current`` 1/0, the run that computed it, when it
        was completed and superseded, and why)."""
        current = (
            "SELECT m.checkpoint, c.step, COALESCE(d.domain, c.domain, '') AS domain, "
            "m.dataset, d.kind, m.metric, m.value, m.n, m.std, m.ci_low, m.ci_high, m.status, "
            "m.reason, m.flags, e.checkpoint_hash, e.dataset_hash, 1 AS current, e.run_id, "
            "e.completed_at, NULL AS superseded_at, NULL AS why FROM metrics m "
            "JOIN evaluations e ON e.checkpoint=m.checkpoint AND e.dataset=m.dataset "
            "LEFT JOIN checkpoints c ON c.name=m.checkpoint "
            "LEFT JOIN datasets d ON d.name=m.dataset")
        if not history:
            df = self._query(current + " ORDER BY c.step, m.checkpoint, m.dataset, m.metric")
            return df[RESULT_COLUMNS]
        old = (
            "SELECT h.checkpoint, c.step, COALESCE(d.domain, c.domain, '') AS domain, "
            "h.dataset, d.kind, m.metric, m.value, m.n, m.std, m.ci_low, m.ci_high, m.status, "
            "m.reason, m.flags, h.checkpoint_hash, h.dataset_hash, 0 AS current, h.run_id, "
            "h.completed_at, h.superseded_at, h.why FROM metric_history m "
            "JOIN evaluation_history h ON h.id=m.history_id "
            "LEFT JOIN checkpoints c ON c.name=h.checkpoint "
            "LEFT JOIN datasets d ON d.name=h.dataset")
        df = self._query(f"SELECT * FROM ({current} UNION ALL {old}) ORDER BY step, "
                         "checkpoint, dataset, metric, current DESC, completed_at DESC")
        return df[RESULT_COLUMNS + HISTORY_COLUMNS]

    def checkpoints(self) -> pd.DataFrame:
        return self._query("SELECT * FROM checkpoints ORDER BY step, name")

    def datasets(self) -> pd.DataFrame:
        return self._query("SELECT * FROM datasets ORDER BY name")

    def sample_metrics(self) -> pd.DataFrame:
        return self._query(
            "SELECT sm.*, s.idx FROM sample_metrics sm LEFT JOIN samples s "
            "ON s.dataset=sm.dataset AND s.sample_id=sm.sample_id "
            "ORDER BY sm.checkpoint, sm.dataset, s.idx, sm.metric")

    def evaluations(self) -> pd.DataFrame:
        return self._query("SELECT * FROM evaluations")

    def runs(self) -> pd.DataFrame:
        return self._query("SELECT * FROM runs ORDER BY id")


def _why(cur: tuple, checkpoint_hash: str, dataset_hash: str) -> str:
    """Why a current evaluation with key ``cur`` is superseded by one with the new hashes."""
    if cur[0] != checkpoint_hash:
        return "checkpoint content changed"
    if cur[1] != dataset_hash:
        return "dataset changed"
    return "metric settings changed"


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
