"""Shared fixtures: tiny seed-format runs and held-out sets made on the fly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED = Path(__file__).resolve().parents[1].parent / "shared"


def shared_path(*parts: str) -> Path:
    """A path in ../shared, or skip the test when it is absent (a user's clone)."""
    p = SHARED.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"{p} not available (the real data lives in ../shared)")
    return p


def make_ab_folder(folder: Path, n: int = 6, half: int = 40, seed: int = 0,
                   fmt: str = "png") -> Path:
    """n AB images: random strokes (A) and colour blobs (B), halves ``half`` px."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        a = np.full((half, half), 255, np.uint8)
        for _ in range(4):
            r, c = rng.integers(2, half - 2, 2)
            a[r, max(0, c - 8):c + 8] = 0
            a[max(0, r - 8):r + 8, c] = 0
        b = rng.integers(0, 255, (half, half, 3)).astype(np.uint8)
        b[: half // 2] = rng.integers(0, 255, 3)
        ab = np.concatenate([np.stack([a] * 3, -1), b], axis=1)
        Image.fromarray(ab).save(folder / f"pair_{i:02d}.{fmt}")
    return folder


@pytest.fixture
def heldout_dir(tmp_path: Path) -> Path:
    return make_ab_folder(tmp_path / "heldout")


@pytest.fixture
def seed_run(tmp_path: Path) -> Path:
    """A run folder with ckpt-1..3 written by the independent seed-like implementation."""
    from tests.seed_reference import save_seed_checkpoint

    run = tmp_path / "run"
    run.mkdir()
    save_seed_checkpoint(run, n=3, hidden=4)
    return run
