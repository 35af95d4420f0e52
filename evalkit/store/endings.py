"""How a command ends when a run is interrupted or the disk fills: one line saying what the
results store holds, and the exit code (:mod:`evalkit.core.faults` has the codes and the
low-level pieces; this half reads the store, so it lives beside it)."""

from __future__ import annotations

import atexit
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

from evalkit.core.faults import (
    EXIT_DISK_FULL,
    EXIT_SIGINT,
    EXIT_SIGTERM,
    Terminated,
    _raise_terminated,
    as_disk_full,
    is_disk_full,
)


def stored_summary(out: Path) -> str:
    """One line: what ``OUT/results.sqlite`` holds now (never raises)."""
    try:
        from evalkit.store.results import DB_NAME, Store

        if not (out / DB_NAME).exists():
            return f"nothing was stored yet in {out}"
        with Store(out, create=False) as store:
            n_eval, n_ckpt = store.counts()
        return (f"{n_eval} complete evaluation(s) of {n_ckpt} checkpoint(s) are stored in "
                f"{out / 'results.sqlite'}, nothing half-written; run the same command again "
                "to finish (stored work is reused)")
    except Exception as exc:  # a summary must never hide the interruption itself
        return f"results so far are in {out} ({type(exc).__name__} reading them back)"


#: OUT of the last run whose guarded part (:func:`ending_cleanly`'s body: results stored,
#: report written) finished in this process; None before.
_finished_out: Path | None = None


def interrupted_line(signum: int) -> str:
    """``interrupted (SIGINT)`` / ``terminated (SIGTERM)``, with what is stored when a run
    of this process has finished."""
    what = "interrupted (SIGINT)" if signum == signal.SIGINT else "terminated (SIGTERM)"
    return what + (f": {stored_summary(_finished_out)}" if _finished_out is not None else "")


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # closed or gone: nothing more can be said
            pass


def _end_at_once(signum: int, echo: Callable[[str], None]) -> NoReturn:
    echo(interrupted_line(signum))
    _flush()
    os._exit(EXIT_SIGINT if signum == signal.SIGINT else EXIT_SIGTERM)


def install_process_signals(echo: Callable[[str], None] | None = None) -> None:
    """The console script's SIGINT/SIGTERM handlers (main thread; never from the Python
    API). Until a run's guarded part has finished they raise ``KeyboardInterrupt`` /
    :class:`~evalkit.core.faults.Terminated` as usual (:func:`ending_cleanly` turns them
    into its line and exit code); after it (results stored, report written, nothing left
    to lose) the process says what is stored and ends at once with 130 / 143."""
    echo = echo or (lambda s: print(s, file=sys.stderr, flush=True))

    def on_signal(signum, frame):
        if _finished_out is not None:
            _end_at_once(signum, echo)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        _raise_terminated(signum, frame)

    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # `evalkit ... &` ignores it
        signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)


def exit_process(code: int, echo: Callable[[str], None] | None = None) -> NoReturn:
    """End the console-script process now with ``code`` (never from the Python API).

    Python's own shutdown of a process that loaded TensorFlow and torch takes seconds (~4 s
    measured), most of it after Python has put SIGINT/SIGTERM back to their defaults, so a
    Ctrl-C then killed evalkit without a word. Instead: from here SIGINT/SIGTERM print
    :func:`interrupted_line` and end with 130 / 143; the ``atexit`` callbacks run (temporary
    folders, logging) after the non-daemon threads end, stdout and stderr are flushed, and
    ``os._exit`` ends the process without the slow teardown."""
    echo = echo or (lambda s: print(s, file=sys.stderr, flush=True))
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, lambda signum, frame: _end_at_once(signum, echo))
    signal.signal(signal.SIGTERM, lambda signum, frame: _end_at_once(signum, echo))
    # what interpreter shutdown does before its slow part, in its order: wait for the
    # non-daemon threads (and stop idle thread pools), then the atexit callbacks
    shutdown_threads = getattr(threading, "_shutdown", None)
    if shutdown_threads is not None:
        shutdown_threads()
    atexit._run_exitfuncs()
    _flush()
    os._exit(code)


@contextmanager
def ending_cleanly(out: Path, echo: Callable[[str], None] | None = None) -> Iterator[None]:
    """Run the body; turn SIGINT, SIGTERM and a full disk into one line and an exit code.

    SIGINT -> exit 130, SIGTERM -> exit 143 (each after a line saying what is stored),
    disk full -> exit 3 with the path and the space needed. Other exceptions pass through.
    """
    echo = echo or (lambda s: print(s, file=sys.stderr, flush=True))
    try:
        old = signal.signal(signal.SIGTERM, _raise_terminated)
    except ValueError:  # not the main thread: leave SIGTERM alone
        old = None
    global _finished_out
    try:
        yield
        _finished_out = Path(out)
    except KeyboardInterrupt:
        echo(f"interrupted (SIGINT): {stored_summary(Path(out))}")
        sys.exit(EXIT_SIGINT)
    except Terminated:
        echo(f"terminated (SIGTERM): {stored_summary(Path(out))}")
        sys.exit(EXIT_SIGTERM)
    except Exception as exc:
        if not is_disk_full(exc):
            raise
        full = as_disk_full(exc, out)
        echo(f"evalkit: {full.describe()}. Results stored before it are complete and nothing "
             "half-written was kept; free some space (or use --out on a larger disk) and run "
             f"the same command again (exit {EXIT_DISK_FULL})")
        sys.exit(EXIT_DISK_FULL)
    finally:
        if old is not None:
            signal.signal(signal.SIGTERM, old)
