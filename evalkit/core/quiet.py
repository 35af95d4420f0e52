"""Quiet by default: TensorFlow's, absl's and oneDNN's start-up lines reach the user only
with ``evalkit --verbose`` (or ``EVALKIT_VERBOSE=1``).

TensorFlow 2.21 logs from C++ through absl *before* ``absl::InitializeLog()``; those lines
(``All log messages before absl::InitializeLog() ...``, ``oneDNN custom operations are on
...``) ignore ``TF_CPP_MIN_LOG_LEVEL``, so :func:`native_stderr_hidden` points file
descriptor 2 at a temporary file while TensorFlow is imported and drops what was written,
unless the import fails: then the captured text is written back to stderr before the error
propagates. ``TF_CPP_MIN_LOG_LEVEL=2`` (set unless the user set it) hides TensorFlow's later
INFO/WARNING lines (the CPU-instructions notice at the first op), the Python loggers
``tensorflow`` and ``absl`` are set to ERROR, and the command line ignores Python warnings
(:func:`quiet_python_warnings`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
from collections.abc import Iterator

#: environment variable that turns the native log lines back on ("1"); inherited by
#: subprocesses and local Ray workers
VERBOSE_ENV = "EVALKIT_VERBOSE"


def set_verbose(on: bool) -> None:
    """Record the ``--verbose`` choice for this process and its children."""
    os.environ[VERBOSE_ENV] = "1" if on else "0"


def is_verbose() -> bool:
    """True when ``--verbose`` was given or ``EVALKIT_VERBOSE`` is set to anything but 0."""
    return os.environ.get(VERBOSE_ENV, "0") not in ("", "0")


def quiet_native_logs() -> None:
    """Before TensorFlow is imported: hide its C++ INFO and WARNING lines (not ERROR ones),
    unless verbose or the user set ``TF_CPP_MIN_LOG_LEVEL`` themselves."""
    if not is_verbose():
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def quiet_python_warnings() -> None:
    """Unless verbose: Python warnings (TensorFlow's, torch's, numpy's ``UserWarning``,
    ``FutureWarning``, ``RuntimeWarning``...) are not printed. evalkit says what matters
    itself, once, as ``note:`` lines (a metric skipped and why, bf16 refused, ...); with
    ``--verbose`` Python's default filters apply again."""
    import warnings

    global _SAVED_FILTERS
    if not is_verbose():
        if _SAVED_FILTERS is None:
            _SAVED_FILTERS = list(warnings.filters)
        warnings.simplefilter("ignore")


_SAVED_FILTERS: list | None = None


def loud_python_warnings() -> None:
    """Undo :func:`quiet_python_warnings` (``--verbose`` given after the command name, once
    the group had hidden them): Python's filters as they were before."""
    import warnings

    global _SAVED_FILTERS
    if _SAVED_FILTERS is not None:
        warnings.filters[:] = _SAVED_FILTERS
        _SAVED_FILTERS = None
        warnings._filters_mutated()  # what warnings.catch_warnings does on exit


def quiet_python_loggers() -> None:
    """After TensorFlow is imported: its Python-side loggers say only errors, unless
    verbose."""
    if is_verbose():
        return
    for name in ("tensorflow", "absl"):
        logging.getLogger(name).setLevel(logging.ERROR)


@contextlib.contextmanager
def native_stderr_hidden() -> Iterator[None]:
    """Hide what native code (and Python) writes to file descriptor 2 inside the block;
    verbose: a no-op. Should the block raise, the hidden text is written back first."""
    if is_verbose():
        yield
        return
    fd = 2  # where native code writes, whatever sys.stderr is
    try:
        saved = os.dup(fd)
    except OSError:  # no fd 2 (a daemon): nothing reaches a user anyway
        yield
        return
    try:
        with tempfile.TemporaryFile() as sink:
            _flush()
            os.dup2(sink.fileno(), fd)
            failed = True
            try:
                yield
                failed = False
            finally:
                _flush()
                os.dup2(saved, fd)
                if failed:
                    sink.seek(0)
                    os.write(fd, sink.read())
    finally:
        os.close(saved)


def _flush() -> None:
    with contextlib.suppress(Exception):
        sys.stderr.flush()
