"""load_sketches: a sketch set as an evaluation dataset."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evalkit.inputs.data.pairs import DatasetError
from evalkit.inputs.data.serving import sketch_to_input, target_to_array
from evalkit.inputs.sketches.dataset import load_sketches
from tests.conftest import shared_path

STARTER = Path(__file__).resolve().parents[1] / "human_sketches"


def test_real_set_through_the_serving_contract():
    real = shared_path("sketches", "real")
    ds = load_sketches(real, size=64)
    assert ds.kind == "sketches" and ds.name == "sketches" and len(ds) == 22
    assert ds.inputs.shape == (22, 64, 64, 1) and ds.inputs.dtype == np.float32
    assert ds.targets is None and not ds.has_targets.any()
    assert ds.meta["domain"] == ["car", "person", "shoe"]
    i = ds.ids.index("shoe/shoe_03.png")
    assert np.array_equal(ds.inputs[i, ..., 0], sketch_to_input(real / "shoe" / "shoe_03.png", 64))
    cars = load_sketches(real, size=64, domain="car", name="kids", limit=4)
    assert cars.ids == [f"car/car_0{i}.png" for i in range(1, 5)] and cars.name == "kids"
    assert cars.meta["domain"] == "car"
    assert [e["file"] for e in cars.meta["entries"]] == [f"car/car_0{i}.png" for i in range(1, 5)]
    assert "hand-drawn" in cars.meta["entries"][0]["provenance"]
    assert cars.content_hash != ds.content_hash
    assert load_sketches(real, size=64).content_hash == ds.content_hash
    assert load_sketches(real, size=32).content_hash != ds.content_hash
    with pytest.raises(DatasetError, match="no sketch of domain 'panda'"):
        load_sketches(real, domain="panda")


def test_starter_set_loads_per_domain():
    ds = load_sketches(STARTER, size=256, domain="shoe")
    assert len(ds) >= 12 and all(i.startswith("shoe/") for i in ds.ids)
    assert ds.inputs.min() < 0.2 and np.median(ds.inputs) == 1.0


def _small_set(tmp_path: Path) -> Path:
    root = tmp_path / "set"
    for d in ("car", "shoe"):
        (root / d).mkdir(parents=True)
        for i in range(2):
            shutil.copy(STARTER / d / f"{d}_0{i + 1}.png", root / d / f"{d}_0{i + 1}.png")
    return root


def test_folder_without_manifest(tmp_path: Path):
    root = _small_set(tmp_path)
    (root / "car" / "notes.txt").write_text("not an image")
    ds = load_sketches(root, size=32)
    assert ds.ids == ["car/car_01.png", "car/car_02.png", "shoe/shoe_01.png", "shoe/shoe_02.png"]
    assert [s.file for s in ds.skipped] == ["car/notes.txt"]  # listed, not hidden
    assert "not an image file" in ds.skipped[0].reason
    assert ds.meta["manifest"] is None and ds.meta["domain"] == ["car", "shoe"]
    shoes = load_sketches(root, size=32, domain="shoe")
    assert shoes.ids == ["shoe/shoe_01.png", "shoe/shoe_02.png"]
    flat = load_sketches(root / "car", size=32)  # a plain folder of drawings
    assert flat.ids == ["car_01.png", "car_02.png"]


def test_unreadable_files_are_skipped_and_references_become_targets(tmp_path: Path):
    root = _small_set(tmp_path)
    (root / "car" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n nope")
    photo = np.random.default_rng(0).integers(0, 255, (48, 40, 3)).astype(np.uint8)
    Image.fromarray(photo).save(root / "car" / "car_01_photo.png")
    entries = [
        {"file": "car/car_01.png", "domain": "car", "provenance": "t",
         "reference": "car/car_01_photo.png"},
        {"file": "car/car_02.png", "domain": "car", "provenance": "t"},
        {"file": "car/broken.png", "domain": "car", "provenance": "t"},
        {"file": "car/gone.png", "domain": "car", "provenance": "t"},
        {"file": "shoe/shoe_01.png", "domain": "shoe", "provenance": "t"},
    ]
    (root / "manifest.json").write_text(json.dumps({"sketches": entries}))
    ds = load_sketches(root, size=32, domain="car")
    assert ds.ids == ["car/car_01.png", "car/car_02.png"]
    assert {s.file for s in ds.skipped} == {"car/broken.png", "car/gone.png"}
    assert ds.targets.shape == (2, 32, 32, 3)
    assert ds.has_targets.tolist() == [True, False]
    assert np.array_equal(ds.targets[0], target_to_array(root / "car" / "car_01_photo.png", 32))
    h1 = ds.content_hash
    entries[1]["tags"] = ["changed"]  # the manifest is part of the content
    (root / "manifest.json").write_text(json.dumps({"sketches": entries}))
    assert load_sketches(root, size=32, domain="car").content_hash != h1


def test_unusable_sets(tmp_path: Path):
    with pytest.raises(DatasetError, match="does not exist"):
        load_sketches(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no usable sketch"):
        load_sketches(tmp_path / "empty")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "manifest.json").write_text("{not json")
    with pytest.raises(DatasetError, match="not readable JSON"):
        load_sketches(tmp_path / "bad")


def test_duplicates_outside_paths_and_unlisted_files_are_listed(tmp_path: Path):
    root = _small_set(tmp_path)
    (tmp_path / "secret.png").write_bytes((root / "car" / "car_01.png").read_bytes())
    (root / "car" / "link_out.png").symlink_to(tmp_path / "secret.png")
    (root / "car" / "x.jpg").write_bytes(b"")  # same stem as x.png below, zero bytes
    shutil.copy(root / "car" / "car_02.png", root / "car" / "x.png")
    entries = [
        {"file": "car/car_01.png", "domain": "car", "provenance": "t"},
        {"file": "car/x.png", "domain": "car", "provenance": "t"},
        {"file": "car/x.jpg", "domain": "car", "provenance": "t"},
        {"file": "car/car_01.png", "domain": "car", "provenance": "t"},  # twice
        {"file": str(tmp_path / "secret.png"), "domain": "car", "provenance": "t"},
        {"file": "../secret.png", "domain": "car", "provenance": "t"},
        {"file": "car/link_out.png", "domain": "car", "provenance": "t"},
    ]
    (root / "manifest.json").write_text(json.dumps({"sketches": entries}))
    ds = load_sketches(root, size=32, domain="car")
    assert ds.ids == ["car/car_01.png", "car/x.png"]
    reasons = {s.file: s.reason for s in ds.skipped}
    assert "listed twice in manifest.json (entry 4); the first (entry 1) is used" in \
        reasons["car/car_01.png"]
    assert reasons[str(tmp_path / "secret.png")].startswith("refused: absolute path")
    assert reasons["../secret.png"].startswith("refused: '..'")
    assert reasons["car/link_out.png"].startswith("refused:")
    assert "outside" in reasons["car/link_out.png"]
    assert "car/x.jpg" in reasons  # zero bytes: unreadable
    assert "not listed in manifest.json" in reasons["car/car_02.png"]


def test_inputs_blank_or_inverted_as_served_are_skipped_with_the_cause(tmp_path: Path):
    root = _small_set(tmp_path)
    drawing = np.asarray(Image.open(root / "car" / "car_01.png").convert("L"))
    ink = (255 - drawing).astype(np.uint8)
    la = np.stack([np.zeros_like(ink), ink], -1)  # black strokes on a transparent page
    Image.fromarray(la, "LA").save(root / "car" / "la.png")
    Image.fromarray(drawing.astype(np.uint16) * 257).save(root / "car" / "sixteen.png")
    pal = Image.fromarray((ink > 128).astype(np.uint8), "P")
    pal.putpalette([0, 0, 0, 20, 20, 20] + [0] * 762)
    pal.save(root / "car" / "palette.png", transparency=0)
    ds = load_sketches(root, size=32, domain="car")
    assert ds.ids == ["car/car_01.png", "car/car_02.png"]
    reasons = {s.file: s.reason for s in ds.skipped}
    assert "grey+alpha" in reasons["car/la.png"] and "as served" in reasons["car/la.png"]
    assert "16-bit" in reasons["car/sixteen.png"]
    assert "palette image with transparency" in reasons["car/palette.png"]
