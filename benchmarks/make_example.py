"""Regenerate one domain of the shipped multi-domain example ``examples/`` (issues #3, #10).

    .venv/bin/python benchmarks/make_example.py --domain gemstone   # ~6 min on 2 CPU cores
    .venv/bin/python benchmarks/make_example.py --domain person     # ~5 min
    .venv/bin/python benchmarks/make_example.py --readme-only       # README + evalkit.toml only

The example has the seed's layout, so ``evalkit run examples/checkpoints`` runs like the
service team's ``evalkit run checkpoints/``::

    examples/evalkit.toml                 [run] heldout, sketches, image_size, batch_size
    examples/checkpoints/<domain>/        checkpoint, ckpt-N.index/.data-*, train_log.json,
                                          epochs.json (this script's check)
    examples/heldout/<domain>/            held-out AB pairs + detector.json
    examples/sketches/manifest.json       ONE sketch set, entries of every domain
    examples/sketches/<domain>/           hand-drawn-style sketches
    examples/sketches/references/<domain>/  the photos they were traced from
    examples/README.md                    written from every domain's files

For the chosen domain (the other domains' files are left as they are):

1. Procedural subjects (:mod:`benchmarks.example.faces` for ``person``,
   :mod:`benchmarks.example.gemstones` for ``gemstone``): training seeds 0..N-1, held-out
   seeds from 1,000,000 (disjoint), rendered at the example's image size.
2. Edges with evalkit's pipeline (:func:`evalkit.inputs.edges.detect_edges`; no HED weights here,
   so the documented Sobel fallback) -> AB pairs; ``detector.json`` records the detector.
3. Training with the seed's recipe (:mod:`benchmarks.example.train`), one checkpoint per
   epoch.
4. Hand-drawn-style sketches of some held-out items, with their reference photos, merged
   into the one ``manifest.json`` (the domain's old entries replaced).
5. A check with its own small evaluation (scikit-image SSIM, numpy L1): held-out L1 and SSIM
   of every epoch, written to ``checkpoints/<domain>/epochs.json`` and the README. The script
   fails if the last epoch is not better than the first on both, or if ``examples/`` is
   25 MB or more.

Everything is seeded: images, edges, sketches and manifest are identical on every run; the
checkpoints are reproducible up to TensorFlow's CPU float non-determinism.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.example import faces, gemstones  # noqa: E402
from evalkit.inputs.edges import detect_edges, get_detector, make_ab  # noqa: E402
from evalkit.inputs.edges.pipeline import write_detector_json  # noqa: E402
from evalkit.inputs.sketches.manifest import (  # noqa: E402
    Manifest,
    SketchEntry,
    read_manifest,
    write_manifest,
)

HELDOUT_SEED0 = 1_000_000
MAX_EXAMPLE_MB = 25.0
SKETCH_SIZE = 256   # px, like the seed team's cropped sketches
TOML = """# The shipped example's settings (the seed's layout: one run folder per domain under
# checkpoints/, one held-out folder per domain under heldout/, one multi-domain sketch set).
# Paths are relative to this file; made by benchmarks/make_example.py.
[run]
heldout = "heldout"
sketches = "sketches"
image_size = {size}
batch_size = 16
"""


@dataclass(frozen=True)
class DomainSpec:
    """How one domain of the example is made. Sizes in pixels."""

    name: str
    stem: str                                        # file names: <stem>_<seed>.png
    render: Callable[[int, int], np.ndarray]         # (seed, size) -> RGB uint8
    render_ref: str                                  # the render function, for provenance
    sketch: Callable[[int], np.ndarray]              # seed -> L uint8 at SKETCH_SIZE
    sketch_ref: str                                  # the sketch call, for provenance
    sketch_what: str                                 # what the sketch traces
    tags: Callable[[int], list[str]]
    subject: str                                     # one README paragraph
    train: int = 480
    epochs: int = 8


DOMAINS: dict[str, DomainSpec] = {
    "person": DomainSpec(
        name="person", stem="face", render=faces.render_face,
        render_ref="benchmarks.example.faces.render_face",
        sketch=lambda seed: faces.sketch_face(seed, SKETCH_SIZE, pen_px=SKETCH_SIZE / 64),
        sketch_ref=f"benchmarks.example.faces.sketch_face({{seed}}, {SKETCH_SIZE}, "
                   f"pen_px={SKETCH_SIZE / 64:g})",
        sketch_what=f"the outlines of held-out cartoon face {{seed}} traced with a wobbling "
                    f"pen (smooth random drift up to {SKETCH_SIZE / 70:.1f} px)",
        tags=lambda seed: ["procedural", "wobble", faces.face_params(seed).hair_style,
                           faces.face_params(seed).face_shape],
        subject="procedural cartoon avatars in the spirit of Google's Cartoon Set (the "
                "seed's `person` data): face shapes, skin tones, hair styles and colours, "
                "eyes, eyebrows, mouths, noses, glasses and facial hair on white",
        train=480, epochs=8),
    "gemstone": DomainSpec(
        name="gemstone", stem="gem", render=gemstones.render_gem,
        render_ref="benchmarks.example.gemstones.render_gem",
        sketch=lambda seed: gemstones.sketch_gem(seed, SKETCH_SIZE, pen_px=SKETCH_SIZE / 64),
        sketch_ref=f"benchmarks.example.gemstones.sketch_gem({{seed}}, {SKETCH_SIZE}, "
                   f"pen_px={SKETCH_SIZE / 64:g})",
        sketch_what=f"the outline and facet edges of held-out gem {{seed}} traced with a "
                    f"wobbling pen (smooth random drift up to {SKETCH_SIZE / 100:.1f} px)",
        tags=lambda seed: ["procedural", "wobble", gemstones.gem_params(seed).cut,
                           gemstones.gem_params(seed).colour_name],
        subject="procedural faceted gems seen from above: 8 cuts (round, oval, cushion, "
                "pear, princess, trillion, hexagon, emerald step cut), 11 gem colours, "
                "facets shaded by a random light, darker facet edges and 1-3 white glints "
                "on white",
        # 6 epochs, not 8: the example must stay under 25 MB (1.6 MB per checkpoint), so
        # each epoch sees more pairs (640) for about as many steps as person's run.
        train=640, epochs=6),
}


def write_pairs(spec: DomainSpec, seeds: list[int], out: Path, size: int) -> None:
    """AB pairs (fallback-detector edges | photo) of ``seeds`` into ``out`` + detector.json."""
    out.mkdir(parents=True, exist_ok=True)
    det = get_detector("sobel")
    for seed in seeds:
        photo = spec.render(seed, size)
        edges, _ = detect_edges(photo, det)
        make_ab(photo, edges).save(out / f"{spec.stem}_{seed:07d}.png", optimize=True)
    write_detector_json(out, det, count=len(seeds), image_size=size,
                        source=f"{spec.render_ref}(seed, size), seeds {seeds[0]}..{seeds[-1]}")


def write_sketches(spec: DomainSpec, seeds: list[int], sketches: Path) -> None:
    """Sketches of ``seeds`` into ``sketches/<domain>/``, references into
    ``sketches/references/<domain>/``; the domain's entries in ``manifest.json`` replaced."""
    d = spec.name
    for folder in (sketches / d, sketches / "references" / d):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    manifest = (read_manifest(sketches) if (sketches / "manifest.json").is_file()
                else Manifest())
    manifest.entries = [e for e in manifest.entries if e.domain != d]
    for i, seed in enumerate(seeds, 1):
        name = f"{d}/sketch_{i:02d}.png"
        Image.fromarray(spec.sketch(seed)).save(sketches / name, optimize=True)
        ref = f"references/{d}/{spec.stem}_{seed:07d}.png"
        Image.fromarray(spec.render(seed, SKETCH_SIZE)).save(sketches / ref, optimize=True)
        manifest.upsert(SketchEntry(
            file=name, domain=d, reference=ref, tags=spec.tags(seed),
            provenance=(f"procedural hand-drawn-style sketch: {spec.sketch_ref}: "
                        f"{spec.sketch_what}; not drawn by a person").replace("{seed}",
                                                                               str(seed)),
            extra={"seed": seed}))
    write_manifest(manifest, sketches)


