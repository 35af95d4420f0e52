"""Write a benchmark's printed result, with the machine and date, into reports/benchmarks.md.

Each benchmark owns one section between ``<!-- NAME -->`` / ``<!-- /NAME -->`` markers; a
new measurement replaces that section and leaves the others alone.
"""

from __future__ import annotations

import datetime
import os
import platform
import re
from pathlib import Path

REPORT = Path(__file__).resolve().parents[1] / "reports" / "benchmarks.md"
HEADER = ("# Benchmarks\n\nMeasured by the scripts in `benchmarks/` (each section says which, "
          "on what machine and when). Re-run a script to refresh its section.\n")


class Printer:
    """``say(line)`` prints a line (flushed) and keeps it; ``say.text`` is all of them, for
    :func:`record`."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str = "") -> None:
        print(line, flush=True)
        self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(f"{line}\n" for line in self.lines)


def machine() -> str:
    """CPU model, core count, OS and Python, in one line."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}")


def record(name: str, title: str, command: str, body: str, path: Path = REPORT) -> Path:
    """Replace section ``name`` of ``path`` with ``body`` (printed output, as a code block)."""
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = (f"<!-- {name} -->\n## {title}\n\n`{command}` — {now}, on {machine()}.\n\n"
               f"```\n{body.rstrip()}\n```\n<!-- /{name} -->\n")
    text = path.read_text() if path.exists() else HEADER
    pattern = re.compile(rf"<!-- {re.escape(name)} -->.*?<!-- /{re.escape(name)} -->\n",
                         re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else \
        text.rstrip() + "\n\n" + section
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
