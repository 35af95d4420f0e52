"""How a run ends when something outside it goes wrong: disk full, SIGINT, SIGTERM.

Exit codes (documented in docs/faults.md and the README):

* :data:`EXIT_DISK_FULL` (3): a write failed with ENOSPC/EDQUOT or SQLite's "database or
  disk is full"; the message names the path and about how much space the step needed.
* :data:`EXIT_SIGINT` (130 = 128 + 2): Ctrl-C.
* :data:`EXIT_SIGTERM` (143 = 128 + 15): ``kill``, a CI timeout.

Each ends with one line saying what is stored. Nothing is half-written by construction:
every evaluation is one SQLite transaction, every output folder and report is written into a
temporary folder and renamed into place (temporary folders of dead processes are removed by
the next run, see :func:`remove_stale_temps`).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

EXIT_DISK_FULL = 3
EXIT_SIGINT = 130
EXIT_SIGTERM = 143
_FULL_ERRNOS = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}


def human_bytes(n: float | None) -> str:
    """``1536`` -> ``"1.5 KiB"``; None -> ``"unknown"``."""
    if n is None:
        return "unknown"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(n) < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


class DiskFull(OSError):
    """A write failed because the disk (or quota) is full.

    Attributes:
        path: what was being written.
        needed: about how many bytes the failed step needed (None when unknown).
    """

    def __init__(self, path: str | Path, needed: int | None = None):
        self.path = Path(path)
        self.needed = needed
        super().__init__(errno.ENOSPC, self.describe(), str(path))

    def describe(self) -> str:
        free = free_bytes(self.path)
        need = f"; this step needs about {human_bytes(self.needed)}" if self.needed else ""
        return (f"disk full writing {self.path} ({human_bytes(free)} free there{need})")

    def __str__(self) -> str:
        return self.describe()


def free_bytes(path: str | Path) -> int | None:
    """Free bytes on the file system holding ``path`` (or its nearest existing parent)."""
    p = Path(path)
    while not p.exists() and p != p.parent:
        p = p.parent
    try:
        return shutil.disk_usage(p).free
    except OSError:
        return None


def is_disk_full(exc: BaseException) -> bool:
    """Is ``exc`` (or what caused it) a full disk: ENOSPC/EDQUOT, or SQLite's full error?"""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, DiskFull):
            return True
        if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
            return True
        if isinstance(exc, sqlite3.OperationalError) and "disk is full" in str(exc):
            return True
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return False


def as_disk_full(exc: BaseException, path: str | Path, needed: int | None = None) -> DiskFull:
    """``exc`` as a :class:`DiskFull` naming ``path`` (``exc`` itself when it is one)."""
    if isinstance(exc, DiskFull):
        return exc
    return DiskFull(getattr(exc, "filename", None) or path, needed)


class Terminated(BaseException):
    """SIGTERM arrived (raised in the main thread by :func:`evalkit.store.endings.ending_cleanly`'s handler).

    A BaseException like KeyboardInterrupt, so that ``except Exception`` blocks (a metric
    that fails, a report problem) do not swallow it."""


def _raise_terminated(signum, frame) -> None:
    raise Terminated()


def install_sigterm_handler(sig: int = signal.SIGTERM) -> None:
    """Make SIGTERM raise :class:`Terminated` in the main thread (no-op elsewhere)."""
    try:
        signal.signal(sig, _raise_terminated)
    except ValueError:  # not the main thread
        pass


@contextmanager
def signals_deferred(sigs: tuple[int, ...] = (signal.SIGINT, signal.SIGTERM)
                     ) -> Iterator[None]:
    """Hold SIGINT/SIGTERM back inside the block and deliver them when it ends.

    For code that turns any exception raised inside it into its own error: a Ctrl-C or
    ``kill`` during ``import tensorflow`` raised evalkit's ``Terminated`` (or
    ``KeyboardInterrupt``) inside TensorFlow's initialization, which reported "initialization
    failed" and ended the run with exit 1 instead of 143/130 and no "what is stored" line.
    The signals are blocked for this thread (``pthread_sigmask``) and stay pending; on exit
    the old mask is restored and Python runs its handlers then. Off the main thread, or
    where ``pthread_sigmask`` does not exist, the block runs as is."""
    import threading

    if threading.current_thread() is not threading.main_thread() or \
            not hasattr(signal, "pthread_sigmask"):
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


_TMP = re.compile(r"\.(?:tmp|old)(\d+)$")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def remove_stale_temps(root: str | Path, pattern: str = "*/*.tmp*") -> list[Path]:
    """Remove ``*.tmp<PID>`` / ``*.old<PID>`` folders and files under ``root`` (glob
    ``pattern``) whose process no longer runs (left by a kill or a full disk); returns what
    was removed."""
    removed = []
    root = Path(root)
    if not root.is_dir():
        return removed
    for p in root.glob(pattern):
        m = _TMP.search(p.name)
        if m is None or int(m.group(1)) == os.getpid() or _pid_alive(int(m.group(1))):
            continue
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
        removed.append(p)
    return removed
