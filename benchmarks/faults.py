"""The fault suite: `evalkit run` under kills, signals, concurrency, damaged and read-only
stores, a full disk, tampered caches and changed data, each compared with a clean run.

Every trial runs the real CLI in its own process on a small seed-format run (6 checkpoints,
8 held-out pairs, 32 px; offline: the FID/LPIPS weights are absent, as on a CI machine) and
compares the CURRENT results afterwards with a clean reference run, key by key
(checkpoint, dataset, metric -> status, n, value):

* rows lost: reference rows missing or different afterwards (for the changed-data faults,
  earlier rows missing from current + history);
* rows duplicated: rows beyond one per key, in the results and in the database tables.

A trial survives when nothing is lost or duplicated, every command ended with its
documented exit code and message and no traceback, and no temporary folder is left behind.

Faults: kill -9 at random moments then resume; SIGINT (exit 130) and SIGTERM (exit 143)
then resume; two concurrent runs on one OUT; truncated and garbage stores (exit 2, then
``--rebuild-store``); a read-only store (a read-only bind mount); a full disk on a small
tmpfs (exit 3, then resume with space; skipped with the reason where no tmpfs can be
mounted); a cached PNG replaced by another valid image (then ``--rebuild-store``; and, as
``tamper-rerun``, by its inverse, then ``report`` and a plain re-run); ``--limit`` and
changed data; hostile model files (Lambda layers, a SavedModel writing a file, a custom
ONNX domain: refused, their code never runs).

Usage: ``.venv/bin/python benchmarks/faults.py [--kills 22] [--seed 0] [--only NAME ...]``
(the full suite took about an hour on a loaded 2-core machine, half of it the 22 kills;
tests/test_fault_suite.py runs a fast subset).
"""

from __future__ import annotations

import argparse
import json
import random
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from faultlib import (  # noqa: E402
    KEY,
    Outcome,
    Scenario,
    check_finished,
    compare,
    current,
    problems_of,
    table_duplicates,
    userns_sh,
)


# -- faults -------------------------------------------------------------------------------
def fault_kill9(sc: Scenario, trials: int, rng: random.Random) -> Outcome:
    """kill -9 at random moments of a run, then the same command again."""
    o = Outcome("kill -9 at a random moment, resume")
    mid = 0
    for i in range(trials):
        out = sc.base / f"kill{i}"
        p = sc.start(out)
        time.sleep(rng.uniform(0.15, 1.0) * sc.clean_seconds)
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
            mid += 1
        p.communicate()
        r = sc.run(out)
        check_finished(sc, out, o, problems_of(r, {0}, [], "resume"))
        shutil.rmtree(out, ignore_errors=True)
    o.notes.append(f"killed mid-run in {mid} of {trials} trials (the others had finished)")
    return o


def _signal_fault(sc: Scenario, sig: int, code: int, words: str, trials: int,
                  rng: random.Random) -> Outcome:
    o = Outcome(f"{signal.Signals(sig).name} mid-run (exit {code}), resume")
    mid = 0
    for i in range(trials):
        out = sc.base / f"sig{sig}-{i}"
        p = sc.start(out)
        # wait until evaluation has begun (the store exists), then a random moment later
        t0 = time.perf_counter()
        while not (out / "results.sqlite").exists() and p.poll() is None \
                and time.perf_counter() - t0 < sc.clean_seconds * 2:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 0.5) * sc.clean_seconds)
        interrupted = p.poll() is None
        if interrupted:
            p.send_signal(sig)
            mid += 1
        _, err = p.communicate()
        r1 = subprocess.CompletedProcess(p.args, p.returncode, "", err)
        problems = problems_of(r1, {code} if interrupted else {0},
                               [words] if interrupted else [], "interrupted run")
        if interrupted and "stored in" not in err:
            problems.append("interrupted run: no line saying what is stored")
        r = sc.run(out)
        check_finished(sc, out, o, problems + problems_of(r, {0}, [], "resume"))
        shutil.rmtree(out, ignore_errors=True)
    o.notes.append(f"signalled mid-run in {mid} of {trials} trials")
    return o


def fault_sigint(sc: Scenario, trials: int, rng: random.Random) -> Outcome:
    return _signal_fault(sc, signal.SIGINT, 130, "interrupted (SIGINT)", trials, rng)


