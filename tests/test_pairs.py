"""Held-out pair loading: AB images, A/ + B/ folders, bad files reported and skipped."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from evalkit.inputs.data.pairs import DatasetError, load_pairs
from tests.conftest import make_ab_folder, shared_path
from tests.seed_reference import serve_sketch


def test_ab_folder_with_bad_files(tmp_path):
    folder = make_ab_folder(tmp_path / "h", n=3, fmt="jpg")
    (folder / "broken.png").write_bytes(b"\x89PNG not really")
    Image.fromarray(np.zeros((10, 21, 3), np.uint8)).save(folder / "odd.png")
    ds = load_pairs(folder, size=32)
    assert ds.ids == ["pair_00.jpg", "pair_01.jpg", "pair_02.jpg"]
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
        Image.fromarray(_edge(20)).save(tmp_path / "A" / f"{stem}.png")
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "B" / "x.jpg")
    ds = load_pairs(tmp_path, size=16)
    assert ds.ids == ["x.png"] and ds.meta["layout"] == "A/B"
    assert [(s.file, s.reason) for s in ds.skipped] == [("A/y.png",
                                                         "no photo with this stem in B/")]


def _edge(side: int) -> np.ndarray:
    """A white square with a black cross: an edge image that is not blank."""
    a = np.full((side, side), 255, np.uint8)
    a[side // 2, 2:-2] = 0
    a[2:-2, side // 2] = 0
    return a


def test_same_stem_files_are_distinct_samples(tmp_path):
    """x.png and x.jpg in one folder: two samples, ids with extension, nothing skipped."""
    folder = make_ab_folder(tmp_path / "h", n=1)
    (folder / "pair_00.png").rename(folder / "x.png")
    Image.open(folder / "x.png").convert("RGB").save(folder / "x.jpg", quality=95)
    ds = load_pairs(folder, size=16)
    assert ds.ids == ["x.jpg", "x.png"] and ds.skipped == []


def test_ambiguous_stems_in_a_b_layout(tmp_path):
    for sub in ("A", "B"):
        (tmp_path / sub).mkdir()
    photo = np.zeros((20, 20, 3), np.uint8)
    for name in ("x.png", "x.jpg", "y.png", "z.png", "z.jpg"):
        Image.fromarray(_edge(20)).save(tmp_path / "A" / name)
    for name in ("x.png", "x.jpg", "y.jpg", "z.webp"):
        Image.fromarray(photo).save(tmp_path / "B" / name)
    (tmp_path / "notes.txt").write_text("hello")
    ds = load_pairs(tmp_path, size=16)
    # same names pair first; one leftover each side pairs; otherwise ambiguous
    assert ds.ids == ["x.jpg", "x.png", "y.png"]
    reasons = {s.file: s.reason for s in ds.skipped}
    assert set(reasons) == {"A/z.png", "A/z.jpg", "B/z.webp", "notes.txt"}
    assert "ambiguous stem 'z'" in reasons["A/z.png"]
    assert "not read in the A/ + B/ layout" in reasons["notes.txt"]


def test_every_file_is_loaded_or_skipped_with_a_reason(tmp_path):
    folder = make_ab_folder(tmp_path / "h", n=2)
    (folder / "readme.txt").write_text("not an image")
    (folder / "sub").mkdir()
    (folder / "loop.png").symlink_to(folder / "loop2.png")
    (folder / "loop2.png").symlink_to(folder / "loop.png")
    (folder / "outside.png").symlink_to(folder / "pair_00.png")
    (tmp_path / "elsewhere.png").write_bytes((folder / "pair_01.png").read_bytes())
    (folder / "away.png").symlink_to(tmp_path / "elsewhere.png")
    blank16 = np.full((20, 40), 65535, np.uint16)
    blank16[5:15, 10] = 0
    Image.fromarray(blank16).save(folder / "sixteen.png")
    frames = [Image.fromarray(np.concatenate([np.stack([_edge(20)] * 3, -1)] * 2, 1) // k)
              for k in (1, 2, 3)]  # frames differ, or Pillow merges them into one
    frames[0].save(folder / "anim.gif", save_all=True, append_images=frames[1:])
    (folder / "detector.json").write_text('{"detector": "fallback-sobel-v1"}')
    ds = load_pairs(folder, size=16)
    assert ds.ids == ["anim.gif", "outside.png", "pair_00.png", "pair_01.png"]
    reasons = {s.file: s.reason for s in ds.skipped}
    assert set(reasons) == {"readme.txt", "sub", "loop.png", "loop2.png", "away.png",
                            "sixteen.png"}
    assert reasons["loop.png"].startswith("symlink loop")
    assert "outside the set" in reasons["away.png"]
    assert "16-bit" in reasons["sixteen.png"] and "blank as served" in reasons["sixteen.png"]
    assert any("anim.gif" in n and "first frame" in n for n in ds.meta["notes"])
    assert ds.meta["edge_detector"] == "fallback-sobel-v1"


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
