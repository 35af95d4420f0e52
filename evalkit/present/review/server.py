"""``evalkit review OUT``: a local web page for pairwise review of served outputs.

Standard library only (``http.server``): one process, a thread per connection (each with a
:data:`CONNECTION_TIMEOUT_S` socket timeout, so an idle client blocks no one), bound to
127.0.0.1. It
serves the review page, the served outputs (PNG files under ``OUT`` only) and the inputs
(rendered from the recorded sketch sets in memory), and writes each answer to
``OUT/results.sqlite`` (:mod:`evalkit.decide.review.votes`) before replying, then refits the
reviewers' scores (:mod:`evalkit.decide.review.scores`).

Routes: ``GET /`` (the page), ``GET /api/next`` (the next comparison: a one-time token,
the domain, the sample id and three image URLs; checkpoint names are not sent),
``POST /api/vote`` (``{"token", "answer"}``; the reply reveals the two names),
``GET /files/<path under OUT>.png``, ``GET /input/<token>``.

Refused with 403: a client address that is not loopback, a ``Host`` header other than
``127.0.0.1:<port>``/``localhost:<port>`` (DNS rebinding), a POST whose ``Origin`` is not this
server (another site's page). Refused with 404: any file path that resolves outside ``OUT``
(``..``, encoded ``%2e%2e``, absolute paths, symlinks out), or that is not a PNG file
listed in an output folder's manifest. Refused with 409: a served output that fails its
sha256 check (changed since it was generated, :mod:`evalkit.store.outputs`).
"""

from __future__ import annotations

import io
import ipaddress
import json
import random
import secrets
import sqlite3
import threading
import time
import urllib.parse
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd

from evalkit.decide.review.pairs import Comparison, next_comparison, plan_domain
from evalkit.decide.review.votes import Vote, add_votes, ensure_table, load_votes
from evalkit.store.outputs import CheckedFolder, OutputChanged

HOST = "127.0.0.1"
#: Largest accepted request body (bytes).
MAX_BODY = 4096
#: Comparisons handed out and not answered yet that the server remembers.
MAX_PENDING = 64
CSP = ("default-src 'none'; img-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; "
       "script-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; "
       "frame-ancestors 'none'")


