"""evalkit sketches check, the shipped starter set and the stroke drawer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image
from scipy import ndimage as ndi

from benchmarks.example.draw import DOMAIN_SEED_BASE, draw_sketch
from evalkit.cli import cli
from evalkit.inputs.sketches.check import check_set
from evalkit.inputs.sketches.manifest import read_manifest
from tests.conftest import shared_path

STARTER = Path(__file__).resolve().parents[1] / "human_sketches"


def test_real_sketches_pass():
    report = check_set(shared_path("sketches", "real"))
    assert report.ok, [str(p) for p in report.problems]
    assert report.n_files == 22 and len(report.stats) == 22
    widths = [s.stroke_width for s in report.stats]
    median_width = float(np.median(widths))
    assert median_width > 1.0 and median_width < 2.0  # thin pen strokes, measured 1.12-1.54


def test_starter_set_passes_and_is_honest():
    report = check_set(STARTER)
    assert report.ok, [str(p) for p in report.problems]
    manifest = read_manifest(STARTER)
    for domain in ("person", "car", "shoe"):
        entries = [e for e in manifest.entries if e.domain == domain]
        assert len(entries) >= 12
        assert all(e.file.startswith(f"{domain}/") for e in entries)
    for e in manifest.entries:
        assert "drawn procedurally by evalkit's stroke drawer" in e.provenance
        assert f"seed {e.extra['seed']}" in e.provenance
        assert "procedural" in e.tags


def test_drawer_is_deterministic_and_reproduces_the_shipped_set():
    a, va = draw_sketch("car", 7)
    b, vb = draw_sketch("car", 7)
    assert va == vb and np.array_equal(np.asarray(a), np.asarray(b))
    c, _ = draw_sketch("car", 8)
    assert not np.array_equal(np.asarray(a), np.asarray(c))
    for domain in ("person", "car", "shoe"):
        shipped = np.asarray(Image.open(STARTER / domain / f"{domain}_01.png"), dtype=float)
        again = np.asarray(draw_sketch(domain, DOMAIN_SEED_BASE[domain])[0], dtype=float)
        assert np.abs(shipped - again).mean() < 0.5, domain
        # antialiased like an app export: grey levels between ink and paper
        assert len(np.unique(again)) > 20 and again.max() == 255 and again.min() < 60


def _copy_starter(tmp_path: Path, n: int = 6) -> Path:
    """A small valid set: n car sketches of the starter set, with their manifest entries."""
    root = tmp_path / "set"
    (root / "car").mkdir(parents=True)
    data = json.loads((STARTER / "manifest.json").read_text())
    keep = [e for e in data["sketches"] if e["domain"] == "car"][:n]
    for e in keep:
        shutil.copy(STARTER / e["file"], root / e["file"])
    data["sketches"] = keep
    (root / "manifest.json").write_text(json.dumps(data))
    return root


def test_each_problem_is_found_and_named(tmp_path: Path):
    root = _copy_starter(tmp_path)
    assert check_set(root).ok
    data = json.loads((root / "manifest.json").read_text())
    entries = data["sketches"]

    def add(name: str, arr: np.ndarray | None = None, raw: bytes | None = None, **kw) -> None:
        path = root / "car" / name
        if raw is not None:
            path.write_bytes(raw)
        elif arr is not None:
            Image.fromarray(arr).save(path)
        entries.append({"file": f"car/{name}", "domain": "car", "provenance": "test", **kw})

    base = np.asarray(Image.open(root / "car" / "car_01.png"))
    add("dup_bytes.png", raw=(root / "car" / "car_02.png").read_bytes())
    Image.fromarray(np.asarray(Image.open(root / "car" / "car_03.png"))).save(
        root / "car" / "dup_pixels.bmp")
    entries.append({"file": "car/dup_pixels.bmp", "domain": "car", "provenance": "test"})
    add("empty.png", np.full((256, 256), 255, np.uint8))
    add("inverted.png", 255 - base)
    add("unreadable.png", raw=b"\x89PNG\r\n\x1a\n garbage")
    thick = np.where(ndi.binary_dilation(base < 128, iterations=3), 0, 255).astype(np.uint8)
    add("thick.png", thick)
    add("wide.png", np.asarray(Image.fromarray(base).resize((400, 256))))
    entries.append({"file": "car/missing.png", "domain": "car", "provenance": "test"})
    entries.append({"file": "car/car_01.png", "domain": "car", "provenance": ""})  # twice
    entries[0]["provenance"] = "  "
    entries.append({"file": "car/with_ref.png", "domain": "car", "provenance": "t",
                    "reference": "car/photo_missing.jpg"})
    shutil.copy(root / "car" / "car_04.png", root / "car" / "with_ref.png")
    Image.fromarray(np.asarray(Image.open(root / "car" / "car_05.png"))[::-1]).save(
        root / "car" / "stray.png")  # an image nobody listed
    (root / "manifest.json").write_text(json.dumps(data))

    report = check_set(root)
    found = {(p.file, p.check) for p in report.problems}
    expected = {
        ("car/dup_bytes.png", "duplicate"), ("car/dup_pixels.bmp", "duplicate"),
        ("car/empty.png", "empty"), ("car/inverted.png", "polarity"),
        ("car/unreadable.png", "unreadable"), ("car/thick.png", "stroke-width"),
        ("car/wide.png", "not-square"), ("car/missing.png", "missing"),
        ("car/car_01.png", "manifest"), ("car/with_ref.png", "manifest"),
        ("car/stray.png", "unlisted"),
    }
    assert expected <= found, sorted(found - expected)
    # nothing else is flagged: the valid sketches stay clean
    flagged = {f for f, _ in found}
    assert not {f"car/car_0{i}.png" for i in range(2, 7)} & flagged
    assert all(p.message for p in report.problems)

    res = CliRunner().invoke(cli, ["sketches", "check", str(root)])
    assert res.exit_code == 1
    assert res.output.startswith("FAILED") and "car/empty.png: [empty]" in res.output
    res = CliRunner().invoke(cli, ["sketches", "check", str(root), "--json"])
    assert res.exit_code == 1 and json.loads(res.output)["ok"] is False


def test_without_manifest_check_fails_with_the_fix(tmp_path: Path):
    root = _copy_starter(tmp_path)
    (root / "manifest.json").unlink()
    report = check_set(root)
    assert [p.check for p in report.problems] == ["manifest"]
    assert "evalkit sketches import" in report.problems[0].message
    assert len(report.stats) == 6  # the images themselves were still checked


@pytest.mark.parametrize("usage", [["sketches", "check"], ["sketches", "check", "/no/such/dir"]])
def test_check_usage_errors(usage):
    assert CliRunner().invoke(cli, usage).exit_code == 2


def test_check_judges_the_served_input_and_names_the_cause(tmp_path: Path):
    """Blank/inverted *as served* (16-bit, grey+alpha, palette transparency) with the cause;
    a symlink leaving the set; widths measured at --image-size, not on an upscaled copy."""
    root = _copy_starter(tmp_path)
    data = json.loads((root / "manifest.json").read_text())
    base = np.asarray(Image.open(root / "car" / "car_01.png").convert("L"))
    ink = 255 - base
    # 16-bit, pen not quite black: every value > 255, which convert('L') clips to white
    Image.fromarray(np.maximum(base, 20).astype(np.uint16) * 257).save(
        root / "car" / "sixteen.png")
    Image.fromarray(np.stack([np.zeros_like(ink), ink], -1), "LA").save(root / "car" / "la.png")
    pal = Image.fromarray((ink > 128).astype(np.uint8), "P")
    pal.putpalette([0, 0, 0, 30, 30, 30] + [0] * 762)
    pal.save(root / "car" / "palette.png", transparency=0)
    (tmp_path / "outside.png").write_bytes((root / "car" / "car_02.png").read_bytes())
    (root / "car" / "link.png").symlink_to(tmp_path / "outside.png")
    for name in ("sixteen.png", "la.png", "palette.png", "link.png"):
        data["sketches"].append({"file": f"car/{name}", "domain": "car", "provenance": "t"})
    (root / "manifest.json").write_text(json.dumps(data))
    problems = {p.file: p for p in check_set(root).problems}
    assert problems["car/sixteen.png"].check == "empty"
    assert "16-bit" in problems["car/sixteen.png"].message
    assert problems["car/la.png"].check == "empty"  # the service sees an all-black page
    assert "uniformly black" in problems["car/la.png"].message
    assert "grey+alpha" in problems["car/la.png"].message
    assert problems["car/palette.png"].check == "polarity"
    assert "palette image with transparency" in problems["car/palette.png"].message
    assert problems["car/link.png"].check in ("outside", "skipped")
    assert "outside" in problems["car/link.png"].message
    assert not {f"car/car_0{i}.png" for i in range(1, 7)} & set(problems)
    # the same set served at 128: widths are measured at that size (about half)
    w256 = {s.file: s.stroke_width for s in check_set(root).stats}
    w128 = {s.file: s.stroke_width for s in check_set(root, serve_size=128).stats}
    assert all(w128[f] < w256[f] for f in w256 if f in w128)
    res = CliRunner().invoke(cli, ["sketches", "check", str(root), "--image-size", "128"])
    assert res.exit_code == 1 and "16-bit" in res.output
