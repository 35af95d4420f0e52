"""One writer per evaluation folder: an exclusive lock on ``OUT/.evalkit.lock``.

``evalkit run`` and ``evalkit demo`` hold it from before the first result is written until
the report is in place, so a second run on the same OUT waits (with a message) and then
finds everything done, instead of redoing all the work beside the first and racing it for
the report folder. ``--no-wait`` exits 2 instead of waiting.

The lock is ``fcntl.flock`` on an open file: the kernel releases it when the holder's process
ends in any way (kill -9 included), so a stale lock cannot block the next run. The file
records the holder's pid and start time for the message only; it is never deleted (deleting
a lock file races with its next holder).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_NAME = ".evalkit.lock"


class LockBusy(RuntimeError):
    """Another process holds the lock and the caller chose not to wait (exit 2)."""


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
        since = time.strftime("%H:%M:%S", time.localtime(info["since"]))
        return f"pid {info['pid']}, since {since}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


@contextmanager
def run_lock(out: str | Path, wait: bool = True,
             log: Callable[[str], None] = lambda s: None) -> Iterator[Path]:
    """Hold the exclusive lock on ``out`` for the body (creating ``out`` if needed).

    Args:
        out: the evaluation folder.
        wait: block until the holder finishes (True) or raise :class:`LockBusy` (False).
        log: where the one-line "waiting for ..." message goes.
    """
    import fcntl

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(path)
            if not wait:
                raise LockBusy(f"{out} is in use by another evalkit run ({holder}); wait for "
                               "it, or run without --no-wait to wait automatically") from None
            log(f"waiting for another evalkit run on {out} ({holder}) to finish...")
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps({"pid": os.getpid(), "since": time.time()}).encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the flock
