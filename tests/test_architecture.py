"""The import graph of the monitor package, read from the source with ``ast``: no cycles,
and the layers keep to their side (the web page never imports the pipeline or sqlite3,
the alerts package neither imports the sources nor writes to a terminal, only the CLI
imports the CLI).

Edges are every ``import``/``from ... import`` of a monitor module, at module level or
inside a function (a function-level import is still a dependency, only a later one), plus
the registries' ``"monitor.x.y:Class"`` strings. Imports under ``if TYPE_CHECKING:``
are left out: they never run, and a part annotated with the type of its whole (a
store's sub-object with ``Store``) is no cycle.
"""

from __future__ import annotations

import ast
import re
from functools import cache
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "monitor"
REGISTRY_ENTRY = re.compile(r"^(monitor(?:\.\w+)+):\w+$")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def resolve(name: str) -> str | None:
    """The monitor module that importing ``name`` names: itself, or the package holding it."""
    mods = modules()
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_nodes(tree: ast.AST):
    """Every node but those under ``if TYPE_CHECKING:`` (their ``else:`` does run)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def imported_names(module: str, path: Path) -> set[str]:
    """Every dotted name ``module`` imports (monitor's and others': sqlite3, click...)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the module's package upwards
                package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
                base = ".".join(package[: len(package) - node.level + 1] + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            for alias in node.names:  # `from pkg import submodule` needs the submodule, not pkg's other names
                full = f"{base}.{alias.name}"
                names.update((full,) if full in modules() else (base, full))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and (
                m := REGISTRY_ENTRY.match(node.value)):
            names.add(m.group(1))
    return names


@cache
def graph() -> dict[str, frozenset[str]]:
    """monitor module -> the monitor modules it imports."""
    out = {}
    for module, path in modules().items():
        targets = set()
        for name in imported_names(module, path):
            if name == "monitor" or name.startswith("monitor."):
                target = name if name in modules() else resolve(name)
                if target and target != module:
                    targets.add(target)
        out[module] = frozenset(targets)
    return out


def strongly_connected(g: dict[str, frozenset[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative: the groups of modules that import each other."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for root in sorted(g):
        if root in index:
            continue
        work = [(root, iter(sorted(g[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(g[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def a_cycle(g: dict[str, frozenset[str]], group: list[str]) -> list[str]:
    """One cycle through the group's first module, as a path: a -> b -> ... -> a."""
    members, start = set(group), group[0]
    paths = {start: [start]}
    queue = [start]
    while queue:  # breadth first: the shortest way back to start
        node = queue.pop(0)
        for nxt in sorted(g[node] & members):
            if nxt == start:
                return [*paths[node], start]
            if nxt not in paths:
                paths[nxt] = [*paths[node], nxt]
                queue.append(nxt)
    raise AssertionError(f"{group} is not strongly connected")


def importers(prefix: str) -> dict[str, set[str]]:
    """Each module of ``prefix`` (a package or module name) -> every dotted name it imports."""
    return {m: imported_names(m, p) for m, p in modules().items() if m == prefix or m.startswith(prefix + ".")}


def offending(prefix: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(f"{m} imports {name}" for m, names in importers(prefix).items() for name in names
                  if any(name == f or name.startswith(f + ".") for f in forbidden))


# ------------------------------------------------------------------------- the graph itself


def test_the_graph_sees_function_level_and_relative_imports_and_registries():
    g = graph()
    assert "monitor.pipeline" in g["monitor.cli"]  # module level
    assert "monitor.daemon" in g["monitor.cli"]  # inside a command function
    assert "monitor.collect.reddit" in g["monitor.collect"]  # a registry string
    assert strongly_connected({"a": frozenset("b"), "b": frozenset("c"), "c": frozenset("a"),
                               "d": frozenset("a")}) == [["a", "b", "c"]]
    assert a_cycle({"a": frozenset("b"), "b": frozenset("a")}, ["a", "b"]) == ["a", "b", "a"]


def test_no_import_cycles():
    g = graph()
    cycles = [" -> ".join(a_cycle(g, group)) for group in strongly_connected(g)]
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


# ----------------------------------------------------------------------------------- layers


@pytest.mark.parametrize(("layer", "forbidden"), [
    ("monitor.web", ("monitor.pipeline", "sqlite3", "sqlite_utils", "monitor.cli", "monitor.daemon")),
    ("monitor.alerts", ("monitor.collect", "monitor.web", "monitor.cli", "click", "rich")),
    ("monitor.store", ("monitor.pipeline", "monitor.web", "monitor.alerts", "monitor.cli")),
])
def test_layers_keep_to_their_side(layer, forbidden):
    assert not offending(layer, forbidden)


def test_only_the_cli_imports_the_cli():
    cli = [m for m in modules() if m == "monitor.cli" or m.startswith("monitor.cli_")]
    outside = sorted(f"{m} imports {t}" for m, targets in graph().items() if m not in cli and m != "monitor.__main__"
                     for t in targets if t in cli)
    assert not outside


def test_alerts_print_nothing():
    """Terminal output belongs to the CLI (cli_alert_views.py); the console channel writes to
    the stream it is given, which is delivery, not printing."""
    calls = sorted(f"{m}:{node.lineno}" for m, path in modules().items()
                   if m == "monitor.alerts" or m.startswith("monitor.alerts.")
                   for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
                   if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print")
    assert not calls
