"""A cached output PNG replaced by its inverse (same dimensions, still a valid PNG) is caught
by every reader: ``run`` regenerates it and says so once, ``report`` shows a placeholder
saying why instead of it, the review server refuses it (HTTP 409), the dashboard images
leave it out; a keyed check (size, mtime, ctime, inode) still sees an edit whose mtime was
put back. See evalkit/store/outputs.py."""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from evalkit.cli import cli
from evalkit.store.outputs import CHECKED, CheckedFolder, OutputChanged
from evalkit.store.results import Store
from tests.test_domains import _sketch_set

SIZE = 32


def _run(base: Path, out: Path):
    return CliRunner().invoke(cli, [
        "run", str(base / "checkpoints"), "--heldout", str(base / "heldout"), "--sketches",
        str(base / "sketches"), "--out", str(out), "--image-size", str(SIZE), "--quiet",
        "--no-report"], catch_exceptions=False)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory) -> Path:
    """checkpoints/car (2), heldout/car, 3 sketches per domain, evaluated."""
    from tests.conftest import make_ab_folder
    from tests.seed_reference import save_seed_checkpoint

    base = tmp_path_factory.mktemp("tamper")
    (base / "checkpoints" / "car").mkdir(parents=True)
    save_seed_checkpoint(base / "checkpoints" / "car", n=2, hidden=4, seed=3)
    make_ab_folder(base / "heldout" / "car", n=3, half=SIZE, seed=1)
    _sketch_set(base / "sketches", per_domain=3)
    shutil.rmtree(base / "sketches" / "shoe")
    m = json.loads((base / "sketches" / "manifest.json").read_text())
    m["sketches"] = [e for e in m["sketches"] if e["domain"] == "car"]
    (base / "sketches" / "manifest.json").write_text(json.dumps(m))
    r = _run(base, base / "out")
    assert r.exit_code == 0, r.output
    return base


@pytest.fixture
def case(evaluated, tmp_path) -> tuple[Path, Path]:
    """(base with the inputs, a copy of OUT of its own)."""
    out = tmp_path / "out"
    shutil.copytree(evaluated / "out", out, ignore=shutil.ignore_patterns("report"))
    return evaluated, out


def _victim(out: Path, dataset: str = "sketches/car", checkpoint: str = "car/ckpt-2"
            ) -> tuple[Path, str]:
    """A cached output PNG of (checkpoint, dataset) and its manifest sha256."""
    with Store(out, create=False) as s:
        ev = s.evaluations()
    folder = ev[(ev["checkpoint"] == checkpoint) & (ev["dataset"] == dataset)
                ].iloc[0]["outputs_dir"]
    checked = CheckedFolder(out / folder)
    name = checked.manifest["files"][1]
    return out / folder / name, checked.digests[name]


def _invert(png: Path, keep_mtime: bool = False) -> bytes:
    """Replace ``png`` in place by its inverse (same dimensions, a valid PNG)."""
    st = png.stat()
    with Image.open(png) as im:
        inv = 255 - np.asarray(im.convert("RGB"))
    buf = io.BytesIO()
    Image.fromarray(inv).save(buf, format="PNG")
    with open(png, "r+b") as f:  # the same file (inode), new bytes
        f.truncate(0)
        f.write(buf.getvalue())
    if keep_mtime:
        os.utime(png, ns=(st.st_atime_ns, st.st_mtime_ns))
    return buf.getvalue()


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_run_regenerates_a_tampered_output_and_says_so_once(case):
    base, out = case
    png, digest = _victim(out)
    _invert(png)
    assert _sha(png) != digest
    r = _run(base, out)
    assert r.exit_code == 0, r.output
    said = [ln for ln in r.output.splitlines() if "sha256 mismatch" in ln]
    assert len(said) == 1 and str(png) in said[0] and "regenerating" in said[0], r.output
    assert _sha(png) == digest  # the same checkpoint regenerated the same output
    r = _run(base, out)  # and now it is clean: nothing said
    assert r.exit_code == 0 and "sha256" not in r.output, r.output


