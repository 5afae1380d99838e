"""The docs are checked against the code (as datasette's tests/test_docs.py does): the
exception tree drawn in monitor/errors.py against the real classes, and the README's
commands against the real click commands and their options."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import click
import pytest
import yaml

from monitor import errors
from monitor.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


# ------------------------------------------------------------------------- exception tree


def documented_tree() -> dict[str, str | None]:
    """class name -> parent name, from the tree drawn in errors.py's docstring."""
    tree: dict[str, str | None] = {}
    parents: list[str] = []  # parents[d]: the latest class drawn at depth d
    base = None  # the root's column; each level is drawn 4 columns further in
    for line in (errors.__doc__ or "").splitlines():
        m = re.match(r"^ {4,}[│├└─ ]*([A-Z]\w*)\b", line)
        if not m:
            continue
        base = m.start(1) if base is None else base
        depth, name = (m.start(1) - base) // 4, m.group(1)
        tree[name] = parents[depth - 1] if depth else None
        parents[depth:] = [name]
    return tree


def project_error_modules() -> list[str]:
    """Every monitor module that defines a class on a base named like an error, read with
    ``ast`` (importing them all would load torch): those are imported before the walk."""
    found = []
    for path in sorted((ROOT / "monitor").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any(
                    (b.id if isinstance(b, ast.Name) else getattr(b, "attr", "")).endswith("Error")
                    for b in node.bases):
                parts = path.relative_to(ROOT).with_suffix("").parts
                found.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
                break
    return found


def real_tree() -> dict[str, str | None]:
    """class name -> parent name, for MonitorError and every public subclass of it."""
    for module in project_error_modules():
        importlib.import_module(module)
    tree: dict[str, str | None] = {"MonitorError": None}
    todo = [errors.MonitorError]
    while todo:
        cls = todo.pop()
        for sub in cls.__subclasses__():
            if sub.__module__.startswith("monitor.") and not sub.__name__.startswith("_"):
                parent = next(b for b in sub.__mro__[1:] if not b.__name__.startswith("_"))
                tree[sub.__name__] = parent.__name__
            todo.append(sub)
    return tree


def test_the_docstring_parser_reads_depth_from_the_drawing():
    errors_doc = errors.__doc__
    try:
        errors.__doc__ = """x

    A                 base
    ├── B             one
    │   └── C         two
    └── D             three
"""
        assert documented_tree() == {"A": None, "B": "A", "C": "B", "D": "A"}
    finally:
        errors.__doc__ = errors_doc


def test_the_exception_tree_in_errors_py_is_the_real_one():
    documented, real = documented_tree(), real_tree()
    assert documented == real, (
        f"not drawn: {sorted(set(real) - set(documented))}; drawn but not defined: "
        f"{sorted(set(documented) - set(real))}; drawn under the wrong parent: "
        f"{sorted(n for n in set(real) & set(documented) if real[n] != documented[n])}")


# ------------------------------------------------------------------------------ commands


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    out = set()
    for name, command in group.commands.items():
        out.add((*prefix, name))
        if isinstance(command, click.Group):
            out |= command_paths(command, (*prefix, name))
    return out


def find(path: tuple[str, ...]) -> click.Command | None:
    command: click.Command | None = main
    for name in path:
        command = command.commands.get(name) if isinstance(command, click.Group) else None
    return command


def options(command: click.Command) -> set[str]:
    return {o for p in command.params for o in (*p.opts, *p.secondary_opts) if o.startswith("-")}


def usages(text: str) -> list[str]:
    """Every `monitor ...` the README shows: inline code and lines of code blocks."""
    spans = [s.replace("\\|", "|") for s in re.findall(r"`(monitor [^`]+)`", text)]
    blocks = re.findall(r"^```[a-z]*\n(.*?)^```", text, flags=re.S | re.M)
    lines = [ln.split("#")[0].strip() for block in blocks for ln in block.splitlines()]
    return spans + [ln for ln in lines if ln.startswith("monitor ")]


def parse_usage(usage: str) -> tuple[list[tuple[str, ...]], list[str]]:
    """(the command paths it names, the options it shows). ``model train/eval``,
    ``cursor show|reset`` and ``advocates [refresh|index]`` name the group and several of
    its subcommands."""
    tokens = usage.split()[1:]
    paths: list[tuple[str, ...]] = [()]
    while tokens:
        word = tokens[0]
        if m := re.fullmatch(r"\[?([a-z]+(?:-[a-z]+)*(?:[/|][a-z]+(?:-[a-z]+)*)+)\]?", word):
            paths = [paths[0], *[(*paths[0], sub) for sub in re.split("[/|]", m.group(1))]]
            tokens.pop(0)
            break
        if not re.fullmatch(r"[a-z]+(?:-[a-z]+)*", word) or not isinstance(find(paths[0]), click.Group):
            break  # an argument (BRAND, FILE, maria), an option, or a word past a plain command
        paths = [(*paths[0], word)]
        tokens.pop(0)
    return paths, [m.group(1) for t in tokens if (m := re.match(r"^\[?(--?[a-z][\w-]*)", t))]


def commands_table() -> str:
    return README.split("\n## Commands\n", 1)[1].split("\n## ", 1)[0]


def test_the_usage_parser():
    assert parse_usage("monitor collect [--source KEY] [--once]") == ([("collect",)], ["--source", "--once"])
    assert parse_usage("monitor model train/eval") == ([("model",), ("model", "train"), ("model", "eval")], [])
    assert parse_usage("monitor advocates [refresh|index]") == (
        [("advocates",), ("advocates", "refresh"), ("advocates", "index")], [])
    assert parse_usage("monitor users add maria") == ([("users", "add")], [])
    assert parse_usage("monitor programme import-referrals FILE") == ([("programme", "import-referrals")], [])
    assert parse_usage("monitor model predict FILE [-o OUT]") == ([("model", "predict")], ["-o"])
    assert parse_usage("monitor cursor show|reset SOURCE [--query Q]") == (
        [("cursor",), ("cursor", "show"), ("cursor", "reset")], ["--query"])


def test_every_command_is_in_the_readme_commands_table_and_every_one_there_exists():
    documented = {p for usage in usages(commands_table()) for p in parse_usage(usage)[0]}
    real = command_paths(main)
    assert documented == real, (f"not in the README's command table: {sorted(real - documented)}; "
                                f"in the table but not a command: {sorted(documented - real)}")


@pytest.mark.parametrize("usage", sorted(set(usages(README))))
def test_every_command_and_option_the_readme_shows_exists(usage):
    paths, shown = parse_usage(usage)
    for path in paths:
        assert path and find(path) is not None, f"{usage!r}: no command monitor {' '.join(path)}"
    # the options shown belong to the command named, or to one of the subcommands named
    known = options(main).union(*(options(find(path)) for path in (paths if len(paths) == 1 else paths[1:])))
    assert not set(shown) - known, f"{usage!r}: no such option {sorted(set(shown) - known)}"


@pytest.mark.parametrize("sentence", re.findall(
    r"((?:`[a-z]+`(?:, | and ))*`[a-z]+`) (?:also )?takes? ((?:`--[a-z-]+`/?)+)", README))
def test_options_the_readme_says_commands_take_exist(sentence):
    """"`eval` and `predict` also take `--engine`/`--model`": each command named has each option."""
    names, opts = sentence
    for name in re.findall(r"`([a-z]+)`", names):
        paths = [p for p in command_paths(main) if p[-1] == name]
        assert paths, f"{sentence}: no command {name}"
        missing = [set(re.findall(r"`(--[a-z-]+)`", opts)) - options(find(p)) for p in paths]
        assert not all(missing), f"{sentence}: monitor {' '.join(paths[0])} has no {sorted(missing[0])}"


def test_the_readme_web_settings_are_the_shipped_configs():
    shipped = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))["web"]
    blocks = [yaml.safe_load(b) for b in re.findall(r"^```yaml\n(.*?)^```", README, flags=re.S | re.M)]
    shown = [b["web"] for b in blocks if isinstance(b, dict) and isinstance(b.get("web"), dict)]
    assert shown, "the README shows no web: settings"
    for web in shown:
        for key in set(web) & set(shipped):
            assert web[key] == shipped[key], f"web.{key}: README {web[key]!r}, config.yaml {shipped[key]!r}"


def test_the_quick_start_installs_to_run_and_to_test_apart_and_names_the_browser():
    quick = README.split("\n## Quick start\n", 1)[1].split("\n## ", 1)[0]
    lines = [ln for b in re.findall(r"^```sh\n(.*?)^```", quick, flags=re.S | re.M) for ln in b.splitlines()]
    run = next(ln for ln in lines if "monitor run" in ln)
    assert "pip install ." in run and "[test]" not in run  # running needs no test tools
    test_install = next(ln for ln in lines if "[test]" in ln)
    assert "pip install" in test_install and any("pytest" in ln for ln in lines)
    assert "chromium" in quick and "scripts/install-test-browser.sh" in quick
