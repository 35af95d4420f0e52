"""Where the time of a full ``evalkit run`` goes, at the real size, and evalkit vs a script.

Builds a run folder of ``--checkpoints`` seed-layout checkpoints (width ``--width``, random
weights) and ``--images`` held-out AB pairs at ``--size`` px, then, interleaved over
``--repeats`` (medians printed):

* a full evalkit evaluation in this process (input loading, :func:`evalkit.execute.engine.
  evaluate_run` with stage timings from ``RunOptions.timings``, report rendering), and
* the plain hand-written script of ``benchmarks/handwritten_eval.py`` (eager per-image
  inference, fresh metric objects per checkpoint) on the same data.

Both use the same FID-cost feature module: torch-fidelity's Inception-v3 with random weights
(the standard weights cannot be downloaded here; the cost is the same), given to evalkit as a
TorchScript extractor. LPIPS runs only when its AlexNet weights are installed.

Prints seconds per checkpoint·image per stage, each stage as % of the generator's forward
passes (target: every stage except the generator and the Inception forward pass <= 10 %),
the whole run / bare generator ratio, and evalkit vs the script (wall and CPU time).
``--record`` writes the output into reports/benchmarks.md.

Usage: ``.venv/bin/python benchmarks/bench_run.py [--checkpoints 4 --images 16 --record]``
"""

from __future__ import annotations

import argparse
import io
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from contextlib import redirect_stdout
from pathlib import Path
from unittest import mock

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import evalkit  # noqa: E402,F401  (torch before TensorFlow)
from benchmarks import handwritten_eval  # noqa: E402
from benchmarks._record import Printer, record  # noqa: E402

BUDGET_PCT = 10.0
#: stages allowed to cost more than BUDGET_PCT of the generator (the issue's exceptions)
EXEMPT = {"generator", "metric:distribution"}


def inception_module():
    """torch-fidelity's Inception-v3 (FID's network) with random weights: uint8 NCHW ->
    (N, 2048). Same cost as the real one; no download."""
    import torch
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    class Pool3(torch.nn.Module):
        num_features = 2048

        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, x):
            return self.net(x)[0].reshape(x.shape[0], -1)

    with mock.patch.object(fe, "load_state_dict_from_url", lambda *a, **k: {}), \
            mock.patch.object(fe.FeatureExtractorInceptionV3, "load_state_dict",
                              lambda self, *a, **k: None):
        torch.manual_seed(0)
        net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"]).eval()
    return Pool3(net).eval()


def inception_torchscript(path: Path, size: int) -> Path:
    import torch

    module = inception_module()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(module, torch.zeros(2, 3, size, size, dtype=torch.uint8),
                                 check_trace=False)
    traced.save(str(path))
    return path


def build_fixture(base: Path, checkpoints: int, images: int, size: int, width: int
                  ) -> tuple[Path, Path]:
    from tests.conftest import make_ab_folder
    from tests.seed_reference import save_seed_checkpoint

    heldout = make_ab_folder(base / "heldout", n=images, half=size)
    run = base / "run"
    run.mkdir()
    save_seed_checkpoint(run, n=checkpoints, hidden=width)
    return run, heldout


def run_evalkit(run: Path, heldout: Path, out: Path, extractor: Path, size: int,
                batch_size: int) -> tuple[dict[str, float], float, float]:
    """Stage seconds, wall seconds and CPU seconds of one full evalkit evaluation."""
    from evalkit.execute.engine import RunOptions, evaluate_run
    from evalkit.inputs.data.pairs import load_pairs
    from evalkit.present.report import render_report

    shutil.rmtree(out, ignore_errors=True)
    timings: dict[str, float] = {}
    w0, c0 = time.perf_counter(), time.process_time()
    t = time.perf_counter()
    ds = load_pairs(heldout, size=size)
    timings["input loading"] = time.perf_counter() - t
    opts = RunOptions(image_size=size, batch_size=batch_size, feature_extractor=extractor,
                      progress=False, timings=timings)
    summary = evaluate_run(run, out, [ds], opts, log=lambda s: None)
    if summary.failed:
        sys.exit(f"evalkit run failed: {summary.failed[0].error}")
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        render_report(out)
    timings["report"] = time.perf_counter() - t
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    timings["other (engine, store opening, ...)"] = wall - sum(timings.values())
    return timings, wall, cpu


