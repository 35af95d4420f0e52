"""Racing selection vs the full evaluation on a 12-checkpoint trained run.

Trains the example's ``person`` generator (``benchmarks/example/train.py``, the seed's
recipe) for ``--epochs`` epochs (default 12) at a small width, one checkpoint per epoch, on
procedural cartoon faces disjoint from the example's held-out set; then evaluates it on a
held-out set and the example's hand-drawn-style sketches (``examples/sketches``, person, 12):

* ``--heldout-pairs N`` (default 200, a realistic size): N procedural held-out pairs made
  with :func:`benchmarks.make_example.write_pairs` from seeds 5,000,000.. (disjoint from the
  training seeds 3,000,000.. and the example's held-out seeds 1,000,000..);
* ``--heldout-pairs 0``: the example's own 40 held-out pairs (``examples/heldout/person``).

Racing's evidence grows with the absolute number of samples a round sees, so its savings
grow with the data; the 52-sample case shows the small end. Each setting is evaluated:

* once in full (every checkpoint on every sample), giving the reference winner, and
* with racing (:mod:`evalkit.execute.racing`) under ``--seeds`` different subset seeds.

Prints the checkpoints, the generator compute a race saved (full / raced, in images; the
median and the range over seeds) and whether the race chose the same checkpoint as the full
evaluation (k of the seeds), and how firmly the full data decides the full evaluation's own
choice (:func:`coin_flips`: the comparisons it cannot order whose reversal alone changes
its winner; where there are such, the full choice is a coin flip of the data), and, per
ranking method, which checkpoints change the full winner when left out alone
(:func:`drop_one`). Offline, FID/KID and LPIPS are skipped (their weights are
absent), so the ranking uses L1, SSIM, PSNR and sketch adherence, as any offline run.

``--earlier-rule`` races under the rule before issue 23 part 2 (a checkpoint leaves when
its P(first) alone is below the threshold; patched over
:func:`evalkit.execute.racing.race.losers`), for a like-for-like comparison on the same
checkpoints and subset seeds.

``--random N`` (issue 23 part 2, cycles among the top): instead of a trained run,
``--random-inits`` runs of N random-weight seed-layout checkpoints (``tests/seed_reference.py``,
width ``--width``; run ``i`` initialized from seeds ``10,000 + i * N`` on) on
``--heldout-pairs`` (default 24) procedural pairs + the 12 sketches. Each is evaluated in full;
a run has a *cycle among the top* when the Smith set of its full evaluation's head-to-head
margins has more than one member or its winner is not a Condorcet winner. Those runs are
raced under ``--seeds`` subset seeds twice: with the current rule (a checkpoint leaves when
its P(first) and its P(Smith) are both below the threshold) and, for comparison, the
earlier one (P(first) alone; patched in). Prints per run the full winner, its head-to-head
wins, the Smith set and P(Smith); per race the winner, the compute saved and the leaders;
how many runs had a cycle; and per rule the same-winner count and the median saving.

Usage: ``.venv/bin/python benchmarks/bench_race.py [--heldout-pairs N] [--keep DIR]
[--record [--section NAME --title TITLE]]`` (``--keep`` reuses a trained run, the held-out
pairs and a full evaluation of the same data and checkpoint files there; a kept run trained
with other settings is refused; ``--record`` writes the section ``bench_race`` (200 pairs,
defaults), ``bench_race_<N>`` / ``..._<settings>``, ``bench_race_random_<N>_<pairs>`` with
``--random``, or ``--section`` of reports/benchmarks.md). Each output ends with the CPU
flags and the 1-min load average; wall and CPU (user + system) seconds are printed, the
generator compute (images) is exact.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shlex
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import evalkit  # noqa: E402,F401  (torch before TensorFlow)
from benchmarks._record import Printer, record  # noqa: E402
from benchmarks.bench_bf16 import cpu_flags  # noqa: E402
from evalkit.execute.racing import DEFAULT_GROWTH  # noqa: E402

SIZE = 64
TRAIN_SEED0 = 3_000_000  # the example's held-out faces start at 1,000,000
HELDOUT_SEED0 = 5_000_000  # the benchmark's own held-out faces (--heldout-pairs N)


def trained_run(base: Path, epochs: int, width: int, pairs: int, seed: int = 0) -> Path:
    from benchmarks.example.train import TrainConfig, train
    from benchmarks.make_example import DOMAINS, write_pairs

    run = base / "run" / "person"
    stamp = base / "run" / "trained.json"
    wanted = {"epochs": epochs, "width": width, "pairs": pairs, "seed": seed}
    if run.is_dir() and len(list(run.glob("ckpt-*.index"))) >= epochs:
        kept = json.loads(stamp.read_text()) if stamp.exists() else None
        if kept not in (None, wanted):  # a run kept without a stamp predates it
            sys.exit(f"error: {base} keeps a run trained with {kept}, not {wanted}; "
                     "use another --keep folder")
        return run
    train_dir = base / "train"
    if not train_dir.is_dir():
        write_pairs(DOMAINS["person"], list(range(TRAIN_SEED0, TRAIN_SEED0 + pairs)),
                    train_dir, SIZE)
    shutil.rmtree(run, ignore_errors=True)
    train(train_dir, run, TrainConfig(image_size=SIZE, hidden_channels=width, epochs=epochs,
                                      seed=seed), log=None)
    stamp.write_text(json.dumps(wanted))
    return run


def heldout_dir(base: Path, pairs: int) -> Path:
    """The held-out folder: the example's (``pairs == 0``) or ``pairs`` new ones."""
    from benchmarks.make_example import DOMAINS, write_pairs

    if pairs == 0:
        return ROOT / "examples" / "heldout" / "person"
    folder = base / f"heldout-{pairs}"
    if len(list(folder.glob("*.png"))) != pairs:
        shutil.rmtree(folder, ignore_errors=True)
        write_pairs(DOMAINS["person"], list(range(HELDOUT_SEED0, HELDOUT_SEED0 + pairs)),
                    folder, SIZE)
    return folder