def test_a_keyed_check_sees_an_edit_whose_mtime_was_put_back(case, monkeypatch):
    """Keys are recorded (as a re-run records them), then an edit that restores the
    mtime (same size: a byte flipped) is caught by ctime; EVALKIT_OUTPUT_CHECK=full too."""
    from evalkit.store import outputs

    _, out = case
    png, _ = _victim(out)
    monkeypatch.setattr(outputs, "SETTLE_NS", 0)  # the copy is fresh: key it at once
    checked = CheckedFolder(png.parent)
    assert checked.problems() == []
    checked.save_keys()
    keys = json.loads((png.parent / CHECKED).read_text())
    assert png.name in keys
    st = png.stat()
    data = bytearray(png.read_bytes())
    data[-20] ^= 0xFF  # inside the PNG's data, same size
    time.sleep(0.01)
    png.write_bytes(bytes(data))
    os.utime(png, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert png.stat().st_size == st.st_size and png.stat().st_mtime_ns == st.st_mtime_ns
    with pytest.raises(OutputChanged, match="sha256 mismatch"):
        CheckedFolder(png.parent).read(png.name)
    monkeypatch.setenv("EVALKIT_OUTPUT_CHECK", "full")
    with pytest.raises(OutputChanged, match="sha256 mismatch"):
        CheckedFolder(png.parent).check(png.name)


def test_report_never_shows_a_tampered_output(case):
    _, out = case
    png, _ = _victim(out)
    bad = _invert(png)
    r = CliRunner().invoke(cli, ["report", str(out)])
    assert r.exit_code == 0, r.output
    assert f"cached output {png} changed since it was written (sha256 mismatch)" in r.output
    report = out / "report"
    shown = {hashlib.sha256(p.read_bytes()).hexdigest() for p in report.rglob("*.png")}
    assert hashlib.sha256(bad).hexdigest() not in shown
    pages = "".join(p.read_text(encoding="utf-8") for p in report.rglob("*.html"))
    assert "not shown: changed since it was written (sha256 mismatch)" in pages
    assert "failed their sha256 check and are not shown" in pages
    # the other outputs are still shown
    assert len(list(report.rglob("c*/*.png"))) > 0


def test_review_server_refuses_a_tampered_output_with_409(case):
    from evalkit.present.review.server import ReviewServer, ReviewState

    _, out = case
    png, _ = _victim(out)
    good = sorted(p for p in png.parent.glob("*.png") if p != png)[0]
    _invert(png)
    state = ReviewState(out, "ana", seed=1, bootstrap=20)
    srv = ReviewServer(state, 0)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        port = srv.server_address[1]

        def get(p: Path) -> tuple[int, bytes]:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            c.request("GET", "/files/" + p.relative_to(out).as_posix(),
                      headers={"Host": f"127.0.0.1:{port}"})
            resp = c.getresponse()
            body = resp.read()
            c.close()
            return resp.status, body

        status, body = get(png)
        assert status == 409 and b"sha256 mismatch" in body, body
        status, body = get(good)
        assert status == 200 and body == good.read_bytes()
        stray = out / "outputs" / "stray.png"  # a PNG under OUT that no manifest lists
        shutil.copyfile(good, stray)
        assert get(stray)[0] == 404
    finally:
        srv.shutdown()
        srv.server_close()
        state.close()
        t.join(5)


def test_dashboard_images_leave_a_tampered_output_out(case):
    from evalkit.present.export.images import grid_images

    _, out = case
    png, _ = _victim(out)
    _invert(png)
    images, notes = grid_images(out)
    assert any(str(png) in n and "sha256 mismatch" in n for n in notes), notes
    assert not any(g.checkpoint == "car/ckpt-2" and g.dataset.startswith("sketches")
                   for g in images)
