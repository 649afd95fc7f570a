"""The shape of the code: layers point one way and no module imports form a cycle.

Reads every module's imports (module level and inside functions) with ``ast``; it does not
import anything, so it also sees lazy imports.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mogen"
EVALUATION = ("mogen.evaluate", "eval", "bench")


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imports(path: Path, name: str, known: set[str]) -> set[str]:
    """Modules (of the project, or top-level names of others) that ``path`` imports."""
    is_pkg = path.name == "__init__.py"
    base = name.split(".") if is_pkg else name.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            mod = node.module or ""
            if node.level:
                mod = ".".join(base[: len(base) - node.level + 1] + ([mod] if mod else []))
            for a in node.names:  # `from pkg import submodule` depends on the submodule
                out.add(f"{mod}.{a.name}" if f"{mod}.{a.name}" in known else mod)
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    g = {}
    for name, path in mods.items():
        deps = {d for d in imports(path, name, known) if d in known and d != name}
        # a package's __init__ re-exporting its own submodules is not a dependency cycle
        g[name] = {d for d in deps if not name.startswith(d + ".")}
    return g


def test_library_never_imports_the_evaluation_layer():
    mods = modules()
    bad = []
    for name, path in mods.items():
        if name.startswith("mogen.evaluate") or name == "mogen.cli":  # the CLI dispatches to every layer
            continue
        for dep in imports(path, name, set(mods)):
            if dep in EVALUATION or dep.startswith(tuple(f"{e}." for e in EVALUATION)):
                bad.append(f"{name} imports {dep}")
    assert not bad, "library code imports the evaluation/benchmark layer:\n" + "\n".join(bad)


def test_no_import_cycles():
    g = graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(node, stack):
        state[node] = 1
        stack.append(node)
        for dep in sorted(g[node]):
            if state.get(dep) == 1:
                cycles.append(" -> ".join(stack[stack.index(dep):] + [dep]))
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(g):
        if node not in state:
            visit(node, [])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_checker_sees_cycles_and_lazy_imports(tmp_path, monkeypatch):
    pkg = tmp_path / "mogen"
    (pkg / "evaluate").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "evaluate" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from mogen import b\n")
    (pkg / "b.py").write_text("def f():\n    from mogen.a import x\n    import mogen.evaluate\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    monkeypatch.setattr(__import__(__name__), "PACKAGE", pkg)
    g = graph()
    assert g["mogen.a"] == {"mogen.b"} and g["mogen.b"] == {"mogen.a", "mogen.evaluate"}
    with pytest.raises(AssertionError, match="mogen.a -> mogen.b -> mogen.a"):
        test_no_import_cycles()
    with pytest.raises(AssertionError, match="mogen.b imports mogen.evaluate"):
        test_library_never_imports_the_evaluation_layer()
