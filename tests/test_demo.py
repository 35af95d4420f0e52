"""The shipped example run and ``evalkit demo``."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples"   # the shipped multi-domain example (tests/test_example.py)


@pytest.fixture(scope="module")
def tiny_example(tmp_path_factory) -> Path:
    """An example in the service's layout with one domain (person: a 2-epoch width-4 run in
    checkpoints/person/, held-out pairs in heldout/person/) and the shipped two-domain
    sketch set: only person's sketches may be used."""
    from benchmarks.example.train import TrainConfig, train
    from tests.test_train import make_pairs

    root = tmp_path_factory.mktemp("example")
    train(make_pairs(root / "train", n=8), root / "checkpoints" / "person",
          TrainConfig(image_size=32, hidden_channels=4, disc_channels=8, epochs=2, eager=True),
          log=None)
    heldout = make_pairs(root / "heldout" / "person", n=4)
    assert heldout.is_dir()
    (root / "sketches").mkdir()
    import shutil
    for p in sorted((EXAMPLE / "sketches").rglob("*.png")):
        dest = root / "sketches" / p.relative_to(EXAMPLE / "sketches")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, dest)
    shutil.copy(EXAMPLE / "sketches" / "manifest.json", root / "sketches" / "manifest.json")
    (root / "evalkit.toml").write_text('[run]\nimage_size = 32\n'
                                       'heldout = "heldout"\nsketches = "sketches"\n')
    return root


def test_demo_evaluates_every_checkpoint_and_dataset(tiny_example, tmp_path):
    from evalkit.commands.demo import demo
    from evalkit.store.results import load_results

    out = tmp_path / "out"
    res = CliRunner().invoke(demo, ["--out", str(out), "--example", str(tiny_example),
                                    "--quiet"])
    assert res.exit_code == 0, res.output
    df = load_results(out)
    assert set(df.checkpoint) == {"person/ckpt-1", "person/ckpt-2"}
    assert set(df.dataset) == {"heldout/person", "sketches/person"}
    sk = df[(df.dataset == "sketches/person") & (df.metric == "adherence_f1")]
    assert set(sk.n) == {12}  # person's 12 sketches of the 24 in the set, never gemstone's
    assert {"l1", "ssim"} <= set(df.metric)
    assert "person: held-out l1: first checkpoint" in res.output
    assert "2 of 2 checkpoints evaluated" in res.output
    # one checkpoint chosen and exported in the service's layout
    assert (out / "deploy" / "person" / "ckpt-1.index").is_file()
    assert (out / "report" / "index.html").is_file()


def test_demo_without_an_example_is_a_usage_error(tmp_path, monkeypatch):
    import evalkit.commands.demo as demo_mod

    monkeypatch.setattr(demo_mod, "find_example", lambda: None)
    res = CliRunner().invoke(demo_mod.demo, ["--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "the example (examples/checkpoints) is not here" in res.output


def test_demo_finds_the_shipped_example():
    from evalkit.commands.demo import find_example

    assert find_example() == EXAMPLE
