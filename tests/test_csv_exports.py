"""Every CSV the monitor writes is safe to open in a spreadsheet: one neutralising writer
(monitor.csvsafe) for the web exports and every CLI ``--format csv``, with a guard against
any other CSV writer in the package; the corrections export stays evaluation data."""

from __future__ import annotations

import ast
import csv
import io
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import example, given
from hypothesis import strategies as st

from monitor import csvsafe
from monitor.classify.evaluation import iter_records
from monitor.cli import main
from monitor.store import Store
from tests.web_data import add
from tests.web_support import client as web_client
from tests.web_support import login, make_app, make_db

PACKAGE = Path(__file__).resolve().parents[1] / "monitor"

# a formula start behind everything a spreadsheet trims first
HOSTILE = ["=1+1", "+1", "-2+3", "@SUM(A1)", " =HYPERLINK(\"http://x\")", "\n=cmd|' /C calc'!A0", "\t=1",
           "\xa0=1", "\u3000+1", "\u200b=1", "\u2028@x", " \n\t-1", "\uff1d1+1", "'=already quoted", "\r=1"]


def safe_cell(cell: str) -> bool:
    """Empty, a number (a negative index is no formula), or text a spreadsheet shows as text."""
    try:
        float(cell)
        return True
    except ValueError:
        return cell.startswith("'") or not csvsafe.is_formula(cell)


@pytest.mark.parametrize("text", HOSTILE)
def test_formula_starts_are_neutralised(text):
    assert csvsafe.is_formula(text.lstrip("'"))
    assert csvsafe.neutralise(text) == "'" + text
    assert csvsafe.restore(csvsafe.neutralise(text)) == text


@pytest.mark.parametrize("value", ["plain text", "a = b", "'tis fine", "", 5, -3, -0.5, None, "100%"])
def test_other_values_stay_as_they_are(value):
    assert csvsafe.neutralise(value) == value


@given(st.text())
@example("'=1")
@example("''\xa0+x")
def test_neutralise_is_safe_and_reversible(text):
    out = csvsafe.neutralise(text)
    assert safe_cell(out)
    assert csvsafe.restore(out) == text


def csv_writer_uses(tree: ast.AST) -> list[int]:
    """Lines that build a csv writer (``csv.writer``, ``csv.DictWriter``, or either imported by name)."""
    names = {"writer", "DictWriter"}
    lines = []
    for node in ast.walk(tree):
        attribute = (isinstance(node, ast.Attribute) and node.attr in names and isinstance(node.value, ast.Name)
                     and node.value.id == "csv")
        imported = (isinstance(node, ast.ImportFrom) and node.module == "csv"
                    and any(a.name in names for a in node.names))
        if attribute or imported:
            lines.append(node.lineno)
    return sorted(lines)


def test_every_csv_writer_is_the_neutralising_one():
    found = {str(p.relative_to(PACKAGE.parent)): lines for p in sorted(PACKAGE.rglob("*.py"))
             if p.name != "csvsafe.py" and (lines := csv_writer_uses(ast.parse(p.read_text(), str(p))))}
    assert found == {}, f"write CSV through monitor.csvsafe, not csv directly: {found}"
    assert csv_writer_uses(ast.parse("import csv\nw = csv.DictWriter(f, [])\nfrom csv import writer\n")) == [2, 3]


# ------------------------------------------------------------------ every output

def hostile_seeder(store: Store) -> None:
    add(store, [{"id": 100 + i, "handle": f"{text}h{i}", "text": f"{text} acme", "advocacy": "detractor",
                 "days_ago": 1 + i % 3, "reach": 5_000} for i, text in enumerate(HOSTILE)])
    add(store, [{"id": 200 + i, "brand": "=1+1 Brand", "handle": f"b{i}", "text": f"=1+1 brand #{i}",
                 "advocacy": "promoter"} for i in range(3)])
    for row in store.query("SELECT id, brand FROM mentions ORDER BY id"):
        label = "detractor" if row["brand"] == "Acme" else "promoter"
        store.accounts.add_correction(row["id"], "advocacy", label, "=maria")


def assert_safe(text: str, expect_rows: int = 1) -> list[list[str]]:
    rows = list(csv.reader(io.StringIO(text)))
    assert len(rows) > expect_rows, text
    bad = [cell for row in rows for cell in row if not safe_cell(cell)]
    assert bad == []
    return rows


@pytest.fixture
def hostile_db(tmp_path):
    settings, store = make_db(tmp_path, hostile_seeder)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"database: {settings.database_path}\nbrands:\n  - name: Acme\n    terms: {{include: [acme]}}\n"
                   "advocates:\n  index_min_sample: 1\n  recency_half_life: 3650d\n")
    return settings, store, str(cfg)


@pytest.mark.parametrize("args", [
    ["mentions", "--format", "csv"],
    ["advocates", "--format", "csv", "--detractors"],
    ["advocates", "--format", "csv"],
    ["advocates", "corrections"],
    ["advocates", "corrections", "--field", "advocacy"],
    ["advocates", "index", "--weeks", "520", "--format", "csv"],
])
def test_cli_csv_outputs_are_neutralised(hostile_db, args):
    _, _, cfg = hostile_db
    r = CliRunner().invoke(main, ["-c", cfg, *args], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    rows = assert_safe(r.stdout)
    assert any(cell.startswith("'") for row in rows for cell in row)  # the hostile data is in there


@pytest.fixture
def anyio_backend():
    return "asyncio"


@pytest.mark.anyio
async def test_web_exports_are_neutralised_and_corrections_stay_evaluation_data(hostile_db, tmp_path):
    settings, store, _ = hostile_db
    async with web_client(make_app(settings, store)) as c:
        await login(c)
        for path in ("/export/advocates.csv", "/export/detractors.csv", "/export/mentions.csv"):
            r = await c.get(path)
            assert r.status_code == 200
            assert_safe(r.text)
        export = (await c.get("/export/corrections.csv", params={"field": "advocacy"})).text
    assert_safe(export, expect_rows=len(HOSTILE))
    saved = tmp_path / "corrections-advocacy.csv"
    saved.write_text(export, newline="")
    texts = {r["text"] for r in iter_records(saved)}
    # as the model saw them (mention_text strips the ends), the apostrophes taken off again
    assert {f"{t} acme".strip() for t in HOSTILE} <= texts
    assert {r["set_by"] for r in iter_records(saved)} == {"=maria"}
