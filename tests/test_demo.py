"""The shipped example run and ``evalkit demo``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "person"


def test_shipped_example_is_complete_and_small():
    ckpts = sorted(EXAMPLE.glob("checkpoints/ckpt-*.index"))
    assert len(ckpts) >= 5
    assert (EXAMPLE / "checkpoints" / "checkpoint").is_file()
    for index in ckpts:
        assert index.with_suffix(".data-00000-of-00001").is_file()
    assert len(list((EXAMPLE / "heldout").glob("*.png"))) >= 30
    det = json.loads((EXAMPLE / "heldout" / "detector.json").read_text())
    assert det["detector"] == "fallback-sobel-v1"
    size = sum(p.stat().st_size for p in EXAMPLE.rglob("*") if p.is_file())
    assert size <= 20e6
    from evalkit.sketches.manifest import read_manifest, validate_manifest
    manifest = read_manifest(EXAMPLE / "sketches")
    assert len(manifest.entries) >= 5
    assert validate_manifest(manifest, EXAMPLE / "sketches") == []
    assert all(e.provenance and e.reference for e in manifest.entries)


def test_shipped_example_last_checkpoint_beats_the_first_on_heldout_l1():
    """The committed checkpoints, not the README's numbers: serve held-out inputs through
    the first and last checkpoint and compare L1 on the [-1, 1] scale."""
    from evalkit._tf import tf
    from evalkit.checkpoints.load import (
        assign_weights,
        infer_architecture,
        read_generator_weights,
        read_shapes,
    )
    from evalkit.config import load_config
    from evalkit.data.pairs import load_pairs
    from evalkit.data.serving import uint8_to_signed
    from evalkit.models.resnet import resnet_generator

    cfg = load_config(EXAMPLE / "evalkit.toml")
    ds = load_pairs(cfg.heldout, size=cfg.image_size)
    prefixes = sorted((p.with_suffix("") for p in EXAMPLE.glob("checkpoints/ckpt-*.index")),
                      key=lambda p: int(p.name.split("-")[1]))
    l1 = []
    for prefix in (prefixes[0], prefixes[-1]):
        arch = infer_architecture(read_shapes(prefix))
        g = resnet_generator(arch.input_channels, arch.output_channels, arch.hidden_channels)
        assign_weights(g, read_generator_weights(prefix, g))
        y = g(tf.constant(ds.inputs), training=False).numpy()
        l1.append(float(np.mean(np.abs(y - uint8_to_signed(ds.targets)))))
    assert l1[1] < l1[0] - 0.02


@pytest.fixture(scope="module")
def tiny_example(tmp_path_factory) -> Path:
    """An example folder shaped like examples/person, from a 2-epoch width-4 run."""
    from evalkit.train import TrainConfig, train
    from tests.test_train import make_pairs

    root = tmp_path_factory.mktemp("example")
    train(make_pairs(root / "train", n=8), root / "checkpoints",
          TrainConfig(image_size=32, hidden_channels=4, disc_channels=8, epochs=2, eager=True),
          log=None)
    heldout = make_pairs(root / "heldout", n=4)
    assert heldout.is_dir()
    (root / "sketches").mkdir()
    import shutil
    for p in sorted((EXAMPLE / "sketches").rglob("*.png")):
        dest = root / "sketches" / p.relative_to(EXAMPLE / "sketches")
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, dest)
    shutil.copy(EXAMPLE / "sketches" / "manifest.json", root / "sketches" / "manifest.json")
    (root / "evalkit.toml").write_text('[run]\ndomain = "person"\nimage_size = 32\n'
                                       'heldout = "heldout"\nsketches = "sketches"\n')
    return root


def test_demo_evaluates_every_checkpoint_and_dataset(tiny_example, tmp_path):
    from evalkit.commands.demo import demo
    from evalkit.store import load_results

    out = tmp_path / "out"
    res = CliRunner().invoke(demo, ["--out", str(out), "--example", str(tiny_example),
                                    "--quiet"])
    assert res.exit_code == 0, res.output
    df = load_results(out)
    assert set(df.checkpoint) == {"ckpt-1", "ckpt-2"}
    assert set(df.dataset) == {"heldout", "sketches"}
    assert {"l1", "ssim"} <= set(df.metric)
    assert "held-out l1: first checkpoint" in res.output
    assert "2 of 2 checkpoints evaluated" in res.output


def test_demo_without_an_example_is_a_usage_error(tmp_path, monkeypatch):
    import evalkit.commands.demo as demo_mod

    monkeypatch.setattr(demo_mod, "find_example", lambda: None)
    res = CliRunner().invoke(demo_mod.demo, ["--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "example run" in res.output


def test_demo_finds_the_shipped_example():
    from evalkit.commands.demo import find_example

    assert find_example() == EXAMPLE