def plan(run: Path, heldout: Path):
    from evalkit.commands.run import load_datasets
    from evalkit.execute.domains import DomainPlan
    from evalkit.inputs.checkpoints.discover import discover_checkpoints

    refs = [dataclasses.replace(r, name=f"person/{r.name}") for r in discover_checkpoints(run)]
    datasets = load_datasets(heldout, ROOT / "examples" / "sketches", SIZE, None, "person")
    return DomainPlan("person", run, refs, datasets=datasets)


def full_evaluation(base: Path, p, opts, reuse: bool) -> tuple[Path, float, float]:
    """Every checkpoint on every sample: the store folder, wall and process CPU seconds
    (user + system). Kept in ``base`` under the datasets' content hashes and a hash of the
    checkpoints' files, so a different held-out set (or a re-trained run) is a different
    folder; with ``reuse``, taken from there when the same data was evaluated before."""
    import hashlib

    from evalkit.execute.engine import evaluate_domains

    ckpts = hashlib.sha256("".join(r.files_hash() for r in p.refs).encode()).hexdigest()
    key = "-".join([d.content_hash[:12] for d in p.datasets] + [ckpts[:12]])
    out = base / f"full-{key}"
    stamp = out / "wall_s.json"
    if reuse and stamp.exists():
        kept = json.loads(stamp.read_text())
        return out, kept["wall_s"], kept.get("cpu_s", float("nan"))
    shutil.rmtree(out, ignore_errors=True)
    t, c = time.perf_counter(), time.process_time()
    evaluate_domains([p], out, opts, log=lambda s: None)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    stamp.write_text(json.dumps({"wall_s": wall, "cpu_s": cpu}))
    return out, wall, cpu


