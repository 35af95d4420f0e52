"""Held-out pair loading: AB images, A/ + B/ folders, bad files reported and skipped."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from evalkit.data.pairs import DatasetError, load_pairs
from tests.conftest import make_ab_folder, shared_path
from tests.seed_reference import serve_sketch


def test_ab_folder_with_bad_files(tmp_path):
    folder = make_ab_folder(tmp_path / "h", n=3, fmt="jpg")
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    Image.fromarray(np.zeros((10, 21, 3), np.uint8)).save(folder / "odd.png")
    ds = load_pairs(folder, size=32)
    assert ds.ids == ["pair_00", "pair_01", "pair_02"]
    assert ds.inputs.shape == (3, 32, 32, 1) and ds.targets.shape == (3, 32, 32, 3)
    reasons = {p.file.split("/")[-1]: p.reason for p in ds.skipped}
    assert set(reasons) == {"broken.png", "odd.png"}
    assert "even" in reasons["odd.png"]


def test_real_seed_training_pair(tmp_path):
    src = shared_path("seed", "examples", "combined_bmw.jpg")
    (tmp_path / "h").mkdir()
    (tmp_path / "h" / "bmw.jpg").write_bytes(src.read_bytes())
    ds = load_pairs(tmp_path / "h", size=64)
    with Image.open(src) as im:
        w, h = im.size
        a = im.crop((0, 0, w // 2, h))
        np.testing.assert_array_equal(ds.inputs[0, ..., 0], serve_sketch(a, 64))
    # the edge half is mostly white, the photo half is not
    assert ds.inputs.mean() > 0.8


def test_a_b_folders_match_stems(tmp_path):
    for sub in ("A", "B"):
        (tmp_path / sub).mkdir()
    for stem in ("x", "y"):
        Image.fromarray(np.full((20, 20), 255, np.uint8)).save(tmp_path / "A" / f"{stem}.png")
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "B" / "x.jpg")
    ds = load_pairs(tmp_path, size=16)
    assert ds.ids == ["x"] and ds.meta["layout"] == "A/B"
    assert [s.reason for s in ds.skipped] == ["no photo with this stem in B/"]


def test_hash_depends_on_content_and_size(tmp_path):
    folder = make_ab_folder(tmp_path / "h", n=2)
    h1 = load_pairs(folder, size=32).content_hash
    assert load_pairs(folder, size=32).content_hash == h1
    assert load_pairs(folder, size=16).content_hash != h1
    make_ab_folder(folder, n=2, seed=5)
    assert load_pairs(folder, size=32).content_hash != h1


def test_empty_or_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_pairs(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no usable image pairs"):
        load_pairs(tmp_path / "empty")
