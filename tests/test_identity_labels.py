"""Identity and labels (issue 23.4): the feature extractor is its content, supersessions are
said one line per cause, `--domain all` labels only what it pools, blank edge maps are
skipped."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from evalkit.cli import cli
from evalkit.store.results import Store
from tests.conftest import make_ab_folder
from tests.test_domains import run_cli, service  # noqa: F401  (service: a fixture)

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")


def _extractor(path: Path, bump: float = 0.0) -> Path:
    import torch

    from tests.test_distribution import _TinyExtractor

    module = _TinyExtractor()
    with torch.no_grad():
        module.conv.bias.add_(bump)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.jit.script(module).save(str(path))
    return path


def _run(cwd: Path, monkeypatch, run: Path, heldout: Path, out: Path, ext: str, *extra: str):
    monkeypatch.chdir(cwd)
    r = CliRunner().invoke(cli, ["run", str(run), "--heldout", str(heldout), "--out", str(out),
                                 "--image-size", "32", "--feature-extractor", ext,
                                 "--no-report", "--quiet", *extra])
    assert r.exit_code == 0, r.output
    return r.output


def _history(out: Path):
    with Store(out, create=False) as st:
        df = st.results(history=True)
    return df[df.current == 0]


@pytest.mark.slow
def test_extractor_is_its_sha256_and_supersessions_say_why(tmp_path: Path, monkeypatch):
    from tests.seed_reference import save_seed_checkpoint

    heldout = make_ab_folder(tmp_path / "heldout", n=4, half=32)
    run = tmp_path / "run"
    run.mkdir()
    save_seed_checkpoint(run, n=2, hidden=4)
    out = tmp_path / "out"
    x = tmp_path / "x"
    fx = _extractor(x / "fx.pt")
    first = _run(x, monkeypatch, run, heldout, out, "fx.pt")
    assert "changed" not in first
    with Store(out, create=False) as st:
        before = st.evaluations()[["checkpoint", "dataset", "run_id", "completed_at"]]
    # the same file spelled three more ways, and a byte-identical copy elsewhere
    shutil.copy(fx, tmp_path / "copy_of_fx.pt")
    for cwd, spelling in ((tmp_path, str(fx.resolve())), (x, "../x/fx.pt"),
                          (tmp_path, "x/fx.pt"), (tmp_path, "copy_of_fx.pt")):
        again = _run(cwd, monkeypatch, run, heldout, out, spelling)
        assert "changed" not in again, (spelling, again)
        assert _history(out).empty, spelling  # nothing re-evaluated, nothing superseded
        with Store(out, create=False) as st:
            now = st.evaluations()[["checkpoint", "dataset", "run_id", "completed_at"]]
        assert now.equals(before), spelling
    # another extractor (other weights): one line for that cause, old values kept
    _extractor(tmp_path / "fx2.pt", bump=0.5)
    changed = _run(tmp_path, monkeypatch, run, heldout, out, "fx2.pt")
    lines = [ln for ln in changed.splitlines() if ln.startswith("metric settings changed:")]
    assert len(lines) == 1, changed
    assert "distribution" in lines[0] and "torchscript_sha256" in lines[0]
    assert "2 evaluation(s)" in lines[0] and "history" in lines[0]
    assert "data changed" not in changed
    hist = _history(out)
    assert set(hist.metric) >= {"fid", "kid"} and set(hist.why) == {"metric settings changed"}
    # fewer pairs: the data's own line
    limited = _run(tmp_path, monkeypatch, run, heldout, out, "fx2.pt", "--limit", "3")
    data_lines = [ln for ln in limited.splitlines() if ln.startswith("data changed:")]
    assert len(data_lines) == 1 and "4 -> 3 samples" in data_lines[0], limited
    assert "metric settings changed" not in limited


def test_domain_all_labels_only_what_it_pools(service, tmp_path: Path):  # noqa: F811
    """`--domain all` with car's held-out pairs: `sketches/all` (pooled), `heldout/car`
    (not pooled: keeps its name); a held-out folder of no known domain is plain `heldout`."""
    r = run_cli(service / "checkpoints" / "car", "--domain", "all", "--sketches",
                service / "sketches", "--heldout", service / "heldout" / "car",
                "--out", tmp_path / "o")
    assert r.exit_code == 0, r.output
    assert "named heldout/car" in r.output
    with Store(tmp_path / "o", create=False) as store:
        ds = store.datasets()
    assert dict(zip(ds.name, ds.n, strict=True)) == {"heldout/car": 4, "sketches/all": 6}
    # the pooled evaluation is still ranked as one (both datasets in the plan's domain)
    assert set(ds.domain) == {"all"}
    run = tmp_path / "run"
    shutil.copytree(service / "checkpoints" / "car", run)
    pairs = tmp_path / "pairs"
    shutil.copytree(service / "heldout" / "car", pairs)
    r = run_cli(run, "--domain", "all", "--sketches", service / "sketches", "--heldout",
                pairs, "--out", tmp_path / "o2")
    assert r.exit_code == 0, r.output
    with Store(tmp_path / "o2", create=False) as store:
        assert set(store.datasets().name) == {"heldout", "sketches/all"}


def test_edges_warns_and_skips_a_photo_with_an_empty_edge_map(tmp_path: Path):
    from PIL import Image

    from evalkit.inputs.data.pairs import load_pairs
    from tests.test_edges import disk_image

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(disk_image(48, 12)).save(photos / "disk.png")
    Image.new("RGBA", (48, 48), (0, 0, 0, 0)).save(photos / "transparent.png")
    Image.new("RGB", (48, 48), (200, 180, 90)).save(photos / "flat.png")
    out = tmp_path / "ab"
    res = CliRunner().invoke(cli, ["edges", str(photos), "--out", str(out), "--format", "png"])
    assert res.exit_code == 1, res.output  # two photos were not converted
    assert sorted(p.name for p in out.glob("*.png")) == ["disk.png"]
    for name in ("transparent.png", "flat.png"):
        line = next(ln for ln in res.output.splitlines() if name in ln)
        assert line.startswith("warning: skipped") and "edge map is empty" in line
        assert "--keep-blank" in line
    assert "(2 with an empty edge map)" in res.output
    assert load_pairs(out, size=32).ids == ["disk.png"]

    kept = tmp_path / "kept"
    res = CliRunner().invoke(cli, ["edges", str(photos), "--out", str(kept), "--format", "png",
                                   "--keep-blank"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in kept.glob("*.png")) == ["disk.png", "flat.png",
                                                          "transparent.png"]
    assert res.output.count("edge map is empty; written as a blank pair") == 2
    assert json.loads((kept / "detector.json").read_text())["blank_kept"] == [
        "flat.png", "transparent.png"]