def short(name: str | None) -> str:
    return str(name).rsplit("/", 1)[-1]


def ranked(out: Path, config, names: list[str] | None = None):
    """The ranking of ``out`` by ``config`` (a RankingConfig), of ``names`` only if given."""
    from evalkit.decide.ranking.rank import rank_checkpoints
    from evalkit.store.results import Store

    with Store(out, create=False) as store:
        results, ck, samples = store.results(), store.checkpoints(), store.sample_metrics()
    if names is not None:
        ck = ck[ck["name"].isin(names)]
    return rank_checkpoints(results, ck, samples, config)


def among_leaders(full_out: Path, leaders: list[str], config) -> str | None:
    """The full evaluation's winner when only ``leaders`` take part."""
    return ranked(full_out, config, leaders).winner


def coin_flips(full_out: Path, config) -> tuple[list[tuple], float]:
    """How firmly the full data decides the full evaluation's choice.

    For each counted dataset/metric with per-sample values, and each checkpoint ``a``
    neighbouring the winner or the runner-up ``f`` there (no other checkpoint's value
    between theirs): when the full data itself cannot order ``a`` and ``f`` (paired
    per-sample differences, ``|mean / se| < 1.96``), their two values are swapped and the
    checkpoints ranked again by the same rule (``config``, without its bootstrap).
    Returns the swaps that change the winner, and the runner-up's score margin. Such a
    choice is a coin flip of the data: a race, which sees a subset of the raced-out
    checkpoints' samples, cannot be expected to reproduce it. Set-level metrics (no
    per-sample values) are not examined.
    """
    import math

    from evalkit.decide.ranking.rank import rank_checkpoints
    from evalkit.store.results import Store

    with Store(full_out, create=False) as store:
        results, ck, sm = store.results(), store.checkpoints(), store.sample_metrics()
    ranking = rank_checkpoints(results, ck, sm, config)
    plain = dataclasses.replace(config, bootstrap=0)
    t = ranking.participants.set_index("checkpoint")
    w, ru = ranking.winner, ranking.runner_up
    if ru is None:
        return [], math.inf
    margin = float(t.loc[ru, "score"] - t.loc[w, "score"])
    values = {key: g.set_index("sample_id")["value"].astype(float)
              for key, g in sm.groupby(["dataset", "metric", "checkpoint"])}
    comp = ranking.components
    out = []
    for c in ranking.counted.itertuples():
        point = comp[(comp["dataset"] == c.dataset) & (comp["metric"] == c.metric)
                     ].set_index("checkpoint")["value"].dropna()
        for f in (w, ru):
            pf = values.get((c.dataset, c.metric, f))
            for a in t.index:
                pa = values.get((c.dataset, c.metric, a))
                if a in (w, ru) or pa is None or pf is None or a not in point \
                        or f not in point:
                    continue
                lo, hi = sorted((point[a], point[f]))
                if ((point > lo) & (point < hi)).any():
                    continue  # not neighbours: one swap would reorder others too
                d = (pa - pf).dropna()
                if len(d) < 2:
                    continue
                se = float(d.std(ddof=1)) / math.sqrt(len(d))
                z = float(d.mean()) / se if se > 0 else math.inf
                if abs(z) >= 1.96:
                    continue
                swapped = results.copy()
                at = (swapped["dataset"] == c.dataset) & (swapped["metric"] == c.metric)
                swapped.loc[at & (swapped["checkpoint"] == a), "value"] = point[f]
                swapped.loc[at & (swapped["checkpoint"] == f), "value"] = point[a]
                if rank_checkpoints(swapped, ck, None, plain).winner != w:
                    out.append((c.dataset, c.metric, short(a), short(f), z))
    return out, margin


