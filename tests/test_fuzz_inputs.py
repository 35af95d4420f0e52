"""Fuzz: generated files of every awkward kind through every input path of evalkit.

Hypothesis builds folders of small files (zero-byte, truncated, text-as-PNG, 16-bit, CMYK,
LA, palette + transparency, 1x1, PNG headers claiming huge dimensions, animated GIF, TIFF,
WebP, odd names, symlink loops, and ordinary drawings) and feeds each folder to the sketch
loader, the pair loader, ``sketches check`` and ``sketches import`` in the three modes.
Every path must: raise no exception (a folder with nothing usable may raise the documented
DatasetError), account for every file (loaded or listed with a reason), and write nothing
outside its output folder. A few generated folders then go through ``evalkit run
--sketches`` and ``run --heldout`` on tiny checkpoints. The counts (files tried, loaded,
skipped per reason) are printed at the end of the module.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

hypothesis = pytest.importorskip("hypothesis", reason="the fuzz suite needs hypothesis (dev extra)")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from evalkit.cli import cli  # noqa: E402
from evalkit.inputs.data.files import METADATA_FILES  # noqa: E402
from evalkit.inputs.data.pairs import DatasetError, load_pairs  # noqa: E402
from evalkit.inputs.sketches.check import check_set  # noqa: E402
from evalkit.inputs.sketches.dataset import load_sketches  # noqa: E402

KINDS = ["drawing_png", "drawing_jpg", "rgba_export", "ab_pair", "zero_byte", "truncated",
         "text_as_png", "sixteen_bit", "cmyk", "la", "palette_transparent", "one_by_one",
         "huge_header", "animated_gif", "tiff", "webp", "bmp", "no_extension",
         "symlink_loop", "not_an_image"]
NAMES = ["plain", "spaces", "unicode", "dash", "dots", "upper_ext", "hidden", "same_stem"]
COUNTS: Counter = Counter()  # files tried / loaded / skipped-by-reason, printed at the end


@pytest.fixture(scope="module", autouse=True)
def _print_counts(request):
    yield
    lines = [f"fuzz inputs: {COUNTS['files tried']} files tried, "
             f"{COUNTS['loaded']} loaded, {COUNTS['skipped']} skipped"]
    lines += [f"  {k[8:]}: {v}" for k, v in sorted(COUNTS.items()) if k.startswith("reason: ")]
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if capture is None:  # -p no:capture
        print("\n" + "\n".join(lines))
        return
    with capture.global_and_fixture_disabled():  # shown even when pytest captures output
        print("\n" + "\n".join(lines))


def _drawing(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """uint8 dark strokes on white: a few lines and a ring."""
    img = np.full((h, w), 255, np.uint8)
    for _ in range(3):
        r = int(rng.integers(1, h - 1))
        img[r, max(0, w // 8):max(1, w - w // 8)] = 0
        c = int(rng.integers(1, w - 1))
        img[max(0, h // 8):max(1, h - h // 8), c] = 0
    return img


def _png_header(w: int, h: int) -> bytes:
    """A PNG whose header claims ``w`` x ``h`` (8-bit grey) with one empty data chunk."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b""))
            + chunk(b"IEND", b""))


def _save(im: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kw)
    return buf.getvalue()


