"""Reviewers' votes in ``OUT/results.sqlite`` (table ``votes``), and vote files.

One row per answer, written the moment it is given (the review server commits each vote
in its own transaction, so closing the browser loses nothing)::

    votes(id, reviewer, time, domain, dataset, sample_id, left_hash, right_hash,
          left_name, right_name, answer, source)

``time`` is Unix seconds (UTC); ``left_*``/``right_*`` are the checkpoints as shown (content
hash and name at the time of the vote); ``answer`` is ``left``, ``right``, ``same`` or
``skip``; ``source`` is ``server`` or ``import:<file name>``. A vote refers to checkpoints
by content hash: a checkpoint whose files changed since is a different model, and votes on
its old content no longer count (they stay in the table).

A vote file (the static report's Review page downloads one; ``evalkit review import``
reads it)::

    {"format": "evalkit-votes/1", "out": "<OUT id, see out_id()>", "votes": [
      {"reviewer": "ana", "time": 1764412345.2, "domain": "car", "dataset": "sketches/car",
       "sample_id": "car_3", "left_hash": "<sha256>", "right_hash": "<sha256>",
       "left_name": "car/ckpt-3", "right_name": "car/ckpt-5", "answer": "left"}, ...]}

:func:`read_vote_file` reads at most :data:`MAX_FILE_BYTES` (20 MiB, about 50,000 votes),
refuses brackets nested deeper than the format's 3 levels before parsing (so no input can
exhaust the parser's recursion), validates every field against this OUT (known checkpoints
of that domain, known samples of that dataset) and refuses the whole file on the first
problem. :func:`plan_import` then applies the live server's rule, one vote per reviewer,
sample and checkpoint pair (sides either way round): a vote already stored is not stored
again, and a later vote (by time, then file order) on an answered (reviewer, sample, pair)
is a duplicate, reported and not stored.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sqlite3
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from evalkit.decide.review.bt import ANSWERS

VOTE_FORMAT = "evalkit-votes/1"
TABLE = """
CREATE TABLE IF NOT EXISTS votes (
    id INTEGER PRIMARY KEY AUTOINCREMENT, reviewer TEXT NOT NULL, time REAL NOT NULL,
    domain TEXT NOT NULL, dataset TEXT NOT NULL, sample_id TEXT NOT NULL,
    left_hash TEXT NOT NULL, right_hash TEXT NOT NULL, left_name TEXT, right_name TEXT,
    answer TEXT NOT NULL CHECK (answer IN ('left', 'right', 'same', 'skip')),
    source TEXT NOT NULL DEFAULT 'server',
    UNIQUE (reviewer, time, dataset, sample_id, left_hash, right_hash));
