"""One judgement of a served drawing: `sketches check` and `run` cannot disagree (issue 23.1)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image, ImageDraw, ImageFilter

from evalkit.cli import cli
from evalkit.inputs.sketches.check import check_set
from evalkit.inputs.sketches.dataset import load_sketches
from tests.conftest import shared_path

STARTER = Path(__file__).resolve().parents[1] / "human_sketches"
RUN_ERRORS = {"unreadable", "empty", "polarity"}


def app_export(side: int, pen: float, seed: int, background: tuple[int, int, int] = (0, 0, 0)
               ) -> Image.Image:
    """An app-style export: thin anti-aliased black strokes (``pen`` px) on a transparent
    ``side`` x ``side`` RGBA canvas whose hidden colour is ``background``."""
    rng = np.random.default_rng(seed)
    mask = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(mask)
    for _ in range(6):
        pts = [tuple(int(v) for v in rng.integers(side // 8, side * 7 // 8, 2))
               for _ in range(5)]
        draw.line(pts, fill=255, width=max(1, round(pen)), joint="curve")
    alpha = np.asarray(mask.filter(ImageFilter.GaussianBlur(0.6)))  # anti-aliased edges
    rgb = np.where(alpha[..., None] > 0, 0, np.array(background, np.uint8)).astype(np.uint8)
    return Image.fromarray(np.dstack([rgb, alpha]), "RGBA")


def _mixed_set(root: Path, size: int = 256) -> dict[str, str | None]:
    """A set of usable, faint, blank, inverted, 16-bit, grey+alpha and unreadable drawings;
    returns file -> the error code expected at ``size`` (None: usable)."""
    (root / "car").mkdir(parents=True)
    data = json.loads((STARTER / "manifest.json").read_text())
    keep = [e for e in data["sketches"] if e["domain"] == "car"][:3]
    expected: dict[str, str | None] = {}
    for e in keep:
        shutil.copy(STARTER / e["file"], root / e["file"])
        expected[e["file"]] = None
    base = np.asarray(Image.open(root / keep[0]["file"]).convert("L"))

    def add(name: str, code: str | None, im: Image.Image | None = None,
            raw: bytes | None = None) -> None:
        path = root / "car" / name
        if raw is not None:
            path.write_bytes(raw)
        else:
            im.save(path)
        keep.append({"file": f"car/{name}", "domain": "car", "provenance": "test"})
        expected[f"car/{name}"] = code

    add("app_2048.png", None, app_export(2048, 4, 1))
    add("app_1024_white.png", None, app_export(1024, 2, 2, (255, 255, 255)))
    add("hairline_2048.png", None, app_export(2048, 1.5, 3))  # faint at 64, scored
    add("blank.png", "empty", Image.new("L", (256, 256), 255))
    add("dot.png", "empty", Image.fromarray(np.pad(np.zeros((3, 3), np.uint8), 126,
                                                   constant_values=255)))
    add("inverted.png", "polarity", Image.fromarray(255 - base))
    # 16-bit, pen not quite black: convert('L') clips every value to white
    add("sixteen.png", "empty", Image.fromarray(np.maximum(base, 20).astype(np.uint16) * 257))
    # 16-bit with black stroke cores: those survive, so the service sees a drawing (warned)
    # (at 64 px the few black cores shrink to almost no ink: nearly blank as served)
    add("sixteen_cores.png", "empty" if size < 256 else None, Image.fromarray(base.astype(np.uint16) * 257))
    add("la.png", "empty", Image.fromarray(np.stack([np.zeros_like(base), 255 - base], -1),
                                           "LA"))
    add("broken.png", "unreadable", raw=b"\x89PNG\r\n\x1a\n not a png")
    data["sketches"] = keep
    (root / "manifest.json").write_text(json.dumps(data))
    return expected


@pytest.mark.parametrize("size", [64, 256])
def test_check_and_run_give_every_file_the_same_verdict(tmp_path: Path, size: int):
    root = tmp_path / "set"
    expected = _mixed_set(root, size)
    report = check_set(root, serve_size=size)
    check_errors = {p.file: p.check for p in report.errors}
    ds = load_sketches(root, size=size)
    run_skipped = {s.file for s in ds.skipped}
    assert set(ds.ids) | run_skipped == set(expected)
    assert set(check_errors) == run_skipped, (check_errors, run_skipped)
    assert set(ds.ids) == {f for f in expected if f not in check_errors}
    assert set(check_errors.values()) <= RUN_ERRORS
    # and the verdicts are the intended ones, at either size
    assert check_errors == {f: c for f, c in expected.items() if c}
    assert size < 256 or any(p.file == "car/sixteen_cores.png" and p.check == "mode"
                             and "16-bit" in p.message for p in report.warnings)
    for s in ds.skipped:  # run names the same cause
        msg = next(p.message for p in report.errors if p.file == s.file)
        assert s.reason.split(";")[0] in msg


def test_faint_at_64_is_a_warning_with_advice_not_an_error(tmp_path: Path):
    root = tmp_path / "set"
    _mixed_set(root, 64)
    report = check_set(root, serve_size=64)
    faint = [p for p in report.warnings if p.check == "faint"]
    assert {p.file for p in faint} >= {"car/hairline_2048.png"}
    for p in report.problems:
        assert "redraw" not in p.message
    assert all("evaluate at 256, the served size" in p.message for p in faint)
    assert "vanish below 16.0 px on this 2048x2048 canvas at 64 px" in next(
        p.message for p in faint if p.file == "car/hairline_2048.png")


def test_style_heuristics_warn_exit_0_unless_strict(tmp_path: Path):
    root = tmp_path / "set"
    (root / "car").mkdir(parents=True)
    data = json.loads((STARTER / "manifest.json").read_text())
    keep = [e for e in data["sketches"] if e["domain"] == "car"][:5]
    for e in keep:
        shutil.copy(STARTER / e["file"], root / e["file"])
    shutil.copy(root / keep[0]["file"], root / "car" / "again.png")  # a duplicate
    base = np.asarray(Image.open(root / keep[1]["file"]).convert("L"))
    thick = Image.fromarray(base).filter(ImageFilter.MinFilter(7))  # a much wider pen
    thick.save(root / "car" / "thick.png")
    keep += [{"file": f"car/{n}", "domain": "car", "provenance": "t"}
             for n in ("again.png", "thick.png")]
    data["sketches"] = keep
    (root / "manifest.json").write_text(json.dumps(data))
    report = check_set(root)
    assert report.ok and not report.errors
    assert {(p.file, p.check) for p in report.warnings} >= {
        ("car/again.png", "duplicate"), ("car/thick.png", "stroke-width")}
    assert all("redraw" not in p.message for p in report.problems)
    res = CliRunner().invoke(cli, ["sketches", "check", str(root)])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("OK") and "warning car/thick.png: [stroke-width]" in res.output
    res = CliRunner().invoke(cli, ["sketches", "check", str(root), "--strict"])
    assert res.exit_code == 1 and res.output.startswith("FAILED")
    ds = load_sketches(root)  # run scores every one of them
    assert set(ds.ids) == {e["file"] for e in keep}


def _real_plus_app_exports(tmp_path: Path) -> Path:
    root = tmp_path / "real"
    shutil.copytree(shared_path("sketches", "real"), root)
    data = json.loads((root / "manifest.json").read_text())
    (root / "app").mkdir()
    for i, (side, pen, bg) in enumerate([(1024, 3, (0, 0, 0)), (1536, 4, (255, 255, 255)),
                                         (2048, 4, (0, 0, 0)), (2048, 6, (255, 255, 255)),
                                         (2048, 2.5, (0, 0, 0))]):
        app_export(side, pen, 10 + i, bg).save(root / "app" / f"export_{i}.png")
        data["sketches"].append({"file": f"app/export_{i}.png", "domain": "app",
                                 "provenance": "drawn like an app exports (test)"})
    (root / "manifest.json").write_text(json.dumps(data))
    return root


def test_real_drawings_and_app_exports_have_no_error_at_256(tmp_path: Path):
    root = _real_plus_app_exports(tmp_path)
    report = check_set(root, serve_size=256)
    assert report.n_files == 27
    assert not report.errors, [str(p) for p in report.errors]
    res = CliRunner().invoke(cli, ["sketches", "check", str(root)])
    assert res.exit_code == 0 and "0 error(s)" in res.output, res.output
    assert len(load_sketches(root, size=256)) == 27


def test_16_bit_png_refused_at_import_with_cause_and_fix(tmp_path: Path):
    base = np.asarray(Image.open(STARTER / "car" / "car_01.png").convert("L"))
    src = tmp_path / "deep.png"
    Image.fromarray(base.astype(np.uint16) * 257).save(src)
    assert Image.open(src).mode.startswith("I")
    res = CliRunner().invoke(cli, ["sketches", "import", str(src), "--domain", "car",
                                   "--into", str(tmp_path / "set"), "--mode", "digital"])
    assert res.exit_code == 1
    assert "16-bit image" in res.output and "8-bit PNG" in res.output
    assert "--mode scan" in res.output and "stroke px" in res.output
    assert not (tmp_path / "set" / "car" / "deep.png").exists()
    res = CliRunner().invoke(cli, ["sketches", "import", str(src), "--domain", "car",
                                   "--into", str(tmp_path / "set")])  # auto refuses it too
    assert res.exit_code == 1 and "16-bit image" in res.output