def fault_sigterm(sc: Scenario, trials: int, rng: random.Random) -> Outcome:
    return _signal_fault(sc, signal.SIGTERM, 143, "terminated (SIGTERM)", trials, rng)


def fault_concurrent(sc: Scenario, trials: int, rng: random.Random) -> Outcome:
    """Two runs on one OUT at once (with the report): both exit 0, one waits."""
    o = Outcome("two concurrent runs on one OUT")
    for i in range(trials):
        out = sc.base / f"conc{i}"
        a = sc.start(out, quiet=False)  # one line per checkpoint: "ckpt-1: evaluated in ..."
        time.sleep(rng.uniform(0.0, 0.3) * sc.clean_seconds)
        b = sc.start(out, quiet=False)
        ra = subprocess.CompletedProcess(a.args, 0, *a.communicate())
        ra.returncode = a.returncode
        rb = subprocess.CompletedProcess(b.args, 0, *b.communicate())
        rb.returncode = b.returncode
        problems = problems_of(ra, {0}, [], "first") + problems_of(rb, {0}, [], "second")
        both = ra.stderr + rb.stderr
        if "waiting for another evalkit run" not in both:
            problems.append("neither run said it waited for the other")
        if "could not be rendered" in both:
            problems.append("a report could not be rendered")
        evaluated = sum(ln.count(": evaluated in") for ln in both.splitlines())
        if evaluated > len(sc.reference.checkpoint.unique()):
            problems.append(f"work done twice ({evaluated} evaluations)")
        check_finished(sc, out, o, problems)
        shutil.rmtree(out, ignore_errors=True)
    return o


def _damaged_store(sc: Scenario, name: str, damage: Callable[[Path], None]) -> Outcome:
    o = Outcome(f"{name} results.sqlite (exit 2, then --rebuild-store)")
    out = sc.copy_reference(sc.base / f"store-{name}")
    damage(out / "results.sqlite")
    problems = []
    for cmd in (["results", str(out)], ["report", str(out)], ["select", str(out)]):
        r = sc.evalkit(*cmd)
        problems += problems_of(r, {2}, ["is damaged", "--rebuild-store"], cmd[0])
    r = sc.run(out)
    problems += problems_of(r, {2}, ["is damaged"], "run")
    pngs = {p: p.stat().st_mtime_ns for p in (out / "outputs").rglob("*.png")}
    r = sc.run(out, "--rebuild-store")
    problems += problems_of(r, {0}, ["moved"], "run --rebuild-store")
    if {p: p.stat().st_mtime_ns for p in (out / "outputs").rglob("*.png")} != pngs:
        problems.append("--rebuild-store regenerated outputs instead of reusing the cache")
    check_finished(sc, out, o, problems)
    shutil.rmtree(out, ignore_errors=True)
    return o


