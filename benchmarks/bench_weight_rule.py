"""Which ``[ranking] track_weights`` rule keeps the offline pick closest to the pick made
with every metric (issue 23 part 3: the evidence for the default rule).

Offline (no Inception/AlexNet weights) FID, KID and LPIPS are skipped, and the sketch
track is left with adherence_f1 alone. This benchmark evaluates with ALL metrics, by
injecting stand-ins the way the tests do (FID/KID: a tiny seeded TorchScript feature
extractor passed as ``--feature-extractor``, like ``tests/test_tracks_e2e.py``; LPIPS: a
seeded random-weight AlexNet file put in ``$EVALKIT_WEIGHTS_DIR`` and accepted by its own
sha256, like ``tests/test_lpips.py``), on

* (a) the shipped example (``examples/``: person 8 + gemstone 6 checkpoints, 40 held-out
  pairs + 12 sketches per domain, 64 px), and
* (b) trained runs: ``benchmarks/bench_race.py``'s ``trained_run`` (person, width 8,
  ``--epochs`` checkpoints, 160 training pairs), one per ``--train-seeds`` training seed
  (default 0; the recorded section used 0,1,2,3,4), on ``--heldout-pairs`` procedural held-out
  pairs + the example's 12 person sketches. Measured here (2 shared cores, load 3-11): the
  example evaluates in ~40 s, each trained run trains and evaluates in 3-5 min; the study
  itself takes ~20 s.

Then, for each rule (``fixed``, ``measured``, ``per_metric``: docs/ranking.md), it ranks
(i) with all metrics (the reference pick) and (ii) with only the offline metrics (FID, KID
and LPIPS rows turned into ``skipped``, as an offline run stores them; then also without
the sketch track's targets, as for drawn sketches without reference photos, which leaves
adherence alone there: the thin track of issue 23; and, for comparison, online without
those targets), and reports how
often the offline pick equals the reference pick: on the point values (per domain) and
over ``--bootstrap`` paired bootstrap resamples of the samples (the ranking's own
bootstrap, :mod:`evalkit.decide.ranking.scores`: the same seed draws the same samples
for both, so each resample compares the two picks on the same data). The reference is
the rule's own all-metrics pick; ``fixed`` and ``measured`` give the same weights when
every metric is measured, so they share it. A last column gives the weight of the
offline sketch track under the rule.

Usage: ``.venv/bin/python benchmarks/bench_weight_rule.py [--keep DIR] [--epochs N]
[--heldout-pairs N] [--train-seeds 0,1,2] [--bootstrap B] [--record]`` (``--keep`` reuses evaluations made
there; ``--record`` writes the section ``bench_weight_rule`` of reports/benchmarks.md).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import evalkit  # noqa: E402,F401  (torch before TensorFlow)
from benchmarks._record import Printer, record  # noqa: E402

#: Metrics that need downloaded weights: what an offline run skips.
ONLINE_ONLY = ("fid", "kid", "lpips")
RULES = ("fixed", "measured", "per_metric")


def write_extractor(path: Path) -> Path:
    """A tiny seeded TorchScript feature extractor (8 features) for FID/KID."""
    import torch

    class Tiny(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.num_features = 8
            torch.manual_seed(0)
            self.conv = torch.nn.Conv2d(3, 8, 5, stride=4)
            torch.nn.init.normal_(self.conv.weight)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.relu(self.conv(x.float() / 255.0)).mean(dim=(2, 3))

    if not path.exists():
        torch.jit.script(Tiny()).save(str(path))
    return path


def inject_alexnet(folder: Path) -> None:
    """A seeded random-weight AlexNet as the LPIPS backbone: written to ``folder``, which
    becomes ``$EVALKIT_WEIGHTS_DIR``, and accepted by its own sha256 (this process only)."""
    import torch
    import torchvision

    from evalkit.measure import weights as W

    folder.mkdir(parents=True, exist_ok=True)
    f = folder / W.ALEXNET.name
    if not f.exists():
        torch.manual_seed(7)
        torch.save(torchvision.models.alexnet(weights=None).state_dict(), f)
    os.environ[W.ENV_DIR] = str(folder)
    stand_in = dataclasses.replace(W.ALEXNET, sha256=W.cached_sha256(f))
    W.ALEXNET = stand_in
    W.REGISTRY["alexnet"] = stand_in


def evaluate(run_dir: Path, out: Path, ext: Path, **options) -> Path:
    """``evalkit run`` with every metric (skipped when ``out`` already holds a selection-
    ready evaluation of the same inputs: the store reuses results)."""
    from evalkit.api import run

    with contextlib.redirect_stdout(io.StringIO()):  # its results table
        run(run_dir, out, feature_extractor=str(ext), no_report=True, quiet=True, **options)
    return out


def example_out(base: Path, ext: Path) -> Path:
    return evaluate(ROOT / "examples" / "checkpoints", base / "example-out", ext)


def trained_out(base: Path, ext: Path, epochs: int, width: int, pairs: int,
                seed: int = 0) -> Path:
    """bench_race's trained run (training seed ``seed``; seed 0 in ``base`` itself, as
    bench_race keeps it) evaluated with every metric."""
    from benchmarks.bench_race import SIZE, heldout_dir, trained_run

    where = base if seed == 0 else base / f"train-seed{seed}"
    run = trained_run(where, epochs, width, 160, seed)
    heldout = heldout_dir(base, pairs)
    return evaluate(run, where / f"trained-out-{pairs}", ext, heldout=str(heldout),
                    sketches=str(ROOT / "examples" / "sketches"), domain="person",
                    image_size=SIZE, batch_size=16)


def offline(results, no_targets: bool = False, online: bool = False):
    """The results as an offline run stores them: FID/KID/LPIPS skipped, no value; with
    ``no_targets`` also the sketch track's paired metrics (L1, SSIM, PSNR, LPIPS), as for
    drawn sketches without reference photos, leaving adherence alone there; with
    ``online`` only the latter (every weight file present)."""
    res = results.copy()
    gone = res["metric"].isin(() if online else ONLINE_ONLY)
    if no_targets:
        gone |= (res["kind"] == "sketches") & res["metric"].isin(PAIRED)
    res.loc[gone, "status"] = "skipped"
    for col in ("value", "ci_low", "ci_high", "std"):
        res.loc[gone, col] = float("nan")
    res.loc[gone, "reason"] = "offline (benchmark: weights or targets withheld)"
    return res, gone


#: Scenario -> (whether the sketch track loses its targets, whether the weights are there).
SCENARIOS = {"offline": (False, False), "offline, sketches without targets": (True, False),
             "online, sketches without targets": (True, True)}
PAIRED = ("l1", "ssim", "psnr", "lpips")


def domain_picks(out: Path, rule: str, bootstrap: int) -> dict[str, dict]:
    """Per domain: the all-metrics ranking and each scenario's ranking under ``rule``."""
    from evalkit.decide.ranking.rank import RankingConfig, rank_checkpoints
    from evalkit.decide.selection import domain_frames, domains_of
    from evalkit.store.results import Store

    with Store(out, create=False) as store:
        results, ck, samples = store.results(), store.checkpoints(), store.sample_metrics()
    cfg = RankingConfig(track_weights=rule, bootstrap=bootstrap)
    picks = {}
    for d in domains_of(ck, results):
        r, c, s = domain_frames(d, results, ck, samples)
        picks[d] = {"all": rank_checkpoints(r, c, s, cfg)}
        for name, (no_targets, online) in SCENARIOS.items():
            res, gone = offline(results, no_targets, online)
            dropped = set(map(tuple, results.loc[gone, ["dataset", "metric"]].to_numpy()))
            keep = [(ds, m) not in dropped for ds, m in zip(samples["dataset"],
                                                            samples["metric"], strict=True)]
            ro, _, so = domain_frames(d, res, ck, samples[keep])
            picks[d][name] = rank_checkpoints(ro, c, so, cfg)
    return picks