def drop_one(full_out: Path) -> dict[str, list[str]]:
    """Per ranking method: the checkpoints (other than the winner) whose removal alone
    changes the full evaluation's winner. A rule whose choice between two checkpoints
    depends on a third, worse one shows here (weighted normalized ranks can; a Condorcet
    winner of the pairwise rule never changes)."""
    from evalkit.decide.ranking.rank import METHODS, RankingConfig, rank_checkpoints
    from evalkit.store.results import Store

    with Store(full_out, create=False) as store:
        results, ck = store.results(), store.checkpoints()
    out = {}
    for method in METHODS:
        cfg = RankingConfig(bootstrap=0, method=method)
        full = rank_checkpoints(results, ck, None, cfg)
        out[method] = [short(c) for c in full.participants["checkpoint"]
                       if c != full.winner and rank_checkpoints(
                           results, ck[ck["name"] != c], None, cfg).winner != full.winner]
    return out


RANDOM_SEED0 = 10_000  # init seeds of the random-weight checkpoints (--random)


def random_run(base: Path, n: int, width: int, init: int) -> Path:
    """``n`` random-weight seed-layout checkpoints (ckpt-1..n, generator width ``width``),
    initialized from seeds ``RANDOM_SEED0 + init * n`` onwards (kept in ``base``)."""
    from tests.seed_reference import save_seed_checkpoint

    run = base / f"random-{init}" / "person"
    if len(list(run.glob("ckpt-*.index"))) != n:
        shutil.rmtree(run, ignore_errors=True)
        run.mkdir(parents=True)
        save_seed_checkpoint(run, n=n, hidden=width, seed=RANDOM_SEED0 + init * n)
    return run


def top_cycle(ranking) -> tuple[list[str], tuple[int, int, int]]:
    """The Smith set of a ranking's point values (its head-to-head ``margins``), best
    first, and the winner's head-to-head record ``(beats, ties, loses to)``. The winner is
    a Condorcet winner when it beats all others. A Smith set of more than one member is a
    group at the top whose members reach each other through chains of wins or ties; when
    the winner loses to one of them, it wins through a chain (a cycle), when it only ties,
    the top is a tie."""
    from evalkit.decide.ranking.scores import MARGIN_EPS, _smith_members

    m = ranking.margins
    members = _smith_members(m.to_numpy(float))
    smith = [c for c in ranking.participants["checkpoint"] if members[m.index.get_loc(c)]]
    row = m.loc[ranking.winner].drop(ranking.winner)
    return smith, (int((row > MARGIN_EPS).sum()), int((row.abs() <= MARGIN_EPS).sum()),
                   int((row < -MARGIN_EPS).sum()))


def earlier_losers(ranking, p: dict[str, float], threshold: float, settled: list[str]
                   ) -> dict[str, tuple[float, float]]:
    """The rule before issue 23 part 2, for comparison: a checkpoint leaves when its
    P(first) alone is below ``threshold`` (the round's most likely winner and settled
    checkpoints never leave); patched over :func:`evalkit.execute.racing.race.losers`."""
    best = max(p, key=lambda k: p[k]) if p else None
    return {k: (v, float("nan")) for k, v in p.items()
            if k != best and k not in settled and v < threshold}


def race_once(run: Path, heldout: Path, out: Path, opts, settings, earlier: bool):
    """One race of ``run`` into ``out`` (replaced): ``(RaceResult, wall s, CPU s)``; with
    ``earlier``, under the P(first)-only rule (:func:`earlier_losers`)."""
    from unittest import mock

    from evalkit.execute.racing import race_domains

    shutil.rmtree(out, ignore_errors=True)
    t, c = time.perf_counter(), time.process_time()
    with mock.patch("evalkit.execute.racing.race.losers", earlier_losers) if earlier \
            else contextlib.nullcontext():
        res = race_domains([plan(run, heldout)], out, opts, settings, log=lambda s: None)
    return res, time.perf_counter() - t, time.process_time() - c


