"""How a command ends when a run is interrupted or the disk fills: one line saying what the
results store holds, and the exit code (:mod:`evalkit.core.faults` has the codes and the
low-level pieces; this half reads the store, so it lives beside it)."""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

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
    try:
        yield
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
