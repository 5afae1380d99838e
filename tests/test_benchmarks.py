"""Every benchmark takes --quick, and CI runs them all that way, so none rots unnoticed.
(The benchmarks themselves measure; these tests only read their source.)"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from .conftest import ROOT

BENCHMARKS = sorted((ROOT / "benchmarks").glob("*.py"))


def declared_options(path: Path) -> set[str]:
    """The option strings of every ``add_argument(...)`` call in the script."""
    options = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "add_argument":
            options |= {a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)}
    return options


def test_there_are_benchmarks() -> None:
    assert BENCHMARKS


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda p: p.name)
def test_benchmark_declares_quick(path: Path) -> None:
    assert "--quick" in declared_options(path), f"{path.name} must take --quick (CI runs it that way)"


def test_ci_runs_every_benchmark_quick() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "for bench in benchmarks/*.py" in ci
    assert '.venv/bin/python "$bench" --quick' in ci