def random_mode(args: argparse.Namespace, base: Path, say) -> None:
    """``--random N``: runs of N random-weight checkpoints; the full evaluation of each,
    and for those with a cycle among the top (:func:`top_cycle`), races under the current
    rule and the earlier one (``--seeds`` subset seeds each)."""
    from evalkit.decide.ranking.rank import RankingConfig
    from evalkit.execute.engine import RunOptions
    from evalkit.execute.racing import RaceSettings

    heldout = heldout_dir(base, args.heldout_pairs)
    opts = RunOptions(image_size=SIZE, batch_size=16, progress=False)
    rule = RankingConfig(method=args.method)
    tried, cycles = 0, []
    rows = {False: [], True: []}  # earlier rule? -> (same, saved) per race
    wall = {False: [], True: []}
    cpu = {False: [], True: []}
    full_walls, full_cpus = [], []
    for init in range(args.random_inits):
        run = random_run(base, args.random, args.width, init)
        p = plan(run, heldout)
        # reused when kept: the folder is keyed by the data's and the checkpoints' hashes
        full_out, full_s, full_c = full_evaluation(base / f"random-{init}", p, opts,
                                                   reuse=True)
        full_walls.append(full_s)
        full_cpus.append(full_c)
        full = ranked(full_out, rule)
        smith, (beats, ties, loses) = top_cycle(full)
        tried += 1
        t = full.participants.set_index("checkpoint")
        w = full.winner
        cycle = len(smith) > 1 or beats < len(t) - 1
        kind = "cycle" if loses else "tie"
        ps = "; P(Smith) " + ", ".join(f"{short(c)} {t.loc[c, 'p_smith']:.2f}"
                                       for c in t.sort_values("p_smith", ascending=False)
                                       .index[:4])
        say(f"init {init} (seeds {RANDOM_SEED0 + init * args.random}..): full winner "
            f"{short(w)} (P(first) {t.loc[w, 'p_first']:.2f}; head to head it beats {beats}, "
            f"ties {ties}, loses to {loses}), Smith set "
            f"{{{', '.join(short(c) for c in smith)}}}{ps}"
            + (f" -> {kind} among the top" if cycle else ""))
        if not cycle:
            continue
        cycles.append((init, kind))
        for earlier in (False, True):
            line = []
            for seed in range(args.seeds):
                res, ws, cs = race_once(run, heldout, base / f"race-{init}-{seed}", opts,
                                        RaceSettings(seed=seed, threshold=args.threshold,
                                                     start_fraction=args.start_fraction,
                                                     min_samples=args.min_samples,
                                                     growth=args.growth,
                                                     ranking_config=rule), earlier)
                r = ranked(base / f"race-{init}-{seed}", rule)
                rows[earlier].append((r.winner == w, res.saved))
                wall[earlier].append(ws)
                cpu[earlier].append(cs)
                kept = r.participants["checkpoint"].tolist()
                among = among_leaders(full_out, kept, rule)
                lost = [short(c) for c in smith if c not in kept]
                line.append(f"seed {seed}: {short(r.winner)}"
                            f"{'' if r.winner == w else ' (DIFFERENT)'} {res.saved:.2f}x, "
                            f"leaders {'/'.join(short(c) for c in kept)} (full data among "
                            f"them: {short(among)}; full Smith set members raced out: "
                            f"{'/'.join(lost) or 'none'})")
            say(f"  races, {'earlier rule (P(first) only)' if earlier else 'Smith-set rule'}"
                f": " + "; ".join(line))
    say(f"runs tried: {tried} ({args.random} random-weight checkpoints each, width "
        f"{args.width}, {', '.join(f'{d.name} {len(d)}' for d in p.datasets)}, {SIZE} px); "
        f"with a Smith set > 1 or no Condorcet winner: {len(cycles)}"
        + (f" (inits {', '.join(f'{i} {k}' for i, k in cycles)}; 'cycle': the winner loses "
           "to a member head to head, 'tie': it only ties)" if cycles else ""))
    say(f"full evaluation: {args.random * sum(len(d) for d in p.datasets)} checkpoint·images, "
        f"wall {statistics.median(full_walls):.0f} s, CPU {statistics.median(full_cpus):.0f} s "
        "(medians; measured when first evaluated into the --keep folder)")
    for earlier in (False, True):
        got = rows[earlier]
        if not got:
            continue
        saved = [x for _, x in got]
        say(f"{'earlier rule (P(first) only)' if earlier else 'Smith-set rule (current)'} on "
            f"the {len(cycles)} run(s) above x {args.seeds} seeds: same winner as the full "
            f"evaluation {sum(s for s, _ in got)} of {len(got)}; compute saved "
            f"{statistics.median(saved):.2f}x (median; {min(saved):.2f}-{max(saved):.2f}x); "
            f"per race wall {statistics.median(wall[earlier]):.0f} s, CPU "
            f"{statistics.median(cpu[earlier]):.0f} s (medians)")
    say(f"race settings: ranking method {args.method}, start fraction {args.start_fraction:g}, "
        f"min samples {args.min_samples}, growth {args.growth:g}, threshold "
        f"{args.threshold:g}, finite-population corrected bootstrap")


