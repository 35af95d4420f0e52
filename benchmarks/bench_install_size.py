"""Install size: what dominates the venv, and what a CPU-only torch build would weigh.

Prints the largest top-level entries of a venv's site-packages (``du``-style, MiB of file
blocks), the torch/nvidia/triton share, and, given ``--cpu-wheel FILE`` (a torch ``+cpu``
wheel), that wheel's download size and its installed size (``pip install --no-deps
--target`` into a temporary folder, removed afterwards). It also says whether PyTorch's CPU
wheel index answers from this machine (``pip download`` with a short timeout).

    python benchmarks/bench_install_size.py [--venv .venv] [--cpu-wheel torch-X+cpu-...whl] \
        [--record]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import Printer, record  # noqa: E402

CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def mib(path: Path) -> int:
    """Disk usage of ``path`` in MiB (``du -sm``: allocated blocks, links not followed)."""
    out = subprocess.run(["du", "-sm", str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.split()[0])


def site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python3*/site-packages"))
    if not found:
        raise SystemExit(f"no lib/python3*/site-packages under {venv}")
    return found[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--venv", type=Path, default=Path(sys.prefix))
    ap.add_argument("--cpu-wheel", type=Path, help="a torch +cpu wheel to install and measure")
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--record", action="store_true", help="write reports/benchmarks.md")
    args = ap.parse_args()
    say = Printer()
    sp = site_packages(args.venv.resolve())
    say(f"venv {args.venv}: {mib(args.venv.resolve())} MiB in all")
    sizes = sorted(((mib(p), p.name) for p in sp.iterdir() if not p.name.endswith(
        (".dist-info", ".pth")) and p.name != "__pycache__"), reverse=True)
    say(f"largest entries of {sp.name}/ (MiB):")
    for size, name in sizes[:args.top]:
        say(f"  {size:6d}  {name}")
    gpu = {n: s for s, n in sizes if n in ("torch", "nvidia", "triton")}
    say(f"torch + nvidia + triton: {sum(gpu.values())} MiB ({gpu})")
    if args.cpu_wheel:
        whl = args.cpu_wheel
        say(f"CPU wheel {whl.name}: download {whl.stat().st_size / 2**20:.0f} MiB")
        with tempfile.TemporaryDirectory(prefix="cpu-torch-") as tmp:
            subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps",
                            "--no-compile", "--target", tmp, str(whl)], check=True)
            say(f"  installed (--no-deps): {mib(Path(tmp))} MiB; nvidia/triton pulled: "
                f"{sorted(p.name for p in Path(tmp).iterdir() if p.name in ('nvidia', 'triton')) or 'none'}")
    try:
        with tempfile.TemporaryDirectory() as tmp:
            # --isolated: only that index (not pip.conf's local indexes and find-links)
            r = subprocess.run([sys.executable, "-m", "pip", "--isolated", "download",
                                "--no-deps",
                                "--index-url", CPU_INDEX, "--timeout", "10", "--retries", "0",
                                "-d", tmp, "torch==2.14.1"], capture_output=True, text=True,
                               timeout=120)
        text = r.stdout + r.stderr
        why = next((ln.strip() for ln in text.splitlines()
                    if "resolve" in ln.lower() or "no matching" in ln.lower()), "?")
        reach = ("torch==2.14.1 downloaded" if r.returncode == 0 and "Saved" in text
                 else f"no wheel fetched ({why[:160]})")
    except subprocess.TimeoutExpired:
        reach = "not reachable (timed out)"
    say(f"PyTorch CPU index {CPU_INDEX}: {reach}")
    say(f"machine load (1-min average): {os.getloadavg()[0]:.1f}")
    if args.record:
        cmd = "python benchmarks/bench_install_size.py" + (
            f" --cpu-wheel {args.cpu_wheel.name}" if args.cpu_wheel else "") + " --record"
        record("install-size-cpu-torch", "Install size: venv entries and a CPU torch wheel",
               cmd, say.text)


if __name__ == "__main__":
    main()
