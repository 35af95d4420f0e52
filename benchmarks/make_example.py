"""Regenerate the shipped example run ``examples/person/`` (issue #3).

    .venv/bin/python benchmarks/make_example.py            # ~5 min on 2 CPU cores

1. Cartoon faces (:mod:`evalkit.faces`): training seeds 0..N-1, held-out seeds from
   1,000,000 (disjoint), rendered at the example's image size.
2. Edges with evalkit's pipeline (:func:`evalkit.edges.detect_edges`; no HED weights here,
   so the documented Sobel fallback) -> AB pairs; ``detector.json`` records the detector.
3. Training with the seed's recipe (:mod:`evalkit.train`), one checkpoint per epoch.
4. Hand-drawn-style sketches (:func:`evalkit.faces.sketch_face`) of some held-out faces,
   with ``manifest.json`` and the reference photos.
5. A check with its own small evaluation (scikit-image SSIM, numpy L1): held-out L1 and SSIM
   of every epoch, written to ``examples/person/epochs.json`` and the README. The script
   fails if the last epoch is not better than the first on both.

Everything is seeded: the faces, edges, sketches and manifest are identical on every run;
the checkpoints are reproducible up to TensorFlow's CPU float non-determinism.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from evalkit.edges import detect_edges, get_detector, make_ab  # noqa: E402
from evalkit.edges.pipeline import write_detector_json  # noqa: E402
from evalkit.faces import face_params, render_face, sketch_face  # noqa: E402

HELDOUT_SEED0 = 1_000_000


def write_pairs(seeds, out: Path, size: int) -> None:
    out.mkdir(parents=True, exist_ok=True)
    det = get_detector("sobel")
    for seed in seeds:
        photo = render_face(seed, size)
        edges, _ = detect_edges(photo, det)
        make_ab(photo, edges).save(out / f"face_{seed:07d}.png", optimize=True)
    write_detector_json(out, det, count=len(seeds), image_size=size,
                        source="evalkit.faces.render_face(seed, size), seeds "
                               f"{seeds[0]}..{seeds[-1]}")


def write_sketches(seeds, out: Path, size: int = 256) -> None:
    person = out / "person"
    refs = out / "references"
    person.mkdir(parents=True, exist_ok=True)
    refs.mkdir(parents=True, exist_ok=True)
    entries = []
    for i, seed in enumerate(seeds, 1):
        name = f"person/sketch_{i:02d}.png"
        Image.fromarray(sketch_face(seed, size, pen_px=size / 64)).save(out / name, optimize=True)
        ref = f"references/face_{seed:07d}.png"
        Image.fromarray(render_face(seed, size)).save(out / ref, optimize=True)
        p = face_params(seed)
        entries.append({
            "file": name, "domain": "person",
            "provenance": "procedural hand-drawn-style sketch: evalkit.faces.sketch_face("
                          f"{seed}, {size}, pen_px={size / 64:g}): the outlines of held-out "
                          "cartoon face {seed} traced with a wobbling pen (smooth random drift "
                          f"up to {size / 70:.1f} px); not drawn by a person".replace(
                              "{seed}", str(seed)),
            "reference": ref,
            "tags": ["procedural", "wobble", p.hair_style, p.face_shape],
            "face_seed": seed,
        })
    (out / "manifest.json").write_text(json.dumps(
        {"schema": "evalkit.sketches/1", "sketches": entries}, indent=2) + "\n")


def epoch_metrics(run_dir: Path, heldout: Path, size: int, hidden: int) -> list[dict]:
    """Held-out L1 ([-1, 1] scale) and SSIM (uint8, Gaussian sigma 1.5, scikit-image) of every
    checkpoint, served like evaluation serves (evalkit.data.serving)."""
    from skimage.metrics import structural_similarity

    from evalkit._tf import tf
    from evalkit.data.pairs import load_pairs
    from evalkit.data.serving import output_to_uint8, uint8_to_signed
    from evalkit.models.resnet import resnet_generator

    ds = load_pairs(heldout, size=size)
    x = tf.constant(ds.inputs, tf.float32)
    rows = []
    for index in sorted(run_dir.glob("ckpt-*.index"), key=lambda p: int(p.stem.split("-")[1])):
        g = resnet_generator(1, 3, hidden)
        tf.train.Checkpoint(generator=g).restore(str(index.with_suffix(""))).expect_partial()
        y = g(x, training=False).numpy()
        served = output_to_uint8(y)
        l1 = float(np.mean(np.abs(y - uint8_to_signed(ds.targets))))
        ssim = float(np.mean([structural_similarity(
            served[i], ds.targets[i], channel_axis=2, gaussian_weights=True, sigma=1.5,
            use_sample_covariance=False, data_range=255) for i in range(len(served))]))
        rows.append({"checkpoint": index.stem, "heldout_l1": round(l1, 4),
                     "heldout_ssim": round(ssim, 4)})
    return rows


README = """# Example run: cartoon faces ("person"), made by evalkit itself

A small but real pix2pix training run for `evalkit demo`, the tests and the benchmarks.
Regenerate it with the one command

    .venv/bin/python benchmarks/make_example.py

## What is here

| path | what |
| --- | --- |
| `checkpoints/` | {epochs} generator checkpoints, one per epoch, in the seed's layout (`checkpoint` state file, `ckpt-N.index`, `ckpt-N.data-00000-of-00001`, saved with `tf.train.Checkpoint(generator=...)`); `train_log.json` has the per-epoch training losses |
| `heldout/` | {n_heldout} held-out AB pairs ({size}x{size} halves, PNG: edges left, face right) of faces never seen in training; `detector.json` says which edge detector made them |
| `sketches/` | {n_sketches} hand-drawn-style sketches (`person/`) of held-out faces, their reference faces (`references/`) and `manifest.json` with each one's provenance |
| `evalkit.toml` | image size {size}, held-out and sketch folders: `evalkit run examples/person/checkpoints` needs no flags |
| `epochs.json` | the check below, per epoch |

