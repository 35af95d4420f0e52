"""The package layout stays the pipeline (docs/internals.md): stage packages import only the
stages below them, and no module imports another that (directly or through others) imports
it back. Every ``import``/``from ... import`` counts, module-level or inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "evalkit"

#: What each stage package may import (besides itself). The outer layer (``cli``,
#: ``commands``, ``api``, ``keras``) may import anything.
ALLOWED: dict[str, set[str]] = {
    "core": set(),
    "inputs": {"core"},
    "measure": {"core", "inputs"},
    "store": {"core"},
    "decide": {"core", "inputs", "measure", "store"},
    "execute": {"core", "inputs", "measure", "store", "decide"},
    "present": {"core", "inputs", "measure", "store", "decide"},
}
OUTER = {"cli", "commands", "api", "keras"}


def _modules() -> dict[str, Path]:
    mods = {}
    for p in PKG.rglob("*.py"):
        parts = ("evalkit", *p.relative_to(PKG).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        mods[".".join(parts)] = p
    return mods


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """evalkit modules ``name`` imports (``from P import m`` counts as module P.m)."""
    is_pkg = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "evalkit"}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_pkg else name.split(".")[:-1]
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if mod.split(".")[0] != "evalkit":
                continue
            subs = {f"{mod}.{a.name}" for a in node.names} & known
            out |= subs or {mod}
    return out & known


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {m: _imports(m, p, set(mods)) - {m} for m, p in mods.items()}


def _stage(mod: str) -> str | None:
    parts = mod.split(".")
    return parts[1] if len(parts) > 1 else None


def test_stage_packages_exist_and_nothing_else_is_loose():
    loose = sorted(p.stem for p in PKG.glob("*.py") if p.stem not in {"__init__", *OUTER})
    assert loose == [], f"modules loose at evalkit/ (put each in a stage package): {loose}"
    dirs = {p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").is_file()}
    assert dirs == set(ALLOWED) | (OUTER & dirs), dirs


def test_imports_only_go_down_the_stages():
    wrong = []
    for mod, deps in _graph().items():
        st = _stage(mod)
        if st in OUTER or st is None:
            continue
        for dep in deps:
            dst = _stage(dep)
            if dst is None:  # the root: only `import evalkit` for __version__
                continue
            if dst != st and dst not in ALLOWED[st]:
                wrong.append(f"{mod} imports {dep} ({st} may import {sorted(ALLOWED[st])})")
    assert not wrong, "upward imports:\n" + "\n".join(sorted(wrong))


def test_root_package_imports_only_core_at_import_time():
    tree = ast.parse((PKG / "__init__.py").read_text(encoding="utf-8"))
    top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    mods = {n.module for n in top if isinstance(n, ast.ImportFrom)} | \
        {a.name for n in top if isinstance(n, ast.Import) for a in n.names}
    bad = {m for m in mods if m and m.startswith("evalkit") and not m.startswith("evalkit.core")}
    assert not bad, f"evalkit/__init__.py imports {bad} eagerly (keep the API lazy)"


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle (as a path), or None. The root package is left out: it is the lazy
    API facade, and `import evalkit` elsewhere only reads ``__version__``."""
    graph = {m: {d for d in ds if d != "evalkit"} for m, ds in graph.items() if m != "evalkit"}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for d in sorted(graph.get(m, ())):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state and (found := visit(d)):
                return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state and (found := visit(m)):
            return found
    return None


def test_no_import_circles():
    found = _cycle(_graph())
    assert found is None, "import circle: " + " -> ".join(found)


@pytest.mark.parametrize("graph, circle", [
    ({"evalkit.a": {"evalkit.b"}, "evalkit.b": {"evalkit.a"}}, True),
    ({"evalkit.a": {"evalkit.b"}, "evalkit.b": {"evalkit.c"}, "evalkit.c": set()}, False),
    ({"evalkit.a": {"evalkit.b"}, "evalkit.b": {"evalkit.c"}, "evalkit.c": {"evalkit.a"}}, True),
])
def test_the_circle_finder_finds_circles(graph, circle):
    assert (_cycle(graph) is not None) == circle


def test_the_import_parser_sees_lazy_and_relative_imports(tmp_path):
    p = tmp_path / "m.py"
    p.write_text("def f():\n    from evalkit.store import results\n"
                 "from . import sibling\nimport evalkit.core.tf\n")
    known = {"evalkit.store.results", "evalkit.decide.sibling", "evalkit.core.tf"}
    assert _imports("evalkit.decide.m", p, known) == known