def machine_line() -> str:
    """The CPU flags and the 1-min load average, for the record (wall times are noisy on a
    shared machine; the generator counts are exact)."""
    return (f"CPU flags: {' '.join(cpu_flags()) or '(none of the AVX-512/AMX ones)'}; "
            f"load (1-min average) at the end {os.getloadavg()[0]:.1f} on "
            f"{os.cpu_count()} CPUs")


def section(args: argparse.Namespace) -> tuple[str, str]:
    """The reports/benchmarks.md section of these settings, and its title."""
    size = (f"{args.heldout_pairs} held-out pairs" if args.heldout_pairs
            else "the example's 40 held-out pairs")
    name, title = "bench_race", f"Racing selection vs full evaluation ({size} + 12 sketches)"
    if args.heldout_pairs != 200:
        name += f"_{args.heldout_pairs}"
    if args.train_seed:
        name += f"_train{args.train_seed}"
        title += f", training seed {args.train_seed}"
    if args.method != "pairwise":
        name += f"_{args.method}"
        title += f", ranking method {args.method}"
    changed = [(k, f"{k.replace('_', ' ')} {getattr(args, k):g}") for k, v in
               (("start_fraction", 1 / 8), ("min_samples", 4), ("threshold", 0.01),
                ("growth", DEFAULT_GROWTH)) if getattr(args, k) != v]
    if args.earlier_rule:
        changed.append(("earlier_rule", "earlier racing rule (P(first) alone)"))
    if args.no_finite_population:
        changed.append(("no_finite_population", "plain bootstrap (no finite-population "
                                                "correction)"))
    if changed:
        name += "_" + "_".join(k for k, _ in changed)
        title += ", " + ", ".join(t for _, t in changed)
    return name, title


