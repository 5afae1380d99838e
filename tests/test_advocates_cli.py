"""`monitor advocates` and `monitor users` through click, on a real database."""

from __future__ import annotations

import csv
import io
import json

from click.testing import CliRunner

from monitor.cli import main
from monitor.store import Store
from monitor.web.security import verify_password
from tests.web_data import seed


def config(tmp_path):
    (tmp_path / "config.yaml").write_text(
        "database: m.db\nbrands:\n  - name: Acme\n    terms: {include: [acme]}\n"
        "advocates:\n  index_min_sample: 2\n  recency_half_life: 3650d\n")
    seed(Store(tmp_path / "m.db"))
    return str(tmp_path / "config.yaml")


def run(args, **kw):
    r = CliRunner().invoke(main, args, catch_exceptions=False, **kw)
    return r


def test_advocates_json_csv_and_table(tmp_path):
    cfg = config(tmp_path)
    r = run(["-c", cfg, "advocates", "--format", "json", "--brand", "Acme"])
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert rows[0]["handle"] == "alice" and "stance 5 of 6 classified" in rows[0]["reasons"]
    r = run(["-c", cfg, "advocates", "--detractors", "--flag", "detractor", "--format", "csv"])
    got = list(csv.DictReader(io.StringIO(r.stdout)))
    assert {x["handle"] for x in got} == {"bob"} and "detractor_score" in got[0]
    # one 2-star review is a detractor stance, not a flagged detractor; the "why" names the stars
    r = run(["-c", cfg, "advocates", "--detractors", "--format", "json"])
    rita = next(json.loads(line) for line in r.stdout.splitlines() if '"rita"' in line)
    assert rita["flag"] is None and "1 of 1 classified (1 from stars)" in rita["reasons"]
    r = run(["-c", cfg, "advocates", "--flipped"])
    assert "carol" in r.output and "alice" not in r.output


def test_index_and_refresh_commands(tmp_path):
    cfg = config(tmp_path)
    assert "full refresh" in run(["-c", cfg, "advocates", "refresh"]).output
    assert "incremental" in run(["-c", cfg, "advocates", "refresh"]).output
    r = run(["-c", cfg, "advocates", "index", "--weeks", "520", "--by", "source", "--format", "json"])
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    stars = next(x for x in rows if x["basis"] == "stars")
    assert stars["source"] == "appstore" and stars["index"] == 0.0 and stars["n"] == 2


def test_link_command(tmp_path):
    cfg = config(tmp_path)
    run(["-c", cfg, "advocates", "refresh"])
    r = run(["-c", cfg, "advocates", "link", "demo:alice", "demo:dave"])
    assert r.exit_code == 0, r.output
    r = run(["-c", cfg, "advocates", "--format", "json", "--search", "alice", "--no-refresh"])
    assert json.loads(r.stdout.splitlines()[0])["mentions"] == 7
    assert run(["-c", cfg, "advocates", "link", "demo:alice", "demo:nobody"]).exit_code == 1


def test_users_add_hashes_the_password(tmp_path):
    cfg = config(tmp_path)
    r = run(["-c", cfg, "users", "add", "maria", "--password-stdin"], input="a long enough password\n")
    assert r.exit_code == 0, r.output
    user = Store(tmp_path / "m.db").accounts.get_user("maria")
    assert user["password_hash"].startswith("scrypt$") and "a long enough" not in user["password_hash"]
    assert verify_password("a long enough password", user["password_hash"])
    assert not verify_password("wrong", user["password_hash"])
    assert run(["-c", cfg, "users", "add", "maria", "--password-stdin"], input="another password\n").exit_code == 1
    assert run(["-c", cfg, "users", "add", "bob", "--password-stdin"], input="short\n").exit_code == 1
    assert "maria" in run(["-c", cfg, "users", "list"]).output