"""
#: Longest accepted reviewer name (characters).
MAX_REVIEWER = 64
#: Largest accepted vote file (bytes): 20 MiB, about 50,000 votes of ~400 bytes.
MAX_FILE_BYTES = 20 * 1024 * 1024
#: Deepest bracket nesting of a vote file: the document {, its "votes" [, a vote {.
MAX_DEPTH = 3
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")


class VoteFileError(ValueError):
    """A vote file that cannot be imported (message names the file and the problem)."""


@dataclass(frozen=True)
class Vote:
    """One answer; see the module docstring for the fields."""

    reviewer: str
    time: float
    domain: str
    dataset: str
    sample_id: str
    left_hash: str
    right_hash: str
    left_name: str
    right_name: str
    answer: str

    def pair_key(self) -> tuple[str, str, str]:
        """(sample, checkpoint pair) regardless of the shown sides."""
        a, b = sorted((self.left_hash, self.right_hash))
        return (self.dataset + "\0" + self.sample_id, a, b)


def ensure_table(conn: sqlite3.Connection) -> None:
    conn.executescript(TABLE)


def add_votes(conn: sqlite3.Connection, votes: list[Vote], source: str = "server") -> int:
    """Insert votes in ONE transaction; returns how many were new (an identical vote, same
    reviewer, time, sample and sides, is already there and is not counted twice)."""
    ensure_table(conn)
    before = conn.total_changes
    with conn:
        conn.executemany(
            "INSERT OR IGNORE INTO votes (reviewer, time, domain, dataset, sample_id, "
            "left_hash, right_hash, left_name, right_name, answer, source) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            [(v.reviewer, v.time, v.domain, v.dataset, v.sample_id, v.left_hash,
              v.right_hash, v.left_name, v.right_name, v.answer, source) for v in votes])
    return conn.total_changes - before


def has_table(conn: sqlite3.Connection) -> bool:
    """Whether the store has a ``votes`` table (readers never create it)."""
    return conn.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='votes'"
                        ).fetchone() is not None


def load_votes(conn: sqlite3.Connection, domain: str | None = None) -> list[Vote]:
    """Every stored vote (of one domain), oldest first; none when no vote was ever stored
    (works on a read-only store)."""
    if not has_table(conn):
        return []
    sql = ("SELECT reviewer, time, domain, dataset, sample_id, left_hash, right_hash, "
           "COALESCE(left_name, ''), COALESCE(right_name, ''), answer FROM votes")
    args: tuple = ()
    if domain is not None:
        sql += " WHERE domain=?"
        args = (domain,)
    return [Vote(*row) for row in conn.execute(sql + " ORDER BY time, id", args)]


def out_id(conn: sqlite3.Connection) -> str:
    """A short id of an evaluation folder: sha256 of its first run's start time and run
    folder (stable across re-runs; differs between OUT folders)."""
    row = conn.execute("SELECT started_at, run_dir FROM runs ORDER BY id LIMIT 1").fetchone()
    blob = json.dumps(list(row) if row else [], default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _known(conn: sqlite3.Connection) -> tuple[dict[str, tuple[str, str]], dict[str, set],
                                              dict[str, str]]:
    """(checkpoint hash -> (name, domain), dataset -> sample ids, dataset -> domain)."""
    cks = {h: (n, d or "") for n, h, d in conn.execute(
        "SELECT name, content_hash, domain FROM checkpoints WHERE status='ok' "
        "AND content_hash IS NOT NULL")}
    samples: dict[str, set] = {}
    for ds, sid in conn.execute("SELECT dataset, sample_id FROM samples"):
        samples.setdefault(ds, set()).add(sid)
    ds_domain = {n: d or "" for n, d in conn.execute("SELECT name, domain FROM datasets "
                                                      "WHERE kind='sketches'")}
    return cks, samples, ds_domain


def validate_vote(raw: object, known, where: str) -> Vote:
    """A :class:`Vote` from one JSON object, checked against this OUT; raises
    :class:`VoteFileError` saying what is wrong at ``where``."""
    cks, samples, ds_domain = known
    if not isinstance(raw, dict):
        raise VoteFileError(f"{where}: a vote must be a JSON object, got {type(raw).__name__}")
    need = {"reviewer": str, "time": (int, float), "domain": str, "dataset": str,
            "sample_id": str, "left_hash": str, "right_hash": str, "answer": str}
    for key, typ in need.items():
        v = raw.get(key)
        if v is None or not isinstance(v, typ) or isinstance(v, bool):
            raise VoteFileError(f"{where}: '{key}' is missing or not a "
                                f"{'number' if key == 'time' else 'string'}")
    extra = set(raw) - set(need) - {"left_name", "right_name"}
    if extra:
        raise VoteFileError(f"{where}: unknown field(s) "
                            f"{', '.join(_show(k) for k in sorted(extra)[:5])}")
    reviewer = raw["reviewer"].strip()
    if not reviewer or len(reviewer) > MAX_REVIEWER or not reviewer.isprintable():
        raise VoteFileError(f"{where}: 'reviewer' must be 1-{MAX_REVIEWER} printable "
                            "characters")
    try:
        t = float(raw["time"])
    except OverflowError:  # an integer too large for a float
        t = math.inf
    if not math.isfinite(t) or t < 1e9 or t > time.time() + 86400:
        raise VoteFileError(f"{where}: 'time' {_show(raw['time'])} is not a plausible Unix "
                            "time")
    if raw["answer"] not in ANSWERS:
        raise VoteFileError(f"{where}: 'answer' must be one of {', '.join(ANSWERS)}, got "
                            f"{_show(raw['answer'])}")
    ds = raw["dataset"]
    if ds not in ds_domain:
        raise VoteFileError(f"{where}: dataset {_show(ds)} is not a sketch dataset of this "
                            "evaluation folder (a vote file from another OUT?)")
    if ds_domain[ds] != raw["domain"]:
        raise VoteFileError(f"{where}: dataset '{ds}' belongs to domain '{ds_domain[ds]}', "
                            f"not {_show(raw['domain'])}")
    if raw["sample_id"] not in samples.get(ds, set()):
        raise VoteFileError(f"{where}: sample {_show(raw['sample_id'])} is not in dataset "
                            f"'{ds}'")
    names = []
    for side in ("left", "right"):
        h = raw[f"{side}_hash"]
        if h not in cks:
            raise VoteFileError(f"{where}: {side} checkpoint hash {_show(h[:12])} is not an "
                                "evaluated checkpoint of this folder (a vote file from "
                                "another OUT, or the checkpoint changed since)")
        name, dom = cks[h]
        if dom != raw["domain"]:
            raise VoteFileError(f"{where}: {side} checkpoint {name} is in domain '{dom}', "
                                f"not {_show(raw['domain'])}")
        names.append(name)
    if raw["left_hash"] == raw["right_hash"]:
        raise VoteFileError(f"{where}: both sides show the same checkpoint")
    return Vote(reviewer, t, raw["domain"], ds, raw["sample_id"], raw["left_hash"],
                raw["right_hash"], names[0], names[1], raw["answer"])


def _show(value: object, limit: int = 40) -> str:
    """A value for an error message: its ASCII repr, cut to ``limit`` characters (a vote
    file's strings may hold control characters or lone surrogates)."""
    text = ascii(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _check_nesting(text: str, path: Path) -> None:
    """Refuse brackets nested deeper than :data:`MAX_DEPTH` (outside strings), before the
    JSON parser, whose recursion such input would exhaust, ever sees them."""
    import numpy as np

    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text)).encode("ascii")
    b = np.frombuffer(brackets, np.uint8)
    steps = np.where((b == ord("[")) | (b == ord("{")), 1, -1)
    if steps.size and int(np.cumsum(steps).max()) > MAX_DEPTH:
        raise VoteFileError(f"{path}: brackets nested deeper than a vote file's "
                            f"{MAX_DEPTH} levels ({{\"votes\": [{{...}}]}}); not a vote "
                            "file, download it again from the report's Review page")