def is_local(address: str) -> bool:
    """Whether a client address is a loopback address (127.0.0.0/8, ::1)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def safe_path(root: Path, rel: str) -> Path | None:
    """``root / rel`` if it is a regular PNG file inside ``root`` after resolving every
    ``..`` and symlink, else None. ``rel`` is the URL path after ``/files/`` (still
    percent-encoded)."""
    rel = urllib.parse.unquote(rel)
    if not rel or "\0" in rel or rel.startswith(("/", "\\")) or "\\" in rel:
        return None
    root = root.resolve()
    try:
        target = (root / rel).resolve()
    except (OSError, RuntimeError):
        return None
    if not target.is_relative_to(root) or target.suffix.lower() != ".png" or \
            not target.is_file():
        return None
    return target


def checked_output(path: Path) -> tuple[bytes | None, str | None]:
    """``(bytes, None)`` for a served output that passes its check against its folder's
    manifest (:mod:`evalkit.store.outputs`); ``(None, why)`` for one that fails it;
    ``(None, None)`` for a PNG that is no served output (no manifest lists it)."""
    try:
        checked = CheckedFolder(path.parent)
    except (OSError, ValueError):
        return None, None
    if path.name not in checked.digests:
        return None, None
    try:
        data = checked.read(path.name)
    except OutputChanged as exc:
        return None, f"{exc}; run evalkit run again to regenerate it"
    return data, None


class ReviewState:
    """What the server knows: the store, the comparison plans, pending tokens."""

    def __init__(self, out_dir: Path, reviewer: str, seed: int | None = None,
                 bootstrap: int | None = None):
        from evalkit.store.results import DB_NAME, ResultsError, Store

        self.out_dir = Path(out_dir).resolve()
        self.reviewer = reviewer
        if not (self.out_dir / DB_NAME).is_file():
            raise ResultsError(f"no results in {self.out_dir} ({DB_NAME} not found): run "
                               f"'evalkit run RUN_DIR --out {self.out_dir}' first")
        self.store = Store(self.out_dir)  # votes are written: the writable store
        # the server thread is not the one that built the state: reopen the connection
        # for use from any thread (every use holds self.lock, so uses never overlap)
        self.store.conn.close()
        self.store.conn = sqlite3.connect(self.store.path, timeout=30,
                                          check_same_thread=False)
        ensure_table(self.store.conn)
        self.rng = random.Random(seed)
        self.bootstrap = bootstrap
        self.pending: dict[str, Comparison] = {}
        self.inputs: dict[str, object] = {}  # dataset -> Dataset | str (why not shown)
        self.lock = threading.Lock()
        self.plans = self._plans()

    def _plans(self):
        from evalkit.decide.ranking.rank import config_for, rank_checkpoints, ranking_config
        from evalkit.decide.selection import domain_frames, domains_of

        config = ranking_config(config_for(self.out_dir))
        config.bootstrap = 0  # candidates need the order only
        results = self.store.results()
        ck = self.store.checkpoints()
        datasets = self.store.datasets()
        samples = pd.read_sql_query("SELECT dataset, idx, sample_id FROM samples",
                                    self.store.conn)
        evals = self.store.evaluations()
        plans = []
        for d in domains_of(ck, results):
            r, c, _ = domain_frames(d, results, ck, None)
            table = rank_checkpoints(r, c, None, config).table
            plans.append(plan_domain(self.out_dir, d, table, datasets, samples, evals))
        return plans

    def candidates(self) -> dict[str, list[str]]:
        return {p.domain: [c.name for c in p.candidates] for p in self.plans}

    def next(self) -> dict:
        votes = load_votes(self.store.conn)
        cmp = next_comparison(self.plans, votes, self.reviewer, self.rng)
        mine = sum(v.reviewer == self.reviewer for v in votes)
        if cmp is None:
            return {"item": None, "reviewer": self.reviewer, "answered": mine}
        token = secrets.token_urlsafe(12)
        self.pending[token] = cmp
        while len(self.pending) > MAX_PENDING:  # reloads leave unanswered tokens behind
            self.pending.pop(next(iter(self.pending)))
        return {"item": {
            "token": token, "domain": cmp.domain, "dataset": cmp.dataset,
            "sample_id": cmp.sample_id, "input": f"/input/{token}",
            "left": "/files/" + urllib.parse.quote(cmp.left.outputs[cmp.dataset][cmp.sample_id]),
            "right": "/files/" + urllib.parse.quote(
                cmp.right.outputs[cmp.dataset][cmp.sample_id])},
            "reviewer": self.reviewer, "answered": mine}

    def vote(self, token: str, answer: str) -> dict:
        cmp = self.pending.pop(token, None)
        if cmp is None:
            raise KeyError("unknown or already answered comparison")
        v = Vote(self.reviewer, time.time(), cmp.domain, cmp.dataset, cmp.sample_id,
                 cmp.left.content_hash, cmp.right.content_hash, cmp.left.name,
                 cmp.right.name, answer)
        add_votes(self.store.conn, [v], source="server")
        return {"ok": True, "left": cmp.left.name, "right": cmp.right.name, "answer": answer}

    def refit(self) -> None:
        from evalkit.decide.review.bt import DEFAULT_BOOTSTRAP
        from evalkit.decide.review.scores import update_human_scores

        update_human_scores(self.store, bootstrap=self.bootstrap if self.bootstrap is not None
                            else DEFAULT_BOOTSTRAP)
        self.plans = self._plans()  # the ranking, and so the candidates, may have moved

    def input_png(self, token: str) -> bytes | None:
        cmp = self.pending.get(token)
        if cmp is None:
            return None
        ds = self.inputs.get(cmp.dataset)
        if ds is None:
            ds = self.inputs[cmp.dataset] = self._load_dataset(cmp.dataset)
        if isinstance(ds, str) or cmp.sample_id not in ds.ids:
            return None
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(ds.input_uint8(ds.ids.index(cmp.sample_id)), mode="L").save(
            buf, format="PNG")
        return buf.getvalue()

    def _load_dataset(self, name: str):
        from evalkit.present.report.grids import _reload

        row = self.store.datasets().set_index("name").loc[name]
        runs = self.store.runs()
        size = int(runs.iloc[-1]["image_size"]) if len(runs) else 256
        try:
            limit = json.loads(runs.iloc[-1]["options"] or "{}").get("limit") if len(runs) \
                else None
        except ValueError:
            limit = None
        return _reload(pd.Series({"name": name, **row.to_dict()}), size, limit)

    def close(self) -> None:
        self.store.close()


def page_html(state: ReviewState) -> str:
    import evalkit
    from evalkit.present.report.render import _env

    return _env().get_template("review.html").render(
        title="evalkit review", mode="server", data={"reviewer": state.reviewer},
        evalkit_version=evalkit.__version__, candidates=state.candidates(), domain="",
        up=None)


#: Seconds a connection may sit idle (while its request is read or its reply written)
#: before the server closes it: a client that connects and sends nothing costs one thread
#: for this long, never the other reviewers' requests.
CONNECTION_TIMEOUT_S = 10.0


class Handler(BaseHTTPRequestHandler):
    """One request; ``self.server.state`` is the :class:`ReviewState`."""

    server_version = "evalkit-review"
    sys_version = ""

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's name)
        if getattr(self.server, "verbose", False):
            super().log_message(format, *args)

    # -- guards ------------------------------------------------------------------------
    def _allowed(self) -> bool:
        if not is_local(str(self.client_address[0])):
            self._send(HTTPStatus.FORBIDDEN, b"forbidden: evalkit review answers local "
                       b"clients only\n", "text/plain")
            return False
        port = self.server.server_address[1]
        host = self.headers.get("Host", "")
        if host not in (f"{HOST}:{port}", f"localhost:{port}"):
            self._send(HTTPStatus.FORBIDDEN, b"forbidden: unexpected Host header\n",
                       "text/plain")
            return False
        return True

    def _send(self, status: int, body: bytes, ctype: str, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("Referrer-Policy", "no-referrer")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj: dict, status: int = HTTPStatus.OK) -> None:
        self._send(status, json.dumps(obj).encode(), "application/json")

    # -- routes ------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if not self._allowed():
            return
        state: ReviewState = self.server.state
        path = self.path.split("?", 1)[0]
        with state.lock:
            if path in ("/", "/index.html"):
                self._send(HTTPStatus.OK, page_html(state).encode(), "text/html; charset=utf-8")
            elif path == "/api/next":
                self._json(state.next())
            elif path.startswith("/files/"):
                f = safe_path(state.out_dir, path[len("/files/"):])
                png, why = checked_output(f) if f is not None else (None, None)
                if png is not None:
                    self._send(HTTPStatus.OK, png, "image/png")
                elif why is not None:
                    self.log_error("%s", why)
                    self._send(HTTPStatus.CONFLICT, f"refused: {why}\n".encode(),
                               "text/plain; charset=utf-8")
                else:
                    self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
            elif path.startswith("/input/"):
                png = state.input_png(path[len("/input/"):])
                if png is None:
                    self._send(HTTPStatus.NOT_FOUND, b"input not available\n", "text/plain")
                else:
                    self._send(HTTPStatus.OK, png, "image/png")
            else:
                self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")

    def do_POST(self) -> None:  # noqa: N802
        if not self._allowed():
            return
        port = self.server.server_address[1]
        origin = self.headers.get("Origin")
        if origin is not None and origin not in (f"http://{HOST}:{port}",
                                                 f"http://localhost:{port}"):
            self._send(HTTPStatus.FORBIDDEN, b"forbidden: cross-origin request\n",
                       "text/plain")
            return
        if self.path != "/api/vote":
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")
            return
        if not self.headers.get("Content-Type", "").startswith("application/json"):
            self._json({"error": "send JSON"}, HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 < length <= MAX_BODY:
            self._json({"error": "bad body length"}, HTTPStatus.BAD_REQUEST)
            return
        try:
            body = json.loads(self.rfile.read(length))
            token, answer = body["token"], body["answer"]
            if answer not in ("left", "right", "same", "skip") or not isinstance(token, str):
                raise ValueError(answer)
        except (ValueError, KeyError, TypeError):
            self._json({"error": "expected {\"token\": str, \"answer\": "
                        "left|right|same|skip}"}, HTTPStatus.BAD_REQUEST)
            return
        state: ReviewState = self.server.state
        with state.lock:
            try:
                reply = state.vote(token, answer)
            except KeyError as exc:
                self._json({"error": str(exc)}, HTTPStatus.CONFLICT)
                return
            self._json(reply)
            self.wfile.flush()
            if answer != "skip":
                try:
                    state.refit()
                except Exception as exc:  # the vote is stored; the scores wait for the next
                    self.log_error("refitting the reviewers' scores failed: %r", exc)


class ReviewServer(ThreadingHTTPServer):
    """The HTTP server; ``state`` is a :class:`ReviewState`. Each connection is served on
    its own (daemon) thread with a :data:`CONNECTION_TIMEOUT_S` socket timeout, so an idle
    or slow client never holds up another reviewer; the handlers share the state under
    ``state.lock``."""

    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, state: ReviewState, port: int, verbose: bool = False):
        super().__init__((HOST, port), Handler)
        self.state = state
        self.verbose = verbose

    def get_request(self):
        conn, addr = super().get_request()
        conn.settimeout(CONNECTION_TIMEOUT_S)  # reads and writes of this connection
        return conn, addr

    def verify_request(self, request, client_address) -> bool:
        # refuse non-local peers before reading anything (the handler checks again)
        return is_local(str(client_address[0]))

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}/"
