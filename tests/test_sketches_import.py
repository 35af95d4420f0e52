"""evalkit sketches import: normalization of real-world drawing files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from evalkit.cli import cli
from evalkit.metrics.adherence import adherence
from evalkit.sketches.check import check_set
from evalkit.sketches.normalize import DEFAULT_MARGIN, NormalizeError, normalize_sketch
from tests.conftest import shared_path


def _drawing(h: int = 300, w: int = 400, width: int = 4) -> np.ndarray:
    """uint8 dark-on-white: a circle, a bar and a dot (float ink map in [0, 1])."""
    yy, xx = np.mgrid[:h, :w]
    ink = np.zeros((h, w))
    r = np.hypot(yy - h * 0.45, xx - w * 0.4)
    ink[np.abs(r - h * 0.25) < width / 2] = 1
    ink[int(h * 0.8):int(h * 0.8) + width, int(w * 0.2):int(w * 0.85)] = 1
    ink[int(h * 0.3):int(h * 0.3) + width * 2, int(w * 0.8):int(w * 0.8) + width * 2] = 1
    return ink


def _bbox(out: np.ndarray) -> tuple[int, int, int, int]:
    rows, cols = np.nonzero(out < 128)
    return rows.min(), rows.max(), cols.min(), cols.max()


def _strokes(out: np.ndarray) -> np.ndarray:
    return out < 128


@pytest.fixture
def clean() -> np.ndarray:
    ink = _drawing()
    return normalize_sketch(Image.fromarray((255 * (1 - ink)).astype(np.uint8)))[0]


def _variants(ink: np.ndarray) -> dict[str, Image.Image]:
    h, w = ink.shape
    grey = (255 * (1 - ink)).astype(np.uint8)
    rgba_black = np.zeros((h, w, 4), np.uint8)
    rgba_black[..., 3] = (255 * ink).astype(np.uint8)
    rgba_white = rgba_black.copy()
    rgba_white[..., :3] = 255
    # photo of paper: light falls off left to right (0.95 -> 0.55), pencil grey 0.25 darker
    light = np.linspace(0.95, 0.55, w)[None, :] * np.ones((h, 1))
    photo = np.clip(light * (1 - 0.7 * ink), 0, 1)
    rng = np.random.default_rng(0)
    photo = np.clip(photo + rng.normal(0, 0.02, photo.shape), 0, 1)
    big = np.full((1200, 1700), 255, np.uint8)  # off-centre on a large, non-square page
    big[700:700 + h, 1200:1200 + w] = grey
    return {
        "grey": Image.fromarray(grey),
        "rgba_black_on_transparent": Image.fromarray(rgba_black, "RGBA"),
        "rgba_white_on_transparent": Image.fromarray(rgba_white, "RGBA"),
        "inverted": Image.fromarray(255 - grey),
        "photo_uneven_light": Image.fromarray((photo * 255).astype(np.uint8)).convert("RGB"),
        "off_centre_large": Image.fromarray(big),
        "sixteen_bit": Image.fromarray((65535 * (1 - ink)).astype(np.uint16)),
    }


def test_every_variant_normalizes_to_the_same_clean_square(tmp_path: Path, clean: np.ndarray):
    ref = _strokes(clean)
    for name, im in _variants(_drawing()).items():
        path = tmp_path / f"{name}.png"
        im.save(path)
        if name == "photo_uneven_light":  # and as a noisy JPEG
            im.save(tmp_path / "photo.jpg", quality=70)
            path = tmp_path / "photo.jpg"
        out, info = normalize_sketch(path)
        assert out.shape == (256, 256) and out.dtype == np.uint8, name
        assert set(np.unique(out)) <= {0, 255}, name
        assert np.median(out) == 255, name
        r0, r1, c0, c1 = _bbox(out)
        # centred, and the longer side spans (1 - 2 margin) of the frame
        assert abs((r0 + r1) / 2 - 127.5) <= 3 and abs((c0 + c1) / 2 - 127.5) <= 3, name
        assert abs(max(r1 - r0, c1 - c0) + 1 - 256 * (1 - 2 * DEFAULT_MARGIN)) <= 4, name
        m = adherence(_strokes(out), ref, tolerance_px=2.0)  # thinned: structure
        assert m.precision > 0.9 and m.recall > 0.9, (name, m)
    assert normalize_sketch(tmp_path / "inverted.png")[1]["polarity"].startswith("inverted")
    assert normalize_sketch(tmp_path / "rgba_white_on_transparent.png")[1]["ink_from"].startswith(
        "alpha")
    assert normalize_sketch(tmp_path / "photo.jpg")[1]["flattened"] is True
    assert normalize_sketch(tmp_path / "grey.png")[1]["flattened"] is False


def test_jpeg_noise_and_specks_do_not_survive(tmp_path: Path, clean: np.ndarray):
    ink = _drawing()
    grey = (255 * (1 - ink)).astype(np.uint8)
    rng = np.random.default_rng(1)
    noisy = grey.astype(int)
    for r, c in rng.integers(0, grey.shape, (30, 2)):  # isolated dark specks
        noisy[r, c] = 40
    Image.fromarray(noisy.astype(np.uint8)).save(tmp_path / "n.jpg", quality=40)
    out, info = normalize_sketch(tmp_path / "n.jpg")
    assert info["specks_removed_px"] > 0
    m = adherence(_strokes(out), _strokes(clean), tolerance_px=2.0)
    assert m.precision > 0.9 and m.recall > 0.9


def test_thin_lines_on_a_large_scan_do_not_vanish():
    ink = _drawing(h=1500, w=2000, width=3)  # 3-px pencil, shrunk about 8x
    out, info = normalize_sketch(Image.fromarray((255 * (1 - ink)).astype(np.uint8)))
    assert info["scale"] < 0.2 and info["coverage_threshold"] < 0.5
    # the circle stays a closed loop: its inside is a separate white region
    from scipy import ndimage as ndi
    _, n_white = ndi.label(out == 255)
    assert n_white >= 2


def test_empty_drawings_are_refused(tmp_path: Path):
    rng = np.random.default_rng(0)
    blank = np.clip(250 + rng.normal(0, 2, (200, 200)), 0, 255).astype(np.uint8)
    Image.fromarray(blank).save(tmp_path / "blank.jpg", quality=60)
    with pytest.raises(NormalizeError, match="no strokes"):
        normalize_sketch(tmp_path / "blank.jpg")


def test_cli_import_real_sketches_then_check_passes(tmp_path: Path):
    real = shared_path("sketches", "real")
    drawn = shared_path("seed", "examples", "bmw_edge_drawn.jpg")
    into = tmp_path / "set"
    runner = CliRunner()
    for domain in ("car", "person", "shoe"):
        res = runner.invoke(cli, ["sketches", "import", str(real / domain), "--domain", domain,
                                  "--into", str(into)])
        assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["sketches", "import", str(drawn), "--domain", "car", "--into",
                              str(into), "--provenance", "seed example", "--tag", "bmw"])
    assert res.exit_code == 0, res.output
    manifest = json.loads((into / "manifest.json").read_text())["sketches"]
    assert len(manifest) == 23
    by_file = {e["file"]: e for e in manifest}
    assert "hand-drawn by the seed project's team" in by_file["car/car_01.png"]["provenance"]
    bmw = by_file["car/bmw_edge_drawn.png"]
    assert bmw["provenance"].startswith("seed example") and "bmw" in bmw["tags"]
    assert bmw["source_sha256"] and bmw["normalization"]["size"] == 256
    for e in manifest:
        im = np.asarray(Image.open(into / e["file"]))
        assert im.shape == (256, 256) and set(np.unique(im)) <= {0, 255}
    report = check_set(into)
    assert report.ok, [str(p) for p in report.problems]
    res = runner.invoke(cli, ["sketches", "check", str(into)])
    assert res.exit_code == 0 and res.output.startswith("OK"), res.output
    # re-importing the same file replaces its entry instead of adding a copy
    res = runner.invoke(cli, ["sketches", "import", str(drawn), "--domain", "car", "--into",
                              str(into)])
    assert res.exit_code == 0
    assert len(json.loads((into / "manifest.json").read_text())["sketches"]) == 23


def test_cli_import_failures_and_usage(tmp_path: Path):
    good = tmp_path / "good.png"
    Image.fromarray((255 * (1 - _drawing())).astype(np.uint8)).save(good)
    Image.new("L", (64, 64), 255).save(tmp_path / "empty.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG not really")
    runner = CliRunner()
    res = runner.invoke(cli, ["sketches", "import", str(good), str(tmp_path / "empty.png"),
                              str(tmp_path / "broken.png"), "--domain", "car", "--into",
                              str(tmp_path / "set")])
    assert res.exit_code == 1
    assert "empty.png" in res.output and "broken.png" in res.output
    assert len(json.loads((tmp_path / "set" / "manifest.json").read_text())["sketches"]) == 1
    res = runner.invoke(cli, ["sketches", "import", str(tmp_path / "nope.png"), "--domain", "car",
                              "--into", str(tmp_path / "set")])
    assert res.exit_code == 2
    res = runner.invoke(cli, ["sketches", "import", str(good), "--domain", "../car", "--into",
                              str(tmp_path / "set")])
    assert res.exit_code == 2