## How it was made

- **Faces**: `evalkit.faces.render_face(seed, {size})`, procedural avatars in the spirit of
  Google's Cartoon Set (the seed's "person" data): face shapes, skin tones, hair styles and
  colours, eyes, eyebrows, mouths, noses, glasses and facial hair on white. Training seeds
  0..{last_train} ({n_train} faces), held-out seeds {h0}..{h1}.
- **Edges**: `evalkit.edges.detect_edges` with detector **`{detector}`**: HED's weights are
  not available here, so the documented Sobel fallback produced the edge probability, followed
  by the pix2pix PostprocessHED recipe (NMS along the edge normal, threshold 25/255, thinning,
  removal of components under 5 px, black strokes on white). Edges made with HED would look
  different; do not mix the two.
- **Training**: `evalkit.train` with the seed's recipe: ResNet generator (9 blocks) of width
  {hidden} (the seed uses 64), 70x70 PatchGAN of width {disc} on (edges, image), LSGAN + 10 L1,
  one D then one G step per batch, Adam 2e-4 / beta1 0.5, batch {batch}, random horizontal
  flips, {epochs} epochs, seed {seed}. It took {train_minutes:.1f} min on 2 CPU cores.
- **Sketches**: `evalkit.faces.sketch_face(seed, 256, pen_px=4)`: the outlines of a held-out
  face traced with a pen that drifts smoothly off the true outline, like a hand. They are
  procedural stand-ins for children's drawings (see `human_sketches/` at the repository root
  for real hand-drawn sets); each names the face it was traced from as its reference.

## Check (measured by make_example.py with its own code)

Held-out L1 (mean |y - target| on the [-1, 1] scale, lower is better) and SSIM (served uint8
output vs target, Gaussian sigma 1.5, data range 255, scikit-image; higher is better) on the
{n_heldout} held-out pairs at {size} px:

| checkpoint | held-out L1 | held-out SSIM |
| --- | --- | --- |
{table}

Size on disk: {size_mb:.1f} MB.
"""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=ROOT / "examples" / "person")
    ap.add_argument("--train", type=int, default=480, help="training faces")
    ap.add_argument("--heldout", type=int, default=40, help="held-out faces")
    ap.add_argument("--sketches", type=int, default=12, help="hand-drawn-style sketches")
    ap.add_argument("--size", type=int, default=64, help="image size (px)")
    ap.add_argument("--hidden-channels", type=int, default=12)
    ap.add_argument("--disc-channels", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep-train", type=Path, help="keep the training pairs in this folder")
    args = ap.parse_args(argv)

    from evalkit.train import TrainConfig, train

    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    tmp = Path(tempfile.mkdtemp(prefix="evalkit-example-"))
    train_dir = args.keep_train or tmp / "train"
    t0 = time.perf_counter()
    write_pairs(list(range(args.train)), train_dir, args.size)
    held_seeds = list(range(HELDOUT_SEED0, HELDOUT_SEED0 + args.heldout))
    write_pairs(held_seeds, out / "heldout", args.size)
    write_sketches(held_seeds[:args.sketches], out / "sketches")
    print(f"data: {args.train} train + {args.heldout} held-out pairs, {args.sketches} sketches "
          f"({time.perf_counter() - t0:.1f} s)", flush=True)

    cfg = TrainConfig(image_size=args.size, hidden_channels=args.hidden_channels,
                      disc_channels=args.disc_channels, epochs=args.epochs, seed=args.seed)
    t1 = time.perf_counter()
    train(train_dir, out / "checkpoints", cfg)
    train_s = time.perf_counter() - t1
    shutil.rmtree(tmp, ignore_errors=True)

    (out / "evalkit.toml").write_text(
        "# The example run's settings; paths are relative to this file.\n"
        "[run]\n"
        'domain = "person"\n'
        f"image_size = {args.size}\n"
        'heldout = "heldout"\n'
        'sketches = "sketches"\n')

    rows = epoch_metrics(out / "checkpoints", out / "heldout", args.size, args.hidden_channels)
    (out / "epochs.json").write_text(json.dumps(
        {"train_seconds": round(train_s, 1), "epochs": rows}, indent=2) + "\n")
    for r in rows:
        print(f"{r['checkpoint']}: held-out L1 {r['heldout_l1']:.4f}  SSIM {r['heldout_ssim']:.4f}")
    size_mb = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6
    table = "\n".join(f"| {r['checkpoint']} | {r['heldout_l1']:.4f} | {r['heldout_ssim']:.4f} |"
                      for r in rows)
    detector = json.loads((out / "heldout" / "detector.json").read_text())["detector"]
    (out / "README.md").write_text(README.format(
        epochs=args.epochs, n_heldout=args.heldout, size=args.size, n_sketches=args.sketches,
        last_train=args.train - 1, n_train=args.train, h0=held_seeds[0], h1=held_seeds[-1],
        detector=detector, hidden=args.hidden_channels, disc=args.disc_channels,
        batch=cfg.batch_size, seed=args.seed, train_minutes=train_s / 60, table=table,
        size_mb=size_mb + 0.003))
    size_mb = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 1e6
    print(f"training {train_s / 60:.1f} min; example {size_mb:.1f} MB in {out}")
    first, last = rows[0], rows[-1]
    if not (last["heldout_l1"] < first["heldout_l1"]
            and last["heldout_ssim"] > first["heldout_ssim"]):
        print("FAILED: the last epoch is not better than the first on held-out L1 and SSIM")
        return 1
    if size_mb > 20:
        print("FAILED: the example is over 20 MB")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