def write_record(args: argparse.Namespace, say, name: str, title: str) -> None:
    """Write the printed lines as section ``name`` of reports/benchmarks.md, with the
    command that re-runs it (``--keep DIR`` left out: a local folder)."""
    argv = sys.argv[1:]
    if "--keep" in argv:
        i = argv.index("--keep")
        argv = argv[:i] + argv[i + 2:]
    cmd = "benchmarks/bench_race.py " + shlex.join(argv)
    print(f"recorded in {record(name, title, cmd.strip(), say.text)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--width", type=int, default=8)
    ap.add_argument("--pairs", type=int, default=160, help="training pairs")
    ap.add_argument("--train-seed", type=int, default=0,
                    help="the trainer's seed (another trained run; use another --keep)")
    ap.add_argument("--heldout-pairs", type=int, default=None,
                    help="procedural held-out pairs (0: the example's 40; default 200, "
                         "with --random 24)")
    ap.add_argument("--random", type=int, default=0, metavar="N",
                    help="instead of a trained run: runs of N random-weight checkpoints "
                         "(--random-inits of them); races those with a cycle among the top")
    ap.add_argument("--random-inits", type=int, default=10,
                    help="with --random: how many runs (initializations) to try")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--start-fraction", type=float, default=1 / 8)
    ap.add_argument("--min-samples", type=int, default=4)
    ap.add_argument("--threshold", type=float, default=0.01)
    ap.add_argument("--growth", type=float, default=DEFAULT_GROWTH)
    ap.add_argument("--no-finite-population", action="store_true",
                    help="plain bootstrap of the seen samples (the earlier rule)")
    ap.add_argument("--earlier-rule", action="store_true",
                    help="race under the rule before issue 23 part 2: a checkpoint leaves "
                         "when its P(first) alone is below the threshold (for comparison)")
    ap.add_argument("--method", choices=["pairwise", "ranks"], default="pairwise",
                    help="[ranking] method for the full evaluation and the races")
    ap.add_argument("--keep", type=Path, help="work folder to keep (reuses a trained run)")
    ap.add_argument("--record", action="store_true", help="write into reports/benchmarks.md")
    ap.add_argument("--section", help="with --record: the section's name (default: from the "
                                      "settings, e.g. bench_race_0_train1)")
    ap.add_argument("--title", help="with --record: the section's title")
    args = ap.parse_args()
    if args.heldout_pairs is None:
        args.heldout_pairs = 24 if args.random else 200
    from evalkit.decide.ranking.rank import RankingConfig
    from evalkit.execute.engine import RunOptions
    from evalkit.execute.racing import RaceSettings

    base = args.keep or Path(tempfile.mkdtemp(prefix="bench-race-"))
    base.mkdir(parents=True, exist_ok=True)
    say = Printer()  # prints, and keeps the lines for --record

    try:
        if args.random:
            random_mode(args, base, say)
            say(machine_line())
            if args.record:
                name = f"bench_race_random_{args.random}_{args.heldout_pairs}"
                title = (f"Racing on runs of {args.random} random-weight checkpoints "
                         f"({args.heldout_pairs} held-out pairs + 12 sketches): cycles "
                         "among the top")
                write_record(args, say, args.section or name, args.title or title)
            return
        t = time.perf_counter()
        reused = (base / "run" / "person").is_dir()
        run = trained_run(base, args.epochs, args.width, args.pairs, args.train_seed)
        train_s = time.perf_counter() - t
        heldout = heldout_dir(base, args.heldout_pairs)
        p = plan(run, heldout)
        opts = RunOptions(image_size=SIZE, batch_size=16, progress=False)
        # measured afresh when recording, so that the wall times are side by side
        full_out, full_s, full_cpu = full_evaluation(base, p, opts, reuse=not args.record)
        rule = RankingConfig(method=args.method)
        full = ranked(full_out, rule)
        n = sum(len(d) for d in p.datasets)
        say(f"run: {len(p.refs)} checkpoints (person, width {args.width}, {args.epochs} "
            f"epochs, training seed {args.train_seed}"
            f", {'trained earlier, kept' if reused else f'trained in {train_s:.0f} s'}), {', '.join(f'{d.name} {len(d)}' for d in p.datasets)}")
        top = full.participants.sort_values("p_first", ascending=False).head(3)
        say(f"full evaluation ({full.config.method} rule): winner {full.winner} (p_first {full.table.iloc[0].p_first:.2f}; "
            "highest p_first: " + ", ".join(f"{short(r.checkpoint)} {r.p_first:.2f}"
                                            for r in top.itertuples()) + ")"
            f", generator on {len(p.refs) * n} checkpoint·images, {full_s:.0f} s")
        smith, (beats, ties, loses) = top_cycle(full)
        say(f"full evaluation head to head: the winner beats {beats}, ties {ties}, loses to "
            f"{loses}; Smith set {{{', '.join(short(c) for c in smith)}}}"
            + (" (a cycle or tie among the top)" if len(smith) > 1 or loses or ties else ""))
        flips, margin = coin_flips(full_out, rule)
        dropped = drop_one(full_out)
        say("checkpoints whose removal alone changes the full evaluation's winner: "
            + "; ".join(f"{m} rule: {len(v)}" + (f" ({', '.join(v)})" if v else "")
                        for m, v in dropped.items()))
        say(f"full evaluation's choice: margin {margin:.4f} over the runner-up; {len(flips)} "
            "neighbour comparisons the full data cannot order (paired |z| < 1.96) would "
            "each, swapped alone, change the winner" + (": " + "; ".join(
                f"{m} on {d.rsplit('/', 1)[0]}: {a} vs {f} (z {z:+.2f})"
                for d, m, a, f, z in flips[:4]) + (", ..." if len(flips) > 4 else "")
                if flips else ""))
        if not args.seeds:
            return
        saved, same, secs, cpus, agree = [], 0, [], [], 0
        for seed in range(args.seeds):
            out = base / f"race-{seed}"
            res, wall_s, cpu_s = race_once(run, heldout, out, opts, RaceSettings(
                seed=seed, threshold=args.threshold, start_fraction=args.start_fraction,
                min_samples=args.min_samples, growth=args.growth,
                finite_population=not args.no_finite_population, ranking_config=rule),
                args.earlier_rule)
            secs.append(wall_s)
            cpus.append(cpu_s)
            race_rank = ranked(out, rule)
            winner = race_rank.winner
            same += winner == full.winner
            saved.append(res.saved)
            # the full data ranked among this race's leaders alone: tells a sampling error
            # (the race dropped the full winner) from the rule's dependence on who takes
            # part (the ranking can depend on which other checkpoints take part)
            leaders = race_rank.participants["checkpoint"].tolist()
            among = among_leaders(full_out, leaders, rule)
            agree += among == winner
            rounds = "; ".join(f"round {r.round + 1}: {sum(r.samples.values())} samples, "
                               f"{len(r.p_first)} in, {len(r.raced_out)} out"
                               for r in res.rounds)
            say(f"race seed {seed}: winner {winner} ({'same' if winner == full.winner else 'DIFFERENT'})"
                f", generator on {res.generated} of {res.full_cost} ({res.saved:.2f}x less), "
                f"{secs[-1]:.0f} s; {rounds}; leaders {', '.join(short(x) for x in leaders)}, "
                f"among whom the full data picks {short(among)}")
        say(f"race settings: {'earlier rule (P(first) alone)' if args.earlier_rule else 'Smith-set rule (P(first) and P(Smith))'}, ranking method {args.method}, start fraction "
            f"{args.start_fraction:g}, min samples "
            f"{args.min_samples}, growth {args.growth:g}, threshold {args.threshold:g}, "
            + ("plain bootstrap" if args.no_finite_population
               else "finite-population corrected bootstrap"))
        say(f"checkpoints: {len(p.refs)}; compute saved: {statistics.median(saved):.2f}x "
            f"(median; {min(saved):.2f}-{max(saved):.2f}x); same winner: {same} of "
            f"{args.seeds} seeds; the full data among each race's leaders picks the race's "
            f"winner in {agree} of {args.seeds}; the full choice rests on {len(flips)} coin-flip "
            f"comparisons; wall: full {full_s:.0f} s, race "
            f"{statistics.median(secs):.0f} s (median); CPU (user+system): full "
            f"{full_cpu:.0f} s, race {statistics.median(cpus):.0f} s (median)")
        say(machine_line())
        if args.record:
            name, title = section(args)
            write_record(args, say, args.section or name, args.title or title)
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