def epoch_metrics(run_dir: Path, heldout: Path, size: int, hidden: int) -> list[dict]:
    """Held-out L1 ([-1, 1] scale) and SSIM (uint8, Gaussian sigma 1.5, scikit-image) of every
    checkpoint, served like evaluation serves (evalkit.inputs.data.serving)."""
    from skimage.metrics import structural_similarity

    from evalkit.core.tf import tf
    from evalkit.inputs.data.pairs import load_pairs
    from evalkit.inputs.data.serving import output_to_uint8, uint8_to_signed
    from evalkit.inputs.models.resnet import resnet_generator

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


def folder_mb(folder: Path) -> float:
    """Sum of file sizes under ``folder`` in MB (1e6 bytes)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6


README_HEAD = """# The example: two small generators ("person", "gemstone"), made by evalkit's own tools

Small but real pix2pix training runs, one per domain, for `evalkit demo`, the tests and the
benchmarks. They are laid out like the service's checkpoints (one run folder per domain), so

    evalkit run examples/checkpoints

evaluates every domain with the settings in `evalkit.toml`. Regenerate a domain with

    .venv/bin/python benchmarks/make_example.py --domain person      # or --domain gemstone

(the code that makes it, `benchmarks/example/`, is not part of the evalkit package).

## What is here

