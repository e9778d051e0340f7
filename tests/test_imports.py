"""The package's imports run one way: no module imports, even inside a function, a
module that imports it back (directly or through others). ``TYPE_CHECKING`` imports are
for type checkers only and do not count."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import olist_fast

PACKAGE = Path(olist_fast.__file__).parent


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(tree: ast.AST) -> set[str]:
    """The olist_fast modules a module imports at run time."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("olist_fast"):
                found.add(node.module)
                for alias in node.names:  # `from olist_fast.features import keys`
                    sub = f"{node.module}.{alias.name}"
                    if (PACKAGE.parent / (sub.replace(".", "/") + ".py")).exists():
                        found.add(sub)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("olist_fast"))
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph() -> dict[str, set[str]]:
    graph = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = module_name(path)
        graph[name] = runtime_imports(ast.parse(path.read_text())) - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := dfs(nxt)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := dfs(node)):
            return cycle
    return None


def test_the_package_imports_run_one_way() -> None:
    graph = import_graph()
    assert "olist_fast.fitting" in graph and "olist_fast.pipeline" in graph
    cycle = find_cycle(graph)
    assert cycle is None, " -> ".join(cycle or [])


def test_the_cycle_check_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from olist_fast.pipeline import run\n"
        "def f():\n    from olist_fast.fitting import FittedModel\n"
    )
    assert runtime_imports(tree) == {"olist_fast.fitting"}


def test_the_command_line_starts_without_the_numeric_stack() -> None:
    """``olist-fast --help`` and every command's parsing import the CLI alone: numpy,
    scikit-learn and matplotlib load only when a command needs them."""
    code = (
        "import sys, olist_fast.cli; "
        "print(sorted(m for m in ('numpy', 'sklearn', 'matplotlib', 'scipy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_the_module_map_reads_top_down() -> None:
    """docs/architecture.md's module map lists every module, and each imports only
    modules listed above it (a package counts as one module)."""
    import re

    doc = (PACKAGE.parent / "docs" / "architecture.md").read_text()
    table = doc[doc.index("## Module map") :]
    order: list[str] = []
    for line in table.splitlines():
        cells = line.split("|")
        if len(cells) > 3:
            order += [f"olist_fast.{m.rstrip('/')}" for m in re.findall(r"`([a-z_/]+)`", cells[2])]
    assert len(order) > 20

    def top(name: str) -> str:
        return ".".join(name.split(".")[:2])

    graph = import_graph()
    listed = {top(m) for m in graph if m != "olist_fast" and not m.endswith("__main__")}
    assert listed == set(order), listed ^ set(order)
    for module, deps in graph.items():
        if top(module) not in order:
            continue
        for dep in deps:
            if dep != "olist_fast" and top(dep) != top(module):
                assert order.index(top(dep)) < order.index(top(module)), (module, dep)
