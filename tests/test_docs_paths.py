"""Docs cite only paths that exist: every repository path named in the README, docs/ and
the other Markdown files (``evalkit/...``, ``docs/...``, ``benchmarks/...``, ...) is there."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PATH = re.compile(r"(?<![\w./-])((?:evalkit|docs|benchmarks|tests|scripts|examples|reports|"
                  r"human_sketches)/[A-Za-z0-9_./-]*[A-Za-z0-9_])")
#: Named on purpose although not here: a placeholder, another repository's file, prose.
NOT_OURS = {"benchmarks/NAME.py", "examples/hed/deploy.prototxt", "evalkit/TensorFlow/torch"}


def _docs() -> list[Path]:
    return [ROOT / "README.md", *sorted(ROOT.glob("docs/*.md")), *sorted(ROOT.glob("*/README.md")),
            *sorted(ROOT.glob("examples/**/*.md"))]


def test_every_cited_path_exists():
    missing = []
    for doc in _docs():
        for m in PATH.finditer(doc.read_text(encoding="utf-8")):
            p = m.group(1)
            if p not in NOT_OURS and not (ROOT / p).exists():
                missing.append(f"{doc.relative_to(ROOT)}: {p}")
    assert not missing, "cited but missing:\n" + "\n".join(missing)


def test_the_check_sees_a_missing_path(tmp_path):
    assert PATH.findall("see `evalkit/store.py` and docs/x.md.") == ["evalkit/store.py", "docs/x.md"]