def sketch_weight(ranking) -> float:
    """Total effective weight of the sketch track(s) in a ranking."""
    t = ranking.tracks
    return float(t[t["dataset"].str.startswith("sketches")]["weight"].sum())


def study(outs: dict[str, Path], bootstrap: int) -> list[dict]:
    """One row per (rule, scenario): per domain, the point pick and the bootstrap
    agreement with the rule's all-metrics pick, and the sketch track's weight."""
    rows = []
    for rule in RULES:
        picks = {(f"{label}/{d}" if d else label): p for label, out in outs.items()
                 for d, p in domain_picks(out, rule, bootstrap).items()}
        for scenario in SCENARIOS:
            row = {"rule": rule, "scenario": scenario, "cells": {}}
            for key, p in picks.items():
                a, o = p["all"], p[scenario]
                same = [x == y for x, y in zip(a.boot_winners, o.boot_winners, strict=True)]
                ranks = a.table.set_index("checkpoint")["rank"]
                row["cells"][key] = {"point": a.winner == o.winner, "all": a.winner,
                                     "rank": int(ranks[o.winner]),
                                     "offline": o.winner, "boot": sum(same) / max(1, len(same)),
                                     "thin": sketch_weight(o), "full": sketch_weight(a)}
            rows.append(row)
    return rows