| path | what |
| --- | --- |
| `evalkit.toml` | `[run]` held-out folder, sketch set, image size {size}, batch size 16 |
| `checkpoints/<domain>/` | one generator checkpoint per epoch in the seed's layout (`checkpoint` state file, `ckpt-N.index`, `ckpt-N.data-00000-of-00001`, saved with `tf.train.Checkpoint(generator=...)`); `train_log.json` (training losses per epoch, the settings) and `epochs.json` (the check below) |
| `heldout/<domain>/` | held-out AB pairs ({size}x{size} halves, PNG: edges left, photo right) of items never seen in training; `detector.json` says which edge detector made them |
| `sketches/` | ONE hand-drawn-style sketch set for all domains: `manifest.json` (schema `evalkit.sketches/1`, each entry's domain, provenance and reference photo), `<domain>/` the sketches, `references/<domain>/` the photos they were traced from |

| domain | checkpoints | held-out pairs | sketches | training pairs | epochs | training time (2 shared CPU cores) |
| --- | --- | --- | --- | --- | --- | --- |
{overview}

## How it was made (the same pipeline for every domain)

{subjects}
- **Edges**: `evalkit.inputs.edges.detect_edges` with detector **`{detector}`**: HED's weights
  are not available here, so the documented Sobel fallback produced the edge probability,
  followed by the pix2pix PostprocessHED recipe (NMS along the edge normal, threshold 25/255,
  thinning, removal of components under 5 px, black strokes on white). Edges made with HED
  would look different; do not mix the two.
- **Training**: `benchmarks/example/train.py` with the seed's recipe: ResNet generator
  (9 blocks) of width {hidden} (the seed uses 64), 70x70 PatchGAN of width {disc} on (edges,
  image), LSGAN + 10 L1, one D then one G step per batch, Adam 2e-4 / beta1 0.5, batch
  {batch}, random horizontal flips, seed {seed}, one checkpoint per epoch. The gemstone run
  has fewer epochs (each over more pairs) so that the whole example stays under 25 MB.
- **Sketches**: the outlines of a held-out item traced at 256 px with a 4 px pen that drifts
  smoothly off the true line, like a hand; each names the photo it was traced from as its
  reference. They are procedural stand-ins for children's drawings (see `human_sketches/`
  at the repository root, and `../shared/sketches/real/` for the seed team's real ones).

## Check (measured by make_example.py with its own code)

Held-out L1 (mean |y - target| on the [-1, 1] scale, lower is better) and SSIM (served uint8
output vs target, Gaussian sigma 1.5, data range 255, scikit-image; higher is better) on each
domain's held-out pairs at {size} px:

{tables}

Size on disk: {size_mb:.1f} MB.
"""


def domain_facts(root: Path, d: str) -> dict | None:
    """What the README says about domain ``d``, read from its files (None if absent)."""
    run = root / "checkpoints" / d
    if not (run / "epochs.json").is_file():
        return None
    log = json.loads((run / "train_log.json").read_text())
    check = json.loads((run / "epochs.json").read_text())
    heldout = root / "heldout" / d
    det = json.loads((heldout / "detector.json").read_text())
    sketches = read_manifest(root / "sketches")
    return {"config": log["config"], "train_pairs": log["train_pairs"], "check": check,
            "n_ckpt": len(list(run.glob("ckpt-*.index"))), "detector": det,
            "n_heldout": len(list(heldout.glob("*.png"))),
            "n_sketches": sum(e.domain == d for e in sketches.entries)}


def write_readme(root: Path) -> None:
    """Write ``root/README.md`` and ``root/evalkit.toml`` from every domain's files."""
    facts = {d: f for d in DOMAINS if (f := domain_facts(root, d)) is not None}
    if not facts:
        raise SystemExit(f"no domain with checkpoints/<domain>/epochs.json under {root}")
    first = next(iter(facts.values()))
    cfg = first["config"]
    size = cfg["image_size"]
    (root / "evalkit.toml").write_text(TOML.format(size=size))
    overview, subjects, tables = [], [], []
    for d, f in facts.items():
        det = f["detector"]
        overview.append(
            f"| `{d}` | {f['n_ckpt']} | {f['n_heldout']} | {f['n_sketches']} | "
            f"{f['train_pairs']} | {f['config']['epochs']} | "
            f"{f['check']['train_seconds'] / 60:.1f} min |")
        spec = DOMAINS[d]
        module, func = spec.render_ref.rsplit(".", 1)
        held = det.get("source", "").rsplit("seeds ", 1)[-1]
        subjects.append(f"- **{d}** (`{module.replace('.', '/')}.py`): {spec.subject}. "
                        f"`{func}(seed, {size})`: training seeds 0..{f['train_pairs'] - 1}, "
                        f"held-out seeds {held}.")
        epochs = f["check"]["epochs"]
        rows = "\n".join(f"| {r['checkpoint']} | {r['heldout_l1']:.4f} | "
                         f"{r['heldout_ssim']:.4f} |" for r in epochs)
        best_l1 = min(epochs, key=lambda r: r["heldout_l1"])["checkpoint"]
        best_ssim = max(epochs, key=lambda r: r["heldout_ssim"])["checkpoint"]
        tables.append(f"### {d} ({f['n_heldout']} held-out pairs; best L1 {best_l1}, best "
                      f"SSIM {best_ssim})\n\n| checkpoint | held-out L1 | held-out SSIM |\n"
                      f"| --- | --- | --- |\n{rows}")
    detectors = sorted({f["detector"]["detector"] for f in facts.values()})
    text = README_HEAD.format(
        size=size, overview="\n".join(overview), subjects="\n".join(subjects),
        detector="`, `".join(detectors), hidden=cfg["hidden_channels"],
        disc=cfg["disc_channels"], batch=cfg["batch_size"], seed=cfg["seed"],
        tables="\n\n".join(tables), size_mb=0.0)
    (root / "README.md").write_text(text)
    # the size line includes the README itself
    (root / "README.md").write_text(text.replace("Size on disk: 0.0 MB",
                                                 f"Size on disk: {folder_mb(root):.1f} MB"))


def make_domain(spec: DomainSpec, root: Path, args: argparse.Namespace) -> list[dict]:
    """Make, train and check one domain under ``root``; returns its per-epoch rows."""
    from benchmarks.example.train import TrainConfig, train

    run_dir = root / "checkpoints" / spec.name
    heldout_dir = root / "heldout" / spec.name
    for folder in (run_dir, heldout_dir):
        shutil.rmtree(folder, ignore_errors=True)
    n_train = args.train or spec.train
    epochs = args.epochs or spec.epochs
    tmp = Path(tempfile.mkdtemp(prefix="evalkit-example-"))
    train_dir = args.keep_train or tmp / "train"
    t0 = time.perf_counter()
    write_pairs(spec, list(range(n_train)), train_dir, args.size)
    held_seeds = list(range(HELDOUT_SEED0, HELDOUT_SEED0 + args.heldout))
    write_pairs(spec, held_seeds, heldout_dir, args.size)
    write_sketches(spec, held_seeds[:args.sketches], root / "sketches")
    print(f"{spec.name}: {n_train} train + {args.heldout} held-out pairs, {args.sketches} "
          f"sketches ({time.perf_counter() - t0:.1f} s)", flush=True)

    cfg = TrainConfig(image_size=args.size, hidden_channels=args.hidden_channels,
                      disc_channels=args.disc_channels, epochs=epochs, seed=args.seed)
    t1 = time.perf_counter()
    train(train_dir, run_dir, cfg)
    train_s = time.perf_counter() - t1
    shutil.rmtree(tmp, ignore_errors=True)

    rows = epoch_metrics(run_dir, heldout_dir, args.size, args.hidden_channels)
    (run_dir / "epochs.json").write_text(json.dumps(
        {"train_seconds": round(train_s, 1), "epochs": rows}, indent=2) + "\n")
    for r in rows:
        print(f"{spec.name} {r['checkpoint']}: held-out L1 {r['heldout_l1']:.4f}  "
              f"SSIM {r['heldout_ssim']:.4f}")
    print(f"{spec.name}: training {train_s / 60:.1f} min", flush=True)
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--domain", choices=sorted(DOMAINS), help="the domain to (re)make")
    ap.add_argument("--readme-only", action="store_true",
                    help="only rewrite README.md and evalkit.toml from the files present")
    ap.add_argument("--root", type=Path, default=ROOT / "examples")
    ap.add_argument("--train", type=int, help="training items [default: per domain]")
    ap.add_argument("--heldout", type=int, default=40, help="held-out items")
    ap.add_argument("--sketches", type=int, default=12, help="hand-drawn-style sketches")
    ap.add_argument("--size", type=int, default=64, help="image size (px)")
    ap.add_argument("--hidden-channels", type=int, default=12)
    ap.add_argument("--disc-channels", type=int, default=32)
    ap.add_argument("--epochs", type=int, help="[default: per domain]")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep-train", type=Path, help="keep the training pairs in this folder")
    args = ap.parse_args(argv)
    root: Path = args.root
    if args.readme_only:
        write_readme(root)
        print(f"wrote {root / 'README.md'} and {root / 'evalkit.toml'}")
        return 0
    if not args.domain:
        ap.error("give --domain (person or gemstone) or --readme-only")
    rows = make_domain(DOMAINS[args.domain], root, args)
    write_readme(root)
    size_mb = folder_mb(root)
    print(f"example {size_mb:.1f} MB in {root}")
    first, last = rows[0], rows[-1]
    if not (last["heldout_l1"] < first["heldout_l1"]
            and last["heldout_ssim"] > first["heldout_ssim"]):
        print("FAILED: the last epoch is not better than the first on held-out L1 and SSIM")
        return 1
    if size_mb >= MAX_EXAMPLE_MB:
        print(f"FAILED: the example is {size_mb:.1f} MB, over {MAX_EXAMPLE_MB:g} MB")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