def run_script(run: Path, heldout: Path, module, size: int) -> tuple[float, float]:
    w0, c0 = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        handwritten_eval.evaluate(run, heldout, module, size)
    return time.perf_counter() - w0, time.process_time() - c0


def lpips_note(out: Path) -> str:
    """' and LPIPS' when the evalkit run computed LPIPS (its weights are installed)."""
    from evalkit.store.results import load_results

    res = load_results(out)
    ok = res[(res["metric"] == "lpips") & (res["status"] == "ok")]
    return " and LPIPS" if len(ok) else ""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--checkpoints", type=int, default=4)
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--no-script", action="store_true", help="skip the hand-written script")
    ap.add_argument("--record", action="store_true", help="write into reports/benchmarks.md")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-run-"))
    say = Printer()  # prints, and keeps the lines for --record

    try:
        run, heldout = build_fixture(base, args.checkpoints, args.images, args.size,
                                     args.width)
        extractor = inception_torchscript(base / "inception-random.pt", args.size)
        module = inception_module()
        stages: list[dict[str, float]] = []
        ev_wall, ev_cpu, sc_wall, sc_cpu = [], [], [], []
        for r in range(args.repeats):
            order = ("evalkit", "script") if r % 2 == 0 else ("script", "evalkit")
            for who in order:
                if who == "evalkit":
                    with redirect_stdout(io.StringIO()):
                        t, w, c = run_evalkit(run, heldout, base / "out", extractor,
                                              args.size, args.batch_size)
                    stages.append(t)
                    ev_wall.append(w)
                    ev_cpu.append(c)
                elif not args.no_script:
                    w, c = run_script(run, heldout, module, args.size)
                    sc_wall.append(w)
                    sc_cpu.append(c)
        units = args.checkpoints * args.images
        names = sorted({k for s in stages for k in s}, key=lambda k: (k != "input loading",
                                                                      k != "generator", k))
        med = {k: statistics.median(s.get(k, 0.0) for s in stages) for k in names}
        gen = med.get("generator", float("nan"))
        whole = statistics.median(ev_wall)
        say(f"evalkit run: {args.checkpoints} checkpoints x {args.images} held-out pairs, "
            f"{args.size}x{args.size}, width {args.width}, batch {args.batch_size}, "
            f"FID-cost Inception features (random weights), median of {args.repeats}")
        say(f"{'stage':<38}{'s total':>9}{'s/ckpt·img':>12}{'% of gen':>10}  budget")
        for k in names:
            pct = 100 * med[k] / gen
            verdict = "exempt" if k in EXEMPT else ("ok" if pct <= BUDGET_PCT else
                                                     f"OVER {BUDGET_PCT:.0f}%")
            say(f"{k:<38}{med[k]:>9.2f}{med[k] / units:>12.4f}{pct:>9.1f}%  {verdict}")
        say(f"{'whole run':<38}{whole:>9.2f}{whole / units:>12.4f}")
        say(f"whole run / bare generator: {whole / gen:.2f}x")
        if sc_wall:
            sw, sc = statistics.median(sc_wall), statistics.median(sc_cpu)
            say(f"hand-written script (eager per image, fresh metrics per checkpoint): "
                f"{sw:.1f} s wall, {sc:.1f} s CPU")
            say(f"evalkit vs script: {sw / whole:.2f}x faster in wall time, "
                f"{sc / statistics.median(ev_cpu):.2f}x in CPU time "
                f"(evalkit also computes adherence{lpips_note(base / 'out')}, which the "
                "script does not)")
        if args.record:
            cmd = "benchmarks/bench_run.py " + " ".join(sys.argv[1:])
            path = record("bench_run", "Full run: stage budget and evalkit vs a script",
                          cmd.strip(), say.text)
            print(f"recorded in {path}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