def make_file(folder: Path, kind: str, name_style: str, seed: int, index: int) -> list[Path]:
    """Write one generated file (two for a symlink loop); returns the paths written."""
    rng = np.random.default_rng(seed)
    h, w = int(rng.integers(8, 48)), int(rng.integers(8, 48))
    img = _drawing(rng, h, w)
    ext, data = ".png", None
    if kind == "drawing_png":
        data = _save(Image.fromarray(img), "PNG")
    elif kind == "drawing_jpg":
        ext, data = ".jpg", _save(Image.fromarray(img).convert("RGB"), "JPEG", quality=70)
    elif kind == "rgba_export":
        rgba = np.zeros((h, w, 4), np.uint8)
        rgba[..., 3] = 255 - img
        data = _save(Image.fromarray(rgba, "RGBA"), "PNG")
    elif kind == "ab_pair":
        ab = np.concatenate([np.stack([img] * 3, -1),
                             rng.integers(0, 255, (h, w, 3)).astype(np.uint8)], 1)
        data = _save(Image.fromarray(ab), "PNG")
    elif kind == "zero_byte":
        data = b""
    elif kind == "truncated":
        full = _save(Image.fromarray(img), "PNG")
        data = full[: max(8, int(len(full) * rng.uniform(0.2, 0.9)))]
    elif kind == "text_as_png":
        data = b"this is not an image, whatever its name says\n" * int(rng.integers(1, 4))
    elif kind == "sixteen_bit":
        data = _save(Image.fromarray(np.maximum(img, 30).astype(np.uint16) * 257), "PNG")
    elif kind == "cmyk":
        ext, data = ".jpg", _save(Image.fromarray(img).convert("CMYK"), "JPEG")
    elif kind == "la":
        la = np.stack([np.zeros_like(img), 255 - img], -1)
        data = _save(Image.fromarray(la, "LA"), "PNG")
    elif kind == "palette_transparent":
        pal = Image.fromarray((img < 128).astype(np.uint8), "P")
        pal.putpalette([0, 0, 0, 40, 40, 40] + [0] * 762)
        data = _save(pal, "PNG", transparency=0)
    elif kind == "one_by_one":
        data = _save(Image.new("L", (1, 1), int(rng.integers(0, 256))), "PNG")
    elif kind == "huge_header":
        data = _png_header(int(rng.integers(20_000, 200_000)), int(rng.integers(20_000, 200_000)))
    elif kind == "animated_gif":
        frames = [Image.fromarray(img // k) for k in (1, 2, 3)]
        buf = io.BytesIO()
        frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
        ext, data = ".gif", buf.getvalue()
    elif kind == "tiff":
        ext, data = ".tif", _save(Image.fromarray(img), "TIFF")
    elif kind == "webp":
        ext, data = ".webp", _save(Image.fromarray(img).convert("RGB"), "WEBP", lossless=True)
    elif kind == "bmp":
        ext, data = ".bmp", _save(Image.fromarray(img), "BMP")
    elif kind == "no_extension":
        ext, data = "", _save(Image.fromarray(img), "PNG")
    elif kind == "not_an_image":
        ext, data = ".txt", b"notes"
    stem = {"plain": f"f{index}", "spaces": f"my drawing {index}", "unicode": f"dessin_é_{index}",
            "dash": f"-{index}", "dots": f"a.b.{index}", "upper_ext": f"F{index}",
            "hidden": f".h{index}", "same_stem": "same"}[name_style]
    if name_style == "upper_ext":
        ext = ext.upper()
    if kind == "symlink_loop":
        a, b = folder / f"{stem}_loopA{index}.png", folder / f"{stem}_loopB{index}.png"
        a.symlink_to(b.name)
        b.symlink_to(a.name)
        return [a, b]
    path = folder / f"{stem}{ext}"
    if path.exists() or path.is_symlink():
        path = folder / f"{stem}_{index}{ext}"
    path.write_bytes(data)
    return [path]


def _reason(text: str) -> str:
    """A short category for a skip reason (for the printed counts)."""
    t = text.lower()
    for key, label in [("blank as served", "blank as served"),
                       ("inverted as served", "inverted as served"),
                       ("cannot identify", "not decodable"), ("truncated", "truncated"),
                       ("mpx", "too large"), ("decompression bomb", "too large"),
                       ("even", "AB width odd"), ("not an image file", "not an image file"),
                       ("symlink loop", "symlink loop"), ("ambiguous", "ambiguous stem")]:
        if key in t:
            return label
    return re.sub(r"\d+", "N", text)[:50]


def _tree(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


folder_spec = st.lists(st.tuples(st.sampled_from(KINDS), st.sampled_from(NAMES),
                                 st.integers(0, 2**31 - 1)), min_size=10, max_size=18)


def build_folder(folder: Path, spec) -> list[str]:
    folder.mkdir(parents=True)
    files: list[str] = []
    for i, (kind, name, seed) in enumerate(spec):
        files += [p.name for p in make_file(folder, kind, name, seed, i)]
    return files


@settings(max_examples=40, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(spec=folder_spec, mode=st.sampled_from(["auto", "digital", "scan"]))
def test_loaders_check_and_import_account_for_every_file(tmp_path_factory, spec, mode):
    base = tmp_path_factory.mktemp("fuzz")
    folder = base / "in"
    files = build_folder(folder, spec)
    expected = {f for f in files if f not in METADATA_FILES}
    COUNTS["files tried"] += len(expected)
    before = _tree(base)

    # the sketch loader: every file loaded (id) or skipped (with a reason)
    try:
        ds = load_sketches(folder, size=32)
        ids, skipped = set(ds.ids), ds.skipped
        assert len(ds.ids) == len(ids)  # unique ids
    except DatasetError as exc:
        assert "no usable sketch" in str(exc)
        ids, skipped = set(), None
    if skipped is not None:
        assert all(s.reason for s in skipped)
        assert ids | {s.file for s in skipped} == expected
        assert not ids & {s.file for s in skipped}
        COUNTS["loaded"] += len(ids)
        COUNTS["skipped"] += len(skipped)
        COUNTS.update(f"reason: {_reason(s.reason)}" for s in skipped)

    # the pair loader (AB layout): same accounting
    try:
        pairs = load_pairs(folder, size=32)
        assert set(pairs.ids) | {s.file for s in pairs.skipped} == expected
    except DatasetError as exc:
        assert "no usable image pairs" in str(exc)

    # check: no exception, every image file in the stats or named by a problem
    report = check_set(folder)
    named = {p.file for p in report.problems} | {s.file for s in report.stats}
    assert expected <= named

    # import: every file imported or listed as not imported; nothing outside OUT
    out = base / "out"
    res = CliRunner().invoke(cli, ["sketches", "import", str(folder), "--domain", "fz",
                                   "--into", str(out), "--mode", mode])
    assert res.exit_code in (0, 1), res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    imported = len(re.findall(r" -> ", res.output))
    listed = re.search(r"(\d+) not imported", res.output)
    assert imported + (int(listed.group(1)) if listed else 0) == len(expected), res.output
    if mode == "digital":
        for line in res.output.splitlines():
            if " -> " in line:
                src, dst = line.split(" -> ", 1)
                dst = dst.rsplit(": digital", 1)[0]
                assert Path(dst).read_bytes() == Path(src).read_bytes()
    assert {p for p in _tree(base) - before if not p.startswith("out")} == set()


def _run(args: list[str]):
    return CliRunner().invoke(cli, ["run", *args, "--image-size", "32", "--no-report",
                                    "--quiet"])


@pytest.mark.slow
def test_run_on_fuzzed_sketch_and_heldout_folders(tmp_path, seed_run):
    """`run --sketches` and `run --heldout` on generated folders: no traceback, every file
    loaded or listed as skipped, nothing written outside OUT."""
    rng = np.random.default_rng(11)
    spec = [(k, str(rng.choice(NAMES)), int(rng.integers(2**31))) for k in KINDS * 2]
    files = build_folder(tmp_path / "fuzz", spec)
    heldout = tmp_path / "heldout"
    heldout.mkdir()
    for i in range(3):  # a few good AB pairs, plus the same fuzz files
        make_file(heldout, "ab_pair", "plain", i, 1000 + i)
    for f in (tmp_path / "fuzz").iterdir():
        if not f.is_symlink():
            (heldout / f.name).write_bytes(f.read_bytes())
    COUNTS["files tried"] += len(files)
    before = _tree(tmp_path)
    out = tmp_path / "out"
    res = _run([str(seed_run), "--heldout", str(heldout), "--sketches", str(tmp_path / "fuzz"),
                "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    assert "Traceback" not in res.output
    import evalkit

    stored = evalkit.load_results(out)
    assert set(stored.dataset) == {"heldout", "sketches"}
    ds = load_sketches(tmp_path / "fuzz", size=32)
    for s in ds.skipped:  # each skipped file is named in the run's output
        assert f"skipped {s.file}: " in res.output, s.file
    assert len(ds.ids) + len(ds.skipped) == len(files)
    COUNTS["loaded"] += len(ds.ids)
    COUNTS["skipped"] += len(ds.skipped)
    COUNTS.update(f"reason: {_reason(s.reason)}" for s in ds.skipped)
    assert {p for p in _tree(tmp_path) - before if not p.startswith("out")} == set()
