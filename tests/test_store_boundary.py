"""The store boundary holds: SQL and the database connection live in monitor/store only.

Read with ast (no import): outside monitor/store no module imports sqlite3, sqlite_utils or psycopg,
touches a ``.conn`` attribute, or hands SQL text to ``query`` / ``execute`` /
``executemany`` / ``executescript``. Other layers call the typed methods of ``Store``
(``store.alerts``, ``store.advocacy``, ``store.accounts``).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "monitor"
STORE = PACKAGE / "store"
DB_MODULES = {"sqlite3", "sqlite_utils", "psycopg"}  # psycopg: PostgreSQL (store._pg)
SQL_CALLS = {"query", "execute", "executemany", "executescript"}
SQL_TEXT = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|PRAGMA|WITH|BEGIN|COMMIT|ROLLBACK)\b",
                      re.IGNORECASE)


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if STORE not in p.parents)


def _string(node: ast.expr) -> str | None:
    """The leading text of a str literal or f-string (enough to tell SQL)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr) and node.values and isinstance(node.values[0], ast.Constant):
        return str(node.values[0].value)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _string(node.left)
    return None


def violations(source: str) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out += [f"line {node.lineno}: import {a.name}" for a in node.names
                    if a.name.split(".")[0] in DB_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in DB_MODULES:
            out.append(f"line {node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Attribute) and node.attr == "conn":
            out.append(f"line {node.lineno}: .conn")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SQL_CALLS
              and node.args and SQL_TEXT.match(_string(node.args[0]) or "")):
            out.append(f"line {node.lineno}: SQL passed to .{node.func.attr}()")
    return out


def test_the_walk_sees_every_module_outside_the_store():
    names = {p.relative_to(PACKAGE).as_posix() for p in _modules()}
    assert {"pipeline.py", "advocates.py", "alerts/engine.py", "web/views.py"} <= names
    assert not any(n.startswith("store/") for n in names)


@pytest.mark.parametrize("path", _modules(), ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_no_sql_or_connection_outside_the_store(path):
    assert violations(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("source, found", [
    ("import sqlite3", "import sqlite3"),
    ("import sqlite_utils.db as x", "import sqlite_utils.db"),
    ("from sqlite_utils import Database", "from sqlite_utils import ..."),
    ("import psycopg", "import psycopg"),
    ("from psycopg.rows import dict_row", "from psycopg.rows import ..."),
    ("store.conn.in_transaction", ".conn"),
    ("rows = store.query('SELECT 1 FROM alerts WHERE key = ?', [k])", "SQL passed to .query()"),
    ("db.execute(f'DELETE FROM {t}')", "SQL passed to .execute()"),
    ("store.query('  select ' + cols)", "SQL passed to .query()"),
])
def test_the_check_catches_what_it_forbids(source, found):
    assert [v.split(": ", 1)[1] for v in violations(source)] == [found]


def test_the_check_leaves_ordinary_code_alone():
    ok = ("from monitor.store import Store\nstore.alerts.exists(key)\nsource.queries()\n"
          "client.query('acme')\nparams.update(query='brand')\n")
    assert violations(ok) == []
