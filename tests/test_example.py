"""The shipped multi-domain example ``examples/`` (benchmarks/make_example.py): its layout,
size, that its code reproduces its data, and that every domain's training helped."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples"
DOMAINS = ["gemstone", "person"]


def test_layout_is_the_seeds_and_complete():
    run = tomllib.loads((EXAMPLE / "evalkit.toml").read_text())["run"]
    assert run == {"heldout": "heldout", "sketches": "sketches", "image_size": 64,
                   "batch_size": 16}
    assert sorted(p.name for p in (EXAMPLE / "checkpoints").iterdir()) == DOMAINS
    assert sorted(p.name for p in (EXAMPLE / "heldout").iterdir()) == DOMAINS
    for d in DOMAINS:
        run_dir = EXAMPLE / "checkpoints" / d
        ckpts = sorted(run_dir.glob("ckpt-*.index"))
        assert len(ckpts) >= 5, d
        assert (run_dir / "checkpoint").is_file()
        for index in ckpts:
            assert index.with_suffix(".data-00000-of-00001").is_file()
        epochs = json.loads((run_dir / "epochs.json").read_text())["epochs"]
        assert [e["checkpoint"] for e in epochs] == sorted(
            (i.stem for i in ckpts), key=lambda n: int(n.split("-")[1]))
        heldout = EXAMPLE / "heldout" / d
        assert len(list(heldout.glob("*.png"))) >= 30, d
        det = json.loads((heldout / "detector.json").read_text())
        assert det["detector"] == "fallback-sobel-v1"
        assert det["source"].startswith("benchmarks.example.")


def test_one_multi_domain_sketch_set():
    from evalkit.inputs.sketches.manifest import SCHEMA, read_manifest, validate_manifest

    sketches = EXAMPLE / "sketches"
    manifest = read_manifest(sketches)
    assert json.loads((sketches / "manifest.json").read_text())["schema"] == SCHEMA
    assert validate_manifest(manifest, sketches) == []
    assert manifest.domains() == DOMAINS
    for d in DOMAINS:
        entries = [e for e in manifest.entries if e.domain == d]
        assert len(entries) >= 5, d
        assert all(e.file.startswith(f"{d}/") for e in entries)
        assert all(e.reference.startswith(f"references/{d}/") for e in entries)
        assert all("not drawn by a person" in e.provenance for e in entries)
    on_disk = {p.relative_to(sketches).as_posix() for p in sketches.rglob("*.png")}
    named = {e.file for e in manifest.entries} | {e.reference for e in manifest.entries}
    assert on_disk == named     # no stray files, nothing missing


def test_example_is_under_25_mb():
    size = sum(p.stat().st_size for p in EXAMPLE.rglob("*") if p.is_file())
    assert size < 25e6


@pytest.mark.parametrize("domain", DOMAINS)
def test_code_reproduces_the_shipped_data(domain):
    """The moved example code still makes the committed held-out pairs and sketches
    (pixels), so `make_example.py --domain D` regenerates the same data."""
    from benchmarks.make_example import DOMAINS as SPECS
    from evalkit.inputs.edges import detect_edges, get_detector, make_ab
    from evalkit.inputs.sketches.manifest import read_manifest

    spec = SPECS[domain]
    for p in sorted((EXAMPLE / "heldout" / domain).glob("*.png"))[:2]:
        seed = int(p.stem.split("_")[1])
        photo = spec.render(seed, 64)
        again = make_ab(photo, detect_edges(photo, get_detector("sobel"))[0])
        assert np.array_equal(np.asarray(again), np.asarray(Image.open(p).convert("RGB"))), p
    entry = next(e for e in read_manifest(EXAMPLE / "sketches").entries if e.domain == domain)
    shipped = np.asarray(Image.open(EXAMPLE / "sketches" / entry.file))
    assert np.array_equal(spec.sketch(entry.extra["seed"]), shipped)


@pytest.mark.parametrize("domain", DOMAINS)
def test_last_checkpoint_beats_the_first_on_heldout(domain):
    """The committed checkpoints, not the README's numbers: serve the held-out inputs through
    the first and last checkpoint; the last has lower L1 (on [-1, 1]), and epochs.json holds
    what this measures."""
    from evalkit.core.tf import tf
    from evalkit.inputs.checkpoints.load import (
        assign_weights,
        infer_architecture,
        read_generator_weights,
        read_shapes,
    )
    from evalkit.inputs.data.pairs import load_pairs
    from evalkit.inputs.data.serving import uint8_to_signed
    from evalkit.inputs.models.resnet import resnet_generator

    run_dir = EXAMPLE / "checkpoints" / domain
    ds = load_pairs(EXAMPLE / "heldout" / domain, size=64)
    prefixes = sorted((p.with_suffix("") for p in run_dir.glob("ckpt-*.index")),
                      key=lambda p: int(p.name.split("-")[1]))
    l1 = []
    for prefix in (prefixes[0], prefixes[-1]):
        arch = infer_architecture(read_shapes(prefix))
        assert arch.hidden_channels == 12
        g = resnet_generator(arch.input_channels, arch.output_channels, arch.hidden_channels)
        assign_weights(g, read_generator_weights(prefix, g))
        y = g(tf.constant(ds.inputs), training=False).numpy()
        l1.append(float(np.mean(np.abs(y - uint8_to_signed(ds.targets)))))
    assert l1[1] < l1[0] - 0.01
    recorded = json.loads((run_dir / "epochs.json").read_text())["epochs"]
    assert recorded[0]["heldout_l1"] == pytest.approx(l1[0], abs=2e-4)
    assert recorded[-1]["heldout_l1"] == pytest.approx(l1[1], abs=2e-4)
