"""Sample arrays that may live on disk, so that memory stays flat in dataset size.

A dataset's decoded rows (served inputs, targets) and a checkpoint's served outputs are
``(N, ...)`` arrays. Small ones are plain numpy arrays. Above :func:`spill_limit_bytes`
(``EVALKIT_SPILL_MB``, default 32 MiB of decoded pixels, about 120 held-out pairs at 256 px)
they are :class:`DiskArray` s: rows in a raw file in a per-process temporary folder, read
by row with ``os.pread``. Every step then streams them in chunks of
:data:`CHUNK_ROWS` rows (generation, per-sample metrics, feature extraction): features
and per-sample values accumulate, images do not.

Hand-written because neither numpy nor a library we use offers it: ``np.memmap`` would
do the reading, but the pages it touches are mapped into the process and count in its
resident memory (RSS) until the mapping goes, which is what this module avoids; ``pread``
copies one chunk into ordinary memory that is freed with the chunk.

A :class:`DiskArray` indexes like the numpy array it stands for along the first axis
(an int gives one row; a slice, an int array or a bool mask give an ``ndarray`` of rows),
has ``shape``, ``dtype``, ``ndim`` and ``len``, and pickles as the numpy array (a Ray
worker without the file gets the values). ``np.asarray`` on one reads it whole: the hot
path never does.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path

import numpy as np

SPILL_ENV = "EVALKIT_SPILL_MB"
DEFAULT_SPILL_MB = 32.0
#: rows per chunk on the streaming path (64 outputs at 256 px: 12.6 MB uint8, 50 MB float32)
CHUNK_ROWS = 32

_spill_dir: Path | None = None


def spill_limit_bytes() -> int:
    """Arrays larger than this many bytes go to disk (``EVALKIT_SPILL_MB``; 0 = always)."""
    raw = os.environ.get(SPILL_ENV, "")
    try:
        mb = float(raw) if raw.strip() else DEFAULT_SPILL_MB
    except ValueError:
        mb = DEFAULT_SPILL_MB
    return int(max(mb, 0.0) * 2**20)


def should_spill(n: int, item_shape: tuple[int, ...], dtype) -> bool:
    """Whether an ``(n, *item_shape)`` array of ``dtype`` goes to disk."""
    return n * int(np.prod(item_shape)) * np.dtype(dtype).itemsize > spill_limit_bytes()


def spill_dir() -> Path:
    """This process's temporary folder for spilled arrays, ``evalkit-spill-*.tmp<PID>`` in
    the system temporary folder: removed at exit, and by the next process when this one was
    killed."""
    global _spill_dir
    if _spill_dir is None or not _spill_dir.is_dir():
        from evalkit.core.faults import remove_stale_temps

        remove_stale_temps(tempfile.gettempdir(), "evalkit-spill-*.tmp*")
        _spill_dir = Path(tempfile.mkdtemp(prefix="evalkit-spill-",
                                           suffix=f".tmp{os.getpid()}"))
        atexit.register(shutil.rmtree, _spill_dir, True)
    return _spill_dir


def _close_and_remove(fd: int, path: str) -> None:
    try:
        os.close(fd)
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass


class _RawFile:
    """One spill file: an open descriptor, removed when the last array using it goes."""

    def __init__(self) -> None:
        fd, path = tempfile.mkstemp(suffix=".rows", dir=spill_dir())
        self.fd, self.path = fd, path
        self._finalizer = weakref.finalize(self, _close_and_remove, fd, path)

    def write(self, data: bytes | memoryview, offset: int) -> None:
        view = memoryview(data).cast("B")
        while view.nbytes:
            done = os.pwrite(self.fd, view, offset)
            view, offset = view[done:], offset + done

    def read(self, nbytes: int, offset: int) -> bytes:
        chunks, left = [], nbytes
        while left:
            got = os.pread(self.fd, left, offset)
            if not got:
                raise OSError(f"spill file {self.path} is shorter than expected")
            chunks.append(got)
            left -= len(got)
            offset += len(got)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class DiskArray:
    """An ``(N, *item_shape)`` array whose rows live in a raw file (see the module doc).

    ``rows``: for a view (:meth:`take_rows`), which rows of the file it shows, in order.
    """

    def __init__(self, n: int, item_shape: tuple[int, ...], dtype,
                 raw: _RawFile | None = None, rows: np.ndarray | None = None):
        self.item_shape = tuple(int(s) for s in item_shape)
        self.dtype = np.dtype(dtype)
        self._raw = raw or _RawFile()
        self._n_file = n
        self._rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        self.row_bytes = int(np.prod(self.item_shape)) * self.dtype.itemsize

    # -- shape -----------------------------------------------------------------------------
    def __len__(self) -> int:
        return self._n_file if self._rows is None else len(self._rows)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.item_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self.item_shape)

    @property
    def nbytes(self) -> int:
        return len(self) * self.row_bytes

    def __repr__(self) -> str:
        return f"DiskArray(shape={self.shape}, dtype={self.dtype}, file={self._raw.path})"

    # -- rows ------------------------------------------------------------------------------
    def _file_rows(self, key) -> np.ndarray:
        """File row numbers selected by a first-axis ``key`` (slice, ints, bool mask)."""
        n = len(self)
        if isinstance(key, slice):
            sel = np.arange(n)[key]
        else:
            k = np.asarray(key)
            if k.dtype == bool:
                if k.shape != (n,):
                    raise IndexError(f"boolean index of shape {k.shape} for {n} rows")
                sel = np.flatnonzero(k)
            else:
                sel = k.astype(np.int64).reshape(-1)
                if sel.size and (sel.min() < -n or sel.max() >= n):
                    raise IndexError(f"row index out of range for {n} rows")
                sel = np.where(sel < 0, sel + n, sel)
        return sel if self._rows is None else self._rows[sel]

    def _read(self, file_rows: np.ndarray) -> np.ndarray:
        out = np.empty((len(file_rows), *self.item_shape), self.dtype)
        flat = out.reshape(len(file_rows), -1).view(np.uint8) if len(file_rows) else None
        i = 0
        while i < len(file_rows):  # one read per run of consecutive rows
            j = i + 1
            while j < len(file_rows) and file_rows[j] == file_rows[j - 1] + 1:
                j += 1
            data = self._raw.read((j - i) * self.row_bytes, int(file_rows[i]) * self.row_bytes)
            flat[i:j] = np.frombuffer(data, np.uint8).reshape(j - i, -1)
            i = j
        return out

    def __getitem__(self, key):
        if isinstance(key, tuple):
            head, rest = key[0], key[1:]
            if head is Ellipsis:
                raise IndexError("DiskArray indexes rows first (e.g. a[i], a[i:j], a[mask])")
            return self[head][(slice(None), *rest) if not np.isscalar(head) else rest]
        if isinstance(key, (int, np.integer)):
            n = len(self)
            if not -n <= key < n:
                raise IndexError(f"row {key} out of range for {n} rows")
            return self._read(self._file_rows([int(key)]))[0]
        return self._read(self._file_rows(key))

    def __setitem__(self, key, value) -> None:
        rows = self._file_rows([key] if isinstance(key, (int, np.integer)) else key)
        if len(rows) == 0:
            return
        if np.any(np.diff(rows) != 1):
            raise IndexError("DiskArray writes consecutive rows only")
        data = np.ascontiguousarray(np.broadcast_to(np.asarray(value, self.dtype),
                                                    (len(rows), *self.item_shape)))
        self._raw.write(memoryview(data).cast("B"), int(rows[0]) * self.row_bytes)

    def take_rows(self, idx) -> DiskArray:
        """A view of rows ``idx`` (ints or a bool mask), sharing the file (no copy)."""
        return DiskArray(self._n_file, self.item_shape, self.dtype, self._raw,
                         rows=self._file_rows(idx))

    def __iter__(self) -> Iterator[np.ndarray]:
        for _, chunk in iter_chunks(self):
            yield from chunk

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        a = self[:]
        return a if dtype is None else a.astype(dtype, copy=False)

    def __reduce__(self):
        return (np.asarray, (self[:],))


def new_rows(n: int, item_shape: tuple[int, ...], dtype, spill: bool | None = None,
             like=None) -> np.ndarray | DiskArray:
    """An ``(n, *item_shape)`` array to fill by rows: on disk when ``spill``; by default
    when ``like`` (rows it is derived from, e.g. a dataset's inputs) is on disk or when
    :func:`should_spill` says it is large; else ``np.empty``."""
    if spill is None:
        spill = is_spilled(like) or should_spill(n, item_shape, dtype)
    if spill:
        arr = DiskArray(n, item_shape, dtype)
        if n:
            arr._raw.write(b"\0", n * arr.row_bytes - 1)  # the file's full size at once
        return arr
    return np.empty((n, *item_shape), dtype)


class RowWriter:
    """Appends rows of one shape to an array of at most ``capacity`` rows (on disk when it
    would be large or ``like`` is, see :func:`new_rows`); :meth:`finish` returns the rows
    written."""

    def __init__(self, capacity: int, item_shape: tuple[int, ...], dtype,
                 spill: bool | None = None, like=None):
        self.array = new_rows(capacity, item_shape, dtype, spill, like)
        self.n = 0

    def append(self, row: np.ndarray) -> None:
        self.array[self.n] = row
        self.n += 1

    def finish(self) -> np.ndarray | DiskArray:
        if self.n == len(self.array):
            return self.array
        if isinstance(self.array, DiskArray):
            return self.array.take_rows(np.arange(self.n))
        return self.array[:self.n].copy()


def take_rows(arr, idx):
    """Rows ``idx`` (ints or a bool mask) of a numpy or disk array; a disk array gives a
    view (nothing read), a numpy array the usual fancy-indexed copy."""
    if isinstance(arr, DiskArray):
        return arr.take_rows(idx)
    return arr[idx]


def is_spilled(arr) -> bool:
    return isinstance(arr, DiskArray)


def iter_chunks(arr, idx=None, chunk: int = CHUNK_ROWS
                ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(row numbers, rows)`` of ``arr`` (all rows, or those of ``idx``: ints or a bool
    mask) in chunks of at most ``chunk`` rows, in order; rows are ``np.ndarray``."""
    if idx is None:
        sel = np.arange(len(arr))
    else:
        sel = np.asarray(idx)
        sel = np.flatnonzero(sel) if sel.dtype == bool else sel.astype(np.int64)
    for i in range(0, len(sel), chunk):
        part = sel[i:i + chunk]
        if len(part) and part[-1] - part[0] == len(part) - 1:
            rows = arr[int(part[0]):int(part[-1]) + 1]  # a run: slice (no numpy copy)
        else:
            rows = arr[part]
        yield part, np.asarray(rows)