def fault_truncated(sc: Scenario, trials: int, rng: random.Random) -> Outcome:
    def truncate(db: Path) -> None:
        data = db.read_bytes()
        db.write_bytes(data[: len(data) // 3])
    return _damaged_store(sc, "truncated", truncate)


def fault_garbage(sc: Scenario, trials: int, rng: random.Random) -> Outcome:
    def garbage(db: Path) -> None:
        db.write_bytes(bytes(rng.randrange(256) for _ in range(4096)) * 8)
    return _damaged_store(sc, "garbage", garbage)


def fault_readonly(sc: Scenario, trials: int, rng: random.Random) -> Outcome:
    """results/select/report --dest on a read-only bind mount of OUT."""
    o = Outcome("read-only store (results, select, report --dest)")
    out = sc.copy_reference(sc.base / "readonly")
    q = shlex.quote(str(out))
    py = shlex.quote(sys.executable)
    script = (f"mount --bind {q} {q} && mount -o remount,bind,ro {q} {q} || exit 97; "
              f"touch {q}/probe 2>/dev/null && exit 98; "
              f"{py} -m evalkit.cli results {q} --format json > {q}.json; echo RC=$?; "
              f"{py} -m evalkit.cli select {q} >/dev/null; echo RC=$?; "
              f"{py} -m evalkit.cli report {q} --dest {q}-report >/dev/null; echo RC=$?")
    r = userns_sh(script, sc.env)
    if r is None or r.returncode in (97, 98):
        o.skipped = "cannot make a read-only bind mount here (needs unshare -rm)"
        return o
    codes = [int(x[3:]) for x in r.stdout.split() if x.startswith("RC=")]
    problems = [] if codes == [0, 0, 0] else [f"exit codes {codes}: {r.stderr[-300:]}"]
    if "Traceback" in r.stderr:
        problems.append(f"traceback: {r.stderr[-300:]}")
    got = pd.DataFrame(json.loads(Path(f"{out}.json").read_text() or "[]"))
    lost, dup = compare(sc.reference, got) if len(got) else (len(sc.reference), 0)
    o.add(lost, dup, problems)
    return o


def fault_disk_full(sc: Scenario, trials: int, rng: random.Random) -> Outcome:
    """OUT on a small tmpfs: exit 3 with path and space, nothing half-written; then the
    tmpfs grows and the same command finishes."""
    o = Outcome("disk full on a small tmpfs (exit 3, resume with space)")
    ref_bytes = sum(p.stat().st_size for p in sc.ref_out.rglob("*") if p.is_file())
    py = shlex.quote(sys.executable)
    fractions = [0.1, 0.3, 0.5, 0.7, 0.9][:max(1, trials)]
    for frac in fractions:
        mnt = sc.base / f"tmpfs{int(frac * 100)}"
        mnt.mkdir()
        out = mnt / "out"
        q, qo = shlex.quote(str(mnt)), shlex.quote(str(out))
        kb = max(64, int(ref_bytes * frac / 1024))
        run = " ".join(map(shlex.quote, sc.args(out)))
        dump = f"{py} -m evalkit.cli results {qo} --format json"
        script = (f"mount -t tmpfs -o size={kb}k tmpfs {q} || exit 97; "
                  f"{run} > /dev/null 2> {q}.err1; echo RC1=$?; "
                  f"find {qo} -name '*.tmp[0-9]*' > {q}.left; "
                  f"mount -o remount,size=512m {q}; "
                  f"{run} > /dev/null 2> {q}.err2; echo RC2=$?; "
                  f"{dump} > {q}.json; find {qo} -name '*.tmp[0-9]*' >> {q}.left")
        r = userns_sh(script, sc.env)
        if r is None or r.returncode == 97:
            o.skipped = "cannot mount a tmpfs here (needs root or unshare -rm)"
            return o
        codes = dict(x.split("=") for x in r.stdout.split() if x.startswith("RC"))
        err1 = Path(f"{mnt}.err1").read_text()
        err2 = Path(f"{mnt}.err2").read_text()
        problems = []
        if codes.get("RC1") == "3":
            if "disk full writing" not in err1 or "free there" not in err1:
                problems.append(f"exit 3 without path/space: {err1[-300:]}")
        elif codes.get("RC1") != "0":
            problems.append(f"first run: exit {codes.get('RC1')}: {err1[-300:]}")
        if "Traceback" in err1 + err2:
            problems.append(f"traceback: {(err1 + err2)[-300:]}")
        if codes.get("RC2") != "0":
            problems.append(f"resume: exit {codes.get('RC2')}: {err2[-300:]}")
        left = Path(f"{mnt}.left").read_text().split()
        if left:
            problems.append(f"left behind: {left[:3]}")
        try:
            got = pd.DataFrame(json.loads(Path(f"{mnt}.json").read_text()))
            lost, dup = compare(sc.reference, got)
        except (OSError, ValueError):
            lost, dup = len(sc.reference), 0
        o.add(lost, dup, problems)
        o.notes.append(f"{kb} KiB: first run exit {codes.get('RC1')}")
    return o


def fault_tampered_png(sc: Scenario, trials: int, rng: random.Random) -> Outcome:
    """A cached PNG replaced by another valid image, then the results are rebuilt from the
    cache: the change is caught and said, the folder regenerated, values as the clean run."""
    o = Outcome("cached PNG replaced by another valid image")
    for i in range(trials):
        out = sc.copy_reference(sc.base / f"tamper{i}")
        pngs = sorted((out / "outputs").rglob("*.png"))
        victim = rng.choice(pngs)
        img = np.asarray(Image.open(victim).convert("RGB"))
        Image.fromarray(255 - img).save(victim)
        r = sc.run(out, "--rebuild-store")
        check_finished(sc, out, o, problems_of(r, {0}, ["changed since it was written"],
                                               "run --rebuild-store"))
        shutil.rmtree(out, ignore_errors=True)
    return o


def fault_tampered_rerun(sc: Scenario, trials: int, rng: random.Random) -> Outcome:
    """A cached PNG replaced by its inverse (same dimensions), then ``report`` and the same
    ``run`` again (no ``--rebuild-store``): no report image has the changed bytes (the
    report says why where a page would show it), the run says so once and regenerates it
    (its sha256 is the manifest's again), values as the clean run."""
    import hashlib

    o = Outcome("cached PNG inverted; report, then a plain re-run")
    said = 0
    for i in range(trials):
        out = sc.copy_reference(sc.base / f"tamper-rerun{i}")
        victim = rng.choice(sorted((out / "outputs").rglob("*.png")))
        m = json.loads((victim.parent / "manifest.json").read_text())
        want = dict(zip(m["files"], m["sha256"], strict=True))[victim.name]
        img = np.asarray(Image.open(victim).convert("RGB"))
        Image.fromarray(255 - img).save(victim)
        bad = hashlib.sha256(victim.read_bytes()).hexdigest()
        dest = sc.base / f"tamper-report{i}"
        rep = sc.evalkit("report", str(out), "--dest", str(dest))
        problems = problems_of(rep, {0}, [], "report")
        if any(hashlib.sha256(p.read_bytes()).hexdigest() == bad for p in dest.rglob("*.png")):
            problems.append("the report shows the changed output")
        said += "sha256 mismatch" in rep.stderr  # not said: that output is on no page
        r = sc.run(out)
        problems += problems_of(r, {0}, ["changed since it was written"], "run")
        if r.stderr.count("sha256 mismatch") != 1:
            problems.append(f"run said it {r.stderr.count('sha256 mismatch')} times, not once")
        if hashlib.sha256(victim.read_bytes()).hexdigest() != want:
            problems.append(f"{victim} was not regenerated")
        check_finished(sc, out, o, problems)
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(dest, ignore_errors=True)
    o.notes.append(f"the report named the changed file in {said} of {trials} trials (in "
                   "the others no page shows that output)")
    return o


def fault_limit_and_data(sc: Scenario, trials: int, rng: random.Random) -> Outcome:
    """``--limit 3`` into an OUT with full results, then changed data, then the original:
    one line each time, old results kept as history, final current = clean run."""
    o = Outcome("--limit and changed data (history, not replacement)")
    out = sc.copy_reference(sc.base / "limit")
    problems = []
    r = sc.run(out, "--limit", "3")
    problems += problems_of(r, {0}, ["kept as history"], "--limit 3")
    if r.stderr.count("kept as history") != 1:
        problems.append("--limit: not exactly one line about history")
    lim = current(out)
    if not (lim.n == 3).all():
        problems.append("--limit: current rows are not the 3-sample ones")
    changed = sc.base / "heldout-changed"
    shutil.copytree(sc.heldout, changed)
    first = sorted(changed.iterdir())[0]
    img = np.asarray(Image.open(first).convert("RGB"))
    Image.fromarray(255 - img).save(first)
    r = sc.run(out, heldout=changed)
    problems += problems_of(r, {0}, ["kept as history"], "changed data")
    changed_rows = current(out)
    r = sc.run(out)
    problems += problems_of(r, {0}, ["kept as history"], "original data again")
    r = sc.evalkit("results", str(out), "--all", "--format", "json")
    everything = pd.DataFrame(json.loads(r.stdout))
    # nothing lost: every earlier current row is still there, current or history
    by_hash = KEY + ["dataset_hash"]
    lost = sum(compare(earlier, everything, by_hash)[0]
               for earlier in (sc.reference, lim, changed_rows))
    o.notes.append(f"history rows: {int((everything.current == 0).sum())}")
    lost_now, dup_now = compare(sc.reference, current(out))
    o.add(lost + lost_now, dup_now + table_duplicates(out), problems)
    shutil.rmtree(out, ignore_errors=True)
    return o


def fault_hostile_models(sc: Scenario, trials: int, rng: random.Random) -> Outcome:
    """A hostile model file (tests/hostile_models.py: a Lambda .h5, the same HDF5 named
    .keras, a zip .keras with a Lambda, a SavedModel calling tf.io.write_file, an ONNX node
    in a custom domain) added to the run folder: that checkpoint alone fails (exit 1,
    "refused NAME"), its code never runs (the marker file never appears) and the seed
    checkpoints' results are the clean run's. ``trials`` rounds over the 5 kinds."""
    o = Outcome("hostile model file (Lambda, SavedModel write, ONNX)")
    from tests.hostile_models import KINDS

    for i in range(trials):
        for kind, (name, _) in KINDS.items():
            run_dir = sc.base / f"hostile-run{i}-{kind}"
            shutil.copytree(sc.run_dir, run_dir)
            marker = sc.base / f"hostile-marker{i}-{kind}.txt"
            made = subprocess.run([sys.executable, "-m", "tests.hostile_models", kind,
                                   str(run_dir / name), str(marker)], env=sc.env, cwd=ROOT,
                                  capture_output=True, text=True, timeout=600)
            if made.returncode != 0:
                o.add(0, 0, [f"{kind}: could not build it: {made.stderr.strip()[-300:]}"])
                continue
            marker.unlink(missing_ok=True)  # building a Lambda model calls it once
            out = sc.copy_reference(sc.base / f"hostile{i}-{kind}")
            r = sc.evalkit("run", str(run_dir), "--heldout", str(sc.heldout), "--out",
                           str(out), "--image-size", str(sc.size), "--quiet")
            problems = problems_of(r, {1}, [f"failed {name}: refused {name}",
                                            "--trust-model-code"], f"run with {kind}")
            if marker.exists():
                problems.append(f"{kind}: its code ran (the marker file was written)")
            check_finished(sc, out, o, problems)
            shutil.rmtree(out, ignore_errors=True)
            shutil.rmtree(run_dir, ignore_errors=True)
    return o


FAULTS: dict[str, Callable[[Scenario, int, random.Random], Outcome]] = {
    "kill9": fault_kill9, "sigint": fault_sigint, "sigterm": fault_sigterm,
    "concurrent": fault_concurrent, "truncated": fault_truncated, "garbage": fault_garbage,
    "readonly": fault_readonly, "diskfull": fault_disk_full, "tamper": fault_tampered_png,
    "tamper-rerun": fault_tampered_rerun, "limit": fault_limit_and_data,
    "hostile": fault_hostile_models,
}


def run_suite(base: Path, only: list[str] | None = None, kills: int = 22, trials: int = 3,
              seed: int = 0, log: Callable[[str], None] = print) -> list[Outcome]:
    """Run the faults (``only`` names from :data:`FAULTS`); returns one Outcome each."""
    rng = random.Random(seed)
    sc = Scenario(base)
    log(f"clean reference run: {sc.clean_seconds:.1f} s, {len(sc.reference)} result rows")
    outcomes = []
    for name, fn in FAULTS.items():
        if only and name not in only:
            continue
        t0 = time.perf_counter()
        o = fn(sc, kills if name == "kill9" else trials, rng)
        log(f"  {name}: {o.survived}/{o.trials} survived, {o.lost} rows lost, "
            f"{o.duplicated} duplicated, in {time.perf_counter() - t0:.0f} s"
            + (f" (skipped: {o.skipped})" if o.skipped else "")
            + "".join(f"\n    {n}" for n in o.notes))
        outcomes.append(o)
    return outcomes


def print_table(outcomes: list[Outcome]) -> None:
    print(f"{'fault':<58}{'trials':>7}{'survived':>10}{'rows lost':>11}{'rows dup':>10}")
    for o in outcomes:
        if o.skipped:
            print(f"{o.fault:<58}{'skipped: ' + o.skipped:>38}")
            continue
        print(f"{o.fault:<58}{o.trials:>7}{o.survived:>10}{o.lost:>11}{o.duplicated:>10}")
    tot = [o for o in outcomes if not o.skipped]
    print(f"{'total':<58}{sum(o.trials for o in tot):>7}{sum(o.survived for o in tot):>10}"
          f"{sum(o.lost for o in tot):>11}{sum(o.duplicated for o in tot):>10}")
    for o in outcomes:
        for n in o.notes:
            print(f"  {o.fault}: {n}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--kills", type=int, default=22, help="kill -9 trials [22]")
    ap.add_argument("--trials", type=int, default=3, help="trials of the other faults [3]")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--only", nargs="*", choices=list(FAULTS), help="run only these faults")
    ap.add_argument("--keep", type=Path, help="work in this folder and keep it")
    args = ap.parse_args()
    base = Path(args.keep or tempfile.mkdtemp(prefix="evalkit-faults-"))
    outcomes = run_suite(base, args.only, args.kills, args.trials, args.seed)
    print_table(outcomes)
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    ok = all(o.skipped or (o.survived == o.trials and not o.lost and not o.duplicated)
             for o in outcomes)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