def table(rows: list[dict], bootstrap: int) -> list[str]:
    keys = list(rows[0]["cells"])
    head = (["rule", "scenario"] + [f"{k}: pick, agreement over {bootstrap} resamples"
                                            for k in keys]
            + ["mean agreement", "sketch-track weight in the scenario (all metrics)"])
    lines = [" | ".join(head)]
    for r in rows:
        cells = [r["rule"], r["scenario"]]
        for k in keys:
            c = r["cells"][k]
            cells.append(f"{'same' if c['point'] else 'DIFFERENT'} ({short(c['offline'])}"
                         + ("" if c["point"] else f", all-metrics rank {c['rank']}, "
                                                   f"vs {short(c['all'])}")
                         + f"), {c['boot']:.0%}")
        cells.append(f"{sum(c['boot'] for c in r['cells'].values()) / len(keys):.0%}")
        thin = sorted({f"{c['thin']:.2f} ({c['full']:.2f})" for c in r["cells"].values()})
        cells.append(", ".join(thin))
        lines.append(" | ".join(cells))
    return lines


def short(name: str | None) -> str:
    return str(name).rsplit("/", 1)[-1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--keep", type=Path, help="work folder to keep (reuses evaluations)")
    ap.add_argument("--epochs", type=int, default=12, help="trained run: checkpoints")
    ap.add_argument("--width", type=int, default=8, help="trained run: generator width")
    ap.add_argument("--heldout-pairs", type=int, default=200,
                    help="trained run: procedural held-out pairs")
    ap.add_argument("--train-seeds", type=lambda v: [int(x) for x in v.split(",") if x],
                    default=[0], help="trained runs' training seeds, comma-separated "
                    "('' = the example only)")
    ap.add_argument("--bootstrap", type=int, default=200)
    ap.add_argument("--record", action="store_true", help="write into reports/benchmarks.md")
    args = ap.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="bench-weight-rule-"))
    base.mkdir(parents=True, exist_ok=True)
    say = Printer()
    ext = write_extractor(base / "features.pt")
    inject_alexnet(base / "weights")
    def took(t: float, out: Path, existed: bool) -> str:
        return (f"reused from {out}" if existed
                else f"{time.perf_counter() - t:.0f} s, load average {os.getloadavg()[0]:.1f}")

    t, existed = time.perf_counter(), (base / "example-out" / "results.sqlite").exists()
    outs = {"example": example_out(base, ext)}
    say("example (person 8 + gemstone 6 checkpoints, 40 held-out pairs + 12 sketches each) "
        "evaluated with every metric (stand-in FID/KID extractor and LPIPS backbone): "
        + took(t, outs["example"], existed))
    for seed in args.train_seeds:
        where = base if seed == 0 else base / f"train-seed{seed}"
        t = time.perf_counter()
        existed = (where / f"trained-out-{args.heldout_pairs}" / "results.sqlite").exists()
        outs[f"trained{seed}"] = trained_out(base, ext, args.epochs, args.width,
                                             args.heldout_pairs, seed)
        say(f"trained{seed}: bench_race's trained run, training seed {seed} (person, "
            f"{args.epochs} checkpoints, width {args.width}, {args.heldout_pairs} held-out "
            f"pairs + 12 sketches), trained and evaluated: "
            + took(t, outs[f"trained{seed}"], existed))
    t, cpu = time.perf_counter(), time.process_time()
    rows = study(outs, args.bootstrap)
    say(f"study (3 rules x 4 rankings x {len(outs)} evaluations, {args.bootstrap} resamples "
        f"each): {time.perf_counter() - t:.0f} s wall, {time.process_time() - cpu:.0f} s CPU")
    for line in table(rows, args.bootstrap):
        say(line)
    say(f"load average (1 min): {os.getloadavg()[0]:.2f}")
    if args.record:
        cmd = "benchmarks/bench_weight_rule.py --record" + (
            f" --epochs {args.epochs}" if args.epochs != 12 else "") + (
            f" --heldout-pairs {args.heldout_pairs}" if args.heldout_pairs != 200 else "") + (
            f" --train-seeds {','.join(map(str, args.train_seeds))}"
            if args.train_seeds != [0] else "")
        print(f"recorded in {record('bench_weight_rule', 'Track-weight rule: offline pick vs all-metrics pick', cmd, say.text)}")


if __name__ == "__main__":
    main()
