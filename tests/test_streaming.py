"""Streaming datasets (issue 13, memory flat in data size): rows on disk give the very same
results as rows in memory, and the hot path never holds a whole dataset's images.

``EVALKIT_SPILL_MB=0`` forces every array to disk, so tiny test data takes the large-data
path. The peak-memory figure itself is measured by ``benchmarks/bench_memory.py``.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from evalkit.inputs.data import samples
from evalkit.inputs.data.samples import DiskArray, RowWriter, iter_chunks, new_rows, take_rows
from tests.conftest import make_ab_folder
from tests.results_compare import assert_same_results

ROOT = Path(__file__).resolve().parents[1]
SIZE = 32


def _disk(a: np.ndarray) -> DiskArray:
    d = new_rows(len(a), a.shape[1:], a.dtype, spill=True)
    d[:] = a
    return d


def test_disk_array_indexes_like_numpy():
    a = np.random.default_rng(0).integers(0, 255, (11, 4, 5, 3)).astype(np.uint8)
    d = _disk(a)
    assert isinstance(d, DiskArray) and d.shape == a.shape and len(d) == 11 and d.ndim == 4
    mask = np.array([1, 0, 1, 1, 0, 0, 0, 1, 0, 1, 1], bool)
    for key in (0, 10, -1, slice(None), slice(2, 7), slice(1, None, 3), [3, 1, 1, 9],
                np.array([], np.int64), mask):
        np.testing.assert_array_equal(d[key], a[key])
    np.testing.assert_array_equal(d[2, :, 1], a[2, :, 1])
    np.testing.assert_array_equal(d[[4, 5], 0], a[[4, 5], 0])
    v = d.take_rows(mask)  # a view: nothing read, the same rows
    np.testing.assert_array_equal(v[:], a[mask])
    np.testing.assert_array_equal(v.take_rows([2, 0])[:], a[mask][[2, 0]])
    np.testing.assert_array_equal(np.asarray(d), a)
    assert isinstance(pickle.loads(pickle.dumps(v)), np.ndarray)  # Ray gets the values
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(v)), a[mask])
    with pytest.raises(IndexError):
        d[11]
    with pytest.raises(IndexError):
        d[mask[:3]]


def test_disk_array_writes_rows_and_removes_its_file():
    w = RowWriter(6, (2, 2), np.float32, spill=True)
    rows = [np.full((2, 2), i, np.float32) for i in range(4)]
    for r in rows:
        w.append(r)
    d = w.finish()  # 4 of 6 rows written: a view of those
    assert isinstance(d, DiskArray) and len(d) == 4
    np.testing.assert_array_equal(d[:], np.stack(rows))
    path = Path(d._raw.path)
    assert path.is_file() and path.parent == samples.spill_dir()
    del d, w
    assert not path.exists()


def test_iter_chunks_covers_the_selected_rows_in_order():
    a = np.arange(50).reshape(50, 1)
    mask = np.arange(50) % 3 == 0
    for arr in (a, _disk(a)):
        got = list(iter_chunks(arr, mask, chunk=4))
        assert all(len(idx) <= 4 for idx, _ in got)
        np.testing.assert_array_equal(np.concatenate([i for i, _ in got]), np.flatnonzero(mask))
        np.testing.assert_array_equal(np.concatenate([r for _, r in got])[:, 0],
                                      np.flatnonzero(mask))
    np.testing.assert_array_equal(take_rows(a, [2, 4]), a[[2, 4]])


def test_spill_threshold_follows_the_environment(monkeypatch):
    monkeypatch.setenv(samples.SPILL_ENV, "1")  # 1 MiB
    assert not samples.should_spill(10, (100, 100), np.uint8)
    assert samples.should_spill(200, (100, 100), np.uint8)
    monkeypatch.setenv(samples.SPILL_ENV, "0")
    assert samples.should_spill(1, (1,), np.uint8)
    monkeypatch.setenv(samples.SPILL_ENV, "junk")  # the default, not a crash
    assert samples.spill_limit_bytes() == int(samples.DEFAULT_SPILL_MB * 2**20)


def test_loaders_spill_large_datasets_with_the_same_rows(tmp_path, monkeypatch):
    from evalkit.inputs.data.pairs import load_pairs
    from tests.test_domains import _sketch_set

    held = make_ab_folder(tmp_path / "h", n=5, half=SIZE)
    sk = _sketch_set(tmp_path / "s")
    from evalkit.inputs.sketches.dataset import load_sketches

    mem = load_pairs(held, size=SIZE), load_sketches(sk, size=SIZE, domain="car")
    monkeypatch.setenv(samples.SPILL_ENV, "0")
    disk = load_pairs(held, size=SIZE), load_sketches(sk, size=SIZE, domain="car")
    for m, d in zip(mem, disk, strict=True):
        assert isinstance(d.inputs, DiskArray) and not isinstance(m.inputs, DiskArray)
        assert d.content_hash == m.content_hash and d.ids == m.ids
        np.testing.assert_array_equal(d.inputs[:], m.inputs)
        assert (d.targets is None) == (m.targets is None)
        if m.targets is not None:
            np.testing.assert_array_equal(d.targets[:], m.targets)
        np.testing.assert_array_equal(d.input_uint8([1, 0]), m.input_uint8([1, 0]))
        np.testing.assert_array_equal(d.input_uint8(1), m.input_uint8()[1])


def test_generation_streams_and_gives_the_same_outputs(tmp_path, monkeypatch):
    """Chunked generation: the same served outputs and raw L1 whether rows live in memory
    or on disk; the runner never sees more than one chunk of rows at a time."""
    from evalkit.execute.generate import generate
    from evalkit.inputs.checkpoints.load import infer_architecture, read_shapes
    from evalkit.inputs.data.pairs import load_pairs
    from evalkit.inputs.models.runner import Runner
    from tests.seed_reference import save_seed_checkpoint

    run = tmp_path / "run"
    run.mkdir()
    save_seed_checkpoint(run, n=1, hidden=4)
    held = make_ab_folder(tmp_path / "h", n=samples.CHUNK_ROWS + 5, half=SIZE)
    runner = Runner(infer_architecture(read_shapes(run / "ckpt-1")), SIZE)
    runner.load(run / "ckpt-1")
    seen: list[int] = []
    real_run = runner.run
    monkeypatch.setattr(runner, "run", lambda x, **k: seen.append(len(x)) or real_run(x, **k))
    out_m, l1_m = generate(runner, load_pairs(held, size=SIZE), batch_size=4)
    monkeypatch.setenv(samples.SPILL_ENV, "0")
    out_d, l1_d = generate(runner, load_pairs(held, size=SIZE), batch_size=4)
    assert isinstance(out_d, DiskArray) and isinstance(out_m, np.ndarray)
    np.testing.assert_array_equal(out_d[:], out_m)
    np.testing.assert_array_equal(l1_d, l1_m)
    assert max(seen) <= samples.CHUNK_ROWS and sum(seen) == 2 * len(out_m)
    whole = real_run(load_pairs(held, size=SIZE).inputs, batch_size=4)  # one pass, old way
    from evalkit.inputs.data.serving import output_to_uint8

    np.testing.assert_array_equal(output_to_uint8(whole), out_m)


def _cmd(base: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "evalkit.cli", "run", str(base / "checkpoints"),
            "--heldout", str(base / "heldout"), "--sketches", str(base / "sketches"),
            "--out", str(out), "--image-size", str(SIZE), "--no-report", *extra]


@pytest.mark.slow
def test_a_run_with_every_array_on_disk_gives_identical_results(tmp_path):
    """The whole run (two domains, held-out and sketches, every metric family that runs
    offline plus FID/KID with a custom extractor) to the last digit, rows in memory vs on
    disk; the cached outputs are read back (a metric-only re-run) on the disk path too."""
    from tests.seed_reference import save_seed_checkpoint
    from tests.test_domains import _sketch_set
    from tests.test_tracks_e2e import _extractor

    base = tmp_path / "svc"
    for k, d in enumerate(("car", "shoe")):
        (base / "checkpoints" / d).mkdir(parents=True)
        save_seed_checkpoint(base / "checkpoints" / d, n=2, hidden=4, seed=10 * k)
        make_ab_folder(base / "heldout" / d, n=samples.CHUNK_ROWS + 3 + k, half=SIZE, seed=k)
    _sketch_set(base / "sketches")
    ext = _extractor(tmp_path / "tiny.pt")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    outs = {}
    for label, spill in (("memory", "100000"), ("disk", "0")):
        outs[label] = tmp_path / label
        r = subprocess.run(_cmd(base, outs[label], "--feature-extractor", str(ext)),
                           env={**env, samples.SPILL_ENV: spill}, capture_output=True,
                           text=True, timeout=600)
        assert r.returncode == 0, r.stderr[-3000:]
    assert_same_results(outs["memory"], outs["disk"])
    # from the output cache, on disk: the store removed, nothing regenerated, same values
    manifests = {p: p.stat().st_mtime_ns for p in outs["disk"].glob("outputs/*/*/manifest.json")}
    (outs["disk"] / "results.sqlite").unlink()
    r = subprocess.run(_cmd(base, outs["disk"], "--feature-extractor", str(ext)),
                       env={**env, samples.SPILL_ENV: "0"}, capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert {p: p.stat().st_mtime_ns for p in manifests} == manifests
    assert_same_results(outs["memory"], outs["disk"])


def test_a_killed_processs_spill_folder_and_feature_temp_are_removed(tmp_path, monkeypatch):
    """kill -9 skips atexit: the next process removes the dead one's spill folder (which
    may hold gigabytes) and its half-written feature file, and keeps live ones'."""
    import tempfile

    from evalkit.measure.features import FeatureCache

    proc = subprocess.Popen([sys.executable, "-c", "pass"])  # a process that has ended
    proc.wait()
    dead = proc.pid
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(samples, "_spill_dir", None)
    stale = tmp_path / f"evalkit-spill-abc.tmp{dead}"
    live = tmp_path / f"evalkit-spill-def.tmp{os.getppid()}"
    for d in (stale, live):
        d.mkdir()
        (d / "x.rows").write_bytes(b"\0" * 10)
    new = samples.spill_dir()
    assert not stale.exists() and live.exists() and new.parent == tmp_path
    assert new.name.endswith(f".tmp{os.getpid()}")
    feats = tmp_path / "features" / "fake"
    feats.mkdir(parents=True)
    (feats / f"k.npy.tmp{dead}").write_bytes(b"half")
    (feats / "k.npy").write_bytes(b"kept")
    FeatureCache(tmp_path / "features")
    assert sorted(p.name for p in feats.iterdir()) == ["k.npy"]


def test_the_real_sketches_stream_from_disk_with_the_same_served_rows(monkeypatch):
    """The seed's 22 real drawings (odd sizes, JPEG and PNG): on disk, every served row
    and the dataset's identity are those of the in-memory load, per domain."""
    from evalkit.inputs.sketches.dataset import load_sketches
    from tests.conftest import shared_path

    real = shared_path("sketches", "real")
    for domain in ("car", "person", "shoe"):
        mem = load_sketches(real, size=256, domain=domain)
        monkeypatch.setenv(samples.SPILL_ENV, "0")
        disk = load_sketches(real, size=256, domain=domain)
        monkeypatch.delenv(samples.SPILL_ENV)
        assert isinstance(disk.inputs, DiskArray) and len(disk) == len(mem) > 0
        assert disk.ids == mem.ids and disk.content_hash == mem.content_hash
        for idx, rows in iter_chunks(disk.inputs, chunk=3):
            np.testing.assert_array_equal(rows, mem.inputs[idx])
