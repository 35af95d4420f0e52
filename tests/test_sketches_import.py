"""evalkit sketches import: normalization of real-world drawing files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from evalkit.cli import cli
from evalkit.core.hashing import file_sha256
from evalkit.inputs.data.serving import sketch_to_input
from evalkit.inputs.sketches.check import check_set
from evalkit.inputs.sketches.normalize import DEFAULT_MARGIN, NormalizeError
from evalkit.inputs.sketches.normalize import normalize_sketch as _normalize
from evalkit.measure.adherence import adherence
from tests.conftest import shared_path


def normalize_sketch(src, **kw):
    """Scan mode with --fit (crop to the strokes), the framing these tests check."""
    return _normalize(src, fit=True, **kw)


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
    # the seed's drawn car is a clean JPEG drawing: digital, kept as the JPEG it is
    bmw = by_file["car/bmw_edge_drawn.jpg"]
    assert bmw["provenance"].startswith("seed example") and "bmw" in bmw["tags"]
    assert bmw["import"]["mode"] == "digital" and "normalization" not in bmw
    assert (into / "car" / "bmw_edge_drawn.jpg").read_bytes() == drawn.read_bytes()
    for e in manifest:  # every real drawing: digital, byte-identical to its source
        src = drawn if e["file"].startswith("car/bmw") else real / e["file"]
        assert e["import"]["mode"] == "digital", e["file"]
        assert (into / e["file"]).read_bytes() == src.read_bytes(), e["file"]
        assert e["source_sha256"] == file_sha256(src)
    assert "digital (clean background" in res.output and "kept byte for byte" in res.output
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
                              str(tmp_path / "set"), "--mode", "scan"])
    assert res.exit_code == 1
    assert "empty.png" in res.output and "broken.png" in res.output
    assert len(json.loads((tmp_path / "set" / "manifest.json").read_text())["sketches"]) == 1
    res = runner.invoke(cli, ["sketches", "import", str(tmp_path / "nope.png"), "--domain", "car",
                              "--into", str(tmp_path / "set")])
    assert res.exit_code == 2
    res = runner.invoke(cli, ["sketches", "import", str(good), "--domain", "../car", "--into",
                              str(tmp_path / "set")])
    assert res.exit_code == 2
    res = runner.invoke(cli, ["sketches", "import", str(good), "--domain", "car", "--into",
                              str(tmp_path / "set"), "--mode", "digital", "--fit"])
    assert res.exit_code == 2 and "--fit" in res.output


def _moon(side: int = 256) -> tuple[np.ndarray, int]:
    """A small crescent moon in a corner (2-3 px pen) and star dots: uint8 dark on white.
    Returns the image and the number of star dots."""
    yy, xx = np.mgrid[:side, :side]
    img = np.full((side, side), 255, np.uint8)
    outer = np.abs(np.hypot(yy - 40, xx - 40) - 22) < 1.1
    inner = np.abs(np.hypot(yy - 34, xx - 50) - 18) < 1.1
    img[(outer & (np.hypot(yy - 34, xx - 50) > 18)) | (inner & (np.hypot(yy - 40, xx - 40) < 22))] = 0
    n = 0
    for r in range(90, side - 10, 26):
        for c in range(20 + (r % 3) * 7, side - 10, 31):
            img[r - 1:r + 2, c - 1:c + 2] = 0  # a 3x3 pen dot
            n += 1
    return img, n


def test_small_drawing_imports_digital_byte_identical_and_passes_check(tmp_path: Path):
    """The issue's case: a small moon in a corner of a 256 canvas, star dots around it."""
    img, n_dots = _moon()
    src = tmp_path / "moon.png"
    Image.fromarray(img).convert("RGBA").save(src)  # an app export
    into = tmp_path / "set"
    res = CliRunner().invoke(cli, ["sketches", "import", str(src), "--domain", "space",
                                   "--into", str(into), "--provenance", "test"])
    assert res.exit_code == 0, res.output
    out = into / "space" / "moon.png"
    assert out.read_bytes() == src.read_bytes()  # byte-identical
    from evalkit.inputs.data.files import served_sketch

    served, _ = served_sketch(out, 256)
    np.testing.assert_array_equal(served, sketch_to_input(src, 256))  # the contract on the source
    report = check_set(into)
    assert report.ok, [str(p) for p in report.problems]
    assert report.stats[0].stroke_width < 4  # measured as served, not on an upscaled copy
    # scan mode leaves it alone too: no crop, no upscale, every star dot kept
    out_scan, info = _normalize(src)
    from scipy import ndimage as ndi

    _, n_marks = ndi.label(out_scan < 128, structure=np.ones((3, 3)))
    assert n_marks == n_dots + 1 and info["specks_removed"] == 0
    assert not info["fit"] and info["scale"] == 1.0
    # even --fit (crop to the strokes, opt-in) keeps the stars far from the moon
    out_fit, info = normalize_sketch(src)
    assert info["fit"] and ndi.label(out_fit < 128, structure=np.ones((3, 3)))[1] == n_dots + 1


def test_scan_mode_keeps_pen_dots_and_removes_specks_too_small_to_serve():
    """A 1024 px scan: 6x6 pen dots (under the 2x2-served-px speck size) are as dark and as
    wide as the 9 px strokes and stay; 1 px dark specks go."""
    from scipy import ndimage as ndi

    img, n_dots = _moon()
    big = np.asarray(Image.fromarray(img).resize((1024, 1024), Image.NEAREST)).copy()
    dots = ndi.label(big[300:] < 128)[0]  # redraw each 12x12 dot as 6x6
    for sl in ndi.find_objects(dots):
        big[300:][sl] = 255
        r, c = sl[0].start + 3, sl[1].start + 3
        big[300:][r:r + 6, c:c + 6] = 0
    rng = np.random.default_rng(3)
    for r, c in rng.integers(320, 1000, (40, 2)):
        if big[r - 3:r + 4, c - 3:c + 4].min() == 255:
            big[r, c] = 0  # isolated dark speck, 1 px
    out, info = _normalize(Image.fromarray(big))
    assert info["small_marks_kept"] >= n_dots - 2 and info["specks_removed"] >= 30
    _, n_marks = ndi.label(out < 128, structure=np.ones((3, 3)))
    assert n_marks >= n_dots - 2 + 1


def test_auto_mode_picks_scan_for_photos_and_digital_refuses_what_serves_black(tmp_path: Path):
    from evalkit.inputs.sketches.importer import ImportRefused, import_drawing

    ink = _drawing()
    light = np.linspace(0.95, 0.55, ink.shape[1])[None, :] * np.ones((ink.shape[0], 1))
    photo = (np.clip(light * (1 - 0.7 * ink), 0, 1) * 255).astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "photo.jpg", quality=80)
    res = import_drawing(tmp_path / "photo.jpg")
    assert res.mode == "scan" and "uneven background" in res.reason
    assert any("flattened" in c for c in res.changes)
    la = np.stack([np.zeros(ink.shape, np.uint8), (255 * ink).astype(np.uint8)], -1)
    Image.fromarray(la, "LA").save(tmp_path / "la.png")
    with pytest.raises(ImportRefused, match="grey\\+alpha"):
        import_drawing(tmp_path / "la.png")
    assert import_drawing(tmp_path / "la.png", mode="scan").mode == "scan"