def read_vote_file(path: str | Path, conn: sqlite3.Connection) -> list[Vote]:
    """Read and validate a vote file against the evaluation folder of ``conn``; raises
    :class:`VoteFileError` naming the file and the first problem (nothing is stored).
    At most :data:`MAX_FILE_BYTES` are read; nesting is bounded by :data:`MAX_DEPTH`."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)  # bounded even for a pipe or growing file
    except FileNotFoundError as exc:
        raise VoteFileError(f"{path}: not found") from exc
    except OSError as exc:
        raise VoteFileError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    if len(data) > MAX_FILE_BYTES:
        raise VoteFileError(f"{path}: larger than the {MAX_FILE_BYTES // 2**20} MiB limit of a "
                            "vote file (about 50,000 votes); split it into smaller files")
    try:
        text = data.decode("utf-8")
        _check_nesting(text, path)
        doc = json.loads(text)
    except VoteFileError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise VoteFileError(f"{path}: not a JSON vote file ({_show(str(exc), 120)}); download "
                            "it again from the report's Review page") from exc
    if not isinstance(doc, dict) or doc.get("format") != VOTE_FORMAT or \
            not isinstance(doc.get("votes"), list):
        raise VoteFileError(f"{path}: not an evalkit vote file (expected a JSON object with "
                            f"\"format\": \"{VOTE_FORMAT}\" and a \"votes\" list)")
    mine = out_id(conn)
    if doc.get("out") != mine:
        raise VoteFileError(f"{path}: made for another evaluation folder (out id "
                            f"{_show(str(doc.get('out'))[:16])}, this one is {mine!r}); "
                            "import it into the folder whose report you reviewed")
    known = _known(conn)
    return [validate_vote(v, known, f"{path}: vote {i + 1}")
            for i, v in enumerate(doc["votes"])]


@dataclass
class ImportPlan:
    """What an import stores: ``new`` votes; ``already`` (stored before: same reviewer,
    time, sample and sides); ``duplicates``: (vote number in the file, vote, what it
    repeats) for a later vote on a (reviewer, sample, checkpoint pair) already answered."""

    new: list[Vote] = field(default_factory=list)
    already: int = 0
    duplicates: list[tuple[int, Vote, str]] = field(default_factory=list)


def _row_key(v: Vote) -> tuple:
    """The store's uniqueness key of a vote (table ``votes``)."""
    return (v.reviewer, v.time, v.dataset, v.sample_id, v.left_hash, v.right_hash)


def plan_import(votes: list[Vote], conn: sqlite3.Connection) -> ImportPlan:
    """Apply the live server's rule to ``votes`` (read from a file, in file order): one vote
    per reviewer, sample and checkpoint pair, sides either way round. The earliest vote
    (by time, then file order) on a key is kept unless a stored vote holds that key."""
    stored = load_votes(conn)
    rows = {_row_key(v) for v in stored}
    answered: dict[tuple, str] = {(v.reviewer, *v.pair_key()): "a stored vote"
                                  for v in stored}
    plan = ImportPlan()
    for i in sorted(range(len(votes)), key=lambda k: (votes[k].time, k)):
        v = votes[i]
        if _row_key(v) in rows:
            plan.already += 1
            continue
        key = (v.reviewer, *v.pair_key())
        if key in answered:
            plan.duplicates.append((i + 1, v, answered[key]))
            continue
        answered[key] = f"vote {i + 1} of the file"
        plan.new.append(v)
    plan.duplicates.sort(key=lambda d: d[0])
    return plan


def vote_file(votes: list[Vote], conn: sqlite3.Connection) -> dict:
    """The JSON document of a vote file for ``votes`` (what the Review page downloads)."""
    return {"format": VOTE_FORMAT, "out": out_id(conn), "votes": [asdict(v) for v in votes]}
