"""`monitor import FILE`: CSV and JSONL feedback into a named source, through click, on a real database."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from monitor import advocates, importer
from monitor.cli import main
from monitor.store import Store


@pytest.fixture
def cfg(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text("database: m.db\nbrands:\n  - name: Acme\n    terms: {include: [acme]}\n"
                    "advocates:\n  index_min_sample: 2\n")
    return str(path)


def run(cfg, *args):
    return CliRunner().invoke(main, ["-c", cfg, "import", *map(str, args)], catch_exceptions=False)


def stored(tmp_path):
    return Store(tmp_path / "m.db").query(
        "SELECT source, source_key, native_id, kind, text, url, score, created_at, author_id FROM mentions ORDER BY id")


NPS = ("response_id,comment,score,submitted_at,email\n"
       "r1,Love the new dashboard,10,2026-11-02T10:00:00Z,a@x.io\n"
       "r2,\"Fine, I guess\nsecond line\",7,2026-11-03,b@x.io\n"
       "r3,Support never answered,2,2026-11-04T08:00:00+01:00,c@x.io\n")
MAP = ("--text", "comment", "--score", "score", "--date", "submitted_at", "--id", "response_id", "--author", "email")


def test_csv_with_mapping_stores_a_survey_source(tmp_path, cfg):
    (tmp_path / "nps.csv").write_text(NPS)
    r = run(cfg, tmp_path / "nps.csv", "--brand", "Acme", "--source", "nps-q4", *MAP)
    assert r.exit_code == 0, r.output
    assert "3 row(s) read, 3 new, 0 already stored, 0 skipped" in r.stdout
    rows = stored(tmp_path)
    assert [(x["source"], x["source_key"], x["native_id"], x["kind"], x["score"]) for x in rows] == [
        ("import", "Acme:nps-q4", "nps-q4:r1", "survey", 10), ("import", "Acme:nps-q4", "nps-q4:r2", "survey", 7),
        ("import", "Acme:nps-q4", "nps-q4:r3", "survey", 2)]
    assert rows[1]["text"] == "Fine, I guess\nsecond line"
    assert rows[2]["created_at"].startswith("2026-11-04T07:00:00")
    assert all(x["author_id"] is not None for x in rows)


def test_reimport_stores_nothing_new_and_says_so(tmp_path, cfg):
    (tmp_path / "nps.csv").write_text(NPS)
    assert run(cfg, tmp_path / "nps.csv", "--brand", "Acme", "--source", "nps", *MAP).exit_code == 0
    r = run(cfg, tmp_path / "nps.csv", "--brand", "Acme", "--source", "nps", *MAP)
    assert r.exit_code == 0 and "0 new, 3 already stored" in r.stdout and "nothing new stored" in r.stdout
    assert len(stored(tmp_path)) == 3


def test_jsonl_without_id_uses_a_content_hash_and_is_idempotent(tmp_path, cfg):
    lines = [{"body": "Ticket: cannot log in <script>x</script>", "who": "u1", "at": 1767225600},
             {"body": "Refund took three weeks\u0000", "who": "u2", "at": "2026-01-02T00:00:00"}]
    (tmp_path / "t.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    args = (tmp_path / "t.jsonl", "--brand", "Acme", "--source", "zendesk", "--text", "body", "--author", "who",
            "--date", "at", "--kind", "support")
    r = run(cfg, *args)
    assert r.exit_code == 0, r.output
    rows = stored(tmp_path)
    assert len(rows) == 2 and all(x["native_id"].startswith("zendesk:sha256:") for x in rows)
    assert rows[1]["text"] == "Refund took three weeks" and rows[0]["kind"] == "support"  # cleaned by Mention
    assert "0 new, 2 already stored" in run(cfg, *args).stdout


def test_jsonl_by_format_option_and_default_date_is_marked(tmp_path, cfg):
    (tmp_path / "t.txt").write_text(json.dumps({"text": "hello acme"}) + "\n")
    r = run(cfg, tmp_path / "t.txt", "--brand", "Acme", "--source", "x", "--format", "jsonl")
    assert r.exit_code == 0, r.output
    extra = Store(tmp_path / "m.db").query("SELECT extra, kind FROM mentions")[0]
    assert json.loads(extra["extra"])["created_at_estimated"] is True and extra["kind"] == "feedback"


def test_bad_rows_are_reported_by_line_and_skipped(tmp_path, cfg):
    (tmp_path / "nps.csv").write_text(
        "response_id,comment,score,submitted_at,email\n"
        "r1,good,10,2026-11-02,a\n"
        "r2,too high,11,2026-11-02,a\n"
        "r3,,5,2026-11-02,a\n"
        "r4,bad date,5,yesterday,a\n"
        "r5,not a number,abc,2026-11-02,a\n"
        "r6,fine,8,2026-11-02,a\n")
    r = run(cfg, tmp_path / "nps.csv", "--brand", "Acme", "--source", "nps", *MAP)
    assert r.exit_code == 0, r.output
    assert "line 3: skipped: score out of range: 11" in r.stderr
    assert "line 4: skipped: missing text" in r.stderr
    assert "line 5: skipped: bad date 'yesterday'" in r.stderr
    assert "line 6: skipped: bad score 'abc'" in r.stderr
    assert "6 row(s) read, 2 new, 0 already stored, 4 skipped" in r.stdout
    assert [x["native_id"] for x in stored(tmp_path)] == ["nps:r1", "nps:r6"]


def test_bad_jsonl_lines_are_skipped_with_their_line(tmp_path, cfg):
    (tmp_path / "t.jsonl").write_text('{"text": "ok acme"}\n{"text": "trunc\n[1, 2]\n')
    r = run(cfg, tmp_path / "t.jsonl", "--brand", "Acme", "--source", "x")
    assert r.exit_code == 0, r.output
    assert "line 2: skipped: not valid JSON" in r.stderr and "line 3: skipped: not a JSON object" in r.stderr
    assert len(stored(tmp_path)) == 1


def test_a_bom_is_fine(tmp_path, cfg):
    (tmp_path / "nps.csv").write_bytes(b"\xef\xbb\xbf" + NPS.encode())
    r = run(cfg, tmp_path / "nps.csv", "--brand", "Acme", "--source", "nps", *MAP)
    assert r.exit_code == 0, r.output
    assert len(stored(tmp_path)) == 3


def assert_nothing_stored(tmp_path):
    db = tmp_path / "m.db"
    assert not db.exists() or Store(db).query("SELECT count(*) AS n FROM mentions")[0]["n"] == 0


def test_wrong_delimiter_fails_the_whole_file(tmp_path, cfg):
    (tmp_path / "nps.csv").write_text(NPS.replace(",", ";"))
    r = run(cfg, tmp_path / "nps.csv", "--brand", "Acme", "--source", "nps", *MAP)
    assert r.exit_code == 1
    assert "line 1: column 'comment' not in the header" in r.stderr and "wrong delimiter?" in r.stderr
    assert_nothing_stored(tmp_path)
    r = run(cfg, tmp_path / "nps.csv", "--brand", "Acme", "--source", "nps", "--delimiter", ";", *MAP)
    assert r.exit_code == 0 and len(stored(tmp_path)) == 3


def test_a_missing_column_fails_the_whole_file(tmp_path, cfg):
    (tmp_path / "nps.csv").write_text(NPS)
    r = run(cfg, tmp_path / "nps.csv", "--brand", "Acme", "--source", "nps", *MAP, "--url", "link")
    assert r.exit_code == 1 and "column 'link' not in the header" in r.stderr
    assert_nothing_stored(tmp_path)
    (tmp_path / "t.jsonl").write_text('{"body": "a"}\n{"body": "b"}\n')
    r = run(cfg, tmp_path / "t.jsonl", "--brand", "Acme", "--source", "x", "--text", "body", "--score", "nps")
    assert r.exit_code == 1 and "key 'nps' is in no line" in r.stderr
    assert_nothing_stored(tmp_path)


def test_mixed_encodings_fail_the_whole_file_naming_the_line(tmp_path, cfg):
    (tmp_path / "nps.csv").write_bytes(NPS.encode() + "r9,caf\u00e9 cr\u00e8me,9,2026-11-05,d\n".encode("latin-1"))
    r = run(cfg, tmp_path / "nps.csv", "--brand", "Acme", "--source", "nps", *MAP)
    assert r.exit_code == 1 and "line 6: bytes not valid utf-8" in r.stderr and "nothing imported" in r.stderr
    assert_nothing_stored(tmp_path)


def test_a_file_over_the_limit_is_refused_before_reading(tmp_path, cfg):
    big = tmp_path / "huge.csv"
    with open(big, "wb") as fh:  # sparse: no 2 GB written
        fh.write(b"text\nacme\n")
        fh.truncate(importer.MAX_BYTES + 1)
    r = run(cfg, big, "--brand", "Acme", "--source", "x")
    assert r.exit_code == 1 and "over the limit of 2,147,483,648" in r.stderr
    assert_nothing_stored(tmp_path)


def test_broken_quoting_fails_the_whole_file(tmp_path, cfg):
    (tmp_path / "t.csv").write_bytes(b"text,score\nfine,9\n\"bad\"quote,3\n")
    r = run(cfg, tmp_path / "t.csv", "--brand", "Acme", "--source", "x", "--score", "score")
    assert r.exit_code == 1 and "line 3: not readable as CSV" in r.stderr
    assert_nothing_stored(tmp_path)


def test_unknown_brand_and_all_bad_rows_store_nothing(tmp_path, cfg):
    (tmp_path / "nps.csv").write_text(NPS)
    r = run(cfg, tmp_path / "nps.csv", "--brand", "Nope", "--source", "nps", *MAP)
    assert r.exit_code == 1 and "unknown brand 'Nope'" in r.stderr
    (tmp_path / "t.csv").write_text("text,score\nx,12\n")
    r = run(cfg, tmp_path / "t.csv", "--brand", "Acme", "--source", "x", "--score", "score")
    assert r.exit_code == 1 and "no importable row" in r.stderr
    assert_nothing_stored(tmp_path)


def test_survey_stance_nps_bands():
    assert [advocates.survey_stance(s) for s in (0, 6, 7, 8, 9, 10, None, 11)] == [
        "detractor", "detractor", "passive", "passive", "promoter", "promoter", None, None]
    assert advocates.stance_of("detractor", "survey", None, False, 10) == ("promoter", "survey")
    assert advocates.stance_of("detractor", "survey", None, True, 10) == ("detractor", "corrected")
    assert advocates.stance_of("none", "feedback", None, False, None) == ("passive", "text")


def test_the_index_by_basis_shows_survey(tmp_path, cfg):
    (tmp_path / "nps.csv").write_text(NPS)
    assert run(cfg, tmp_path / "nps.csv", "--brand", "Acme", "--source", "nps", *MAP).exit_code == 0
    r = CliRunner().invoke(main, ["-c", cfg, "advocates", "index", "--weeks", "10000", "--by", "source",
                                  "--format", "json"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    survey = [x for x in rows if x["basis"] == "survey"]
    assert survey == [{"brand": "Acme", "source": "import", "signal": "relationship", "basis": "survey",
                       "index": 0.0, "low": survey[0]["low"], "high": survey[0]["high"], "n": 3, "promoters": 1,
                       "passives": 1, "detractors": 1}]
    # and per person: each author's one survey answer is the basis of their stance
    stats = Store(tmp_path / "m.db").query("SELECT handle, promoters, detractors, explain FROM author_stats "
                                           "ORDER BY handle")
    assert [(s["handle"], s["promoters"], s["detractors"]) for s in stats] == [("a@x.io", 1, 0), ("b@x.io", 0, 0),
                                                                              ("c@x.io", 0, 1)]
    assert json.loads(stats[0]["explain"])["basis"]["promoter"] == {"survey": 1}


def test_the_web_views_show_the_survey_basis(tmp_path, cfg):
    from monitor.config import load_settings
    from monitor.web.views import Views

    (tmp_path / "nps.csv").write_text(NPS)
    assert run(cfg, tmp_path / "nps.csv", "--brand", "Acme", "--source", "nps", *MAP).exit_code == 0
    views = Views(Store(tmp_path / "m.db"), load_settings(cfg))
    found = {m["text"]: m["basis"] for m in views.mentions()}
    assert set(found.values()) == {"survey"}
    overview = views.overview("Acme", weeks=10000)
    assert "survey:relationship" in overview["index"] and "survey scores" in overview["index"]["survey:relationship"][
        "label"]


def test_classify_flag_classifies_what_is_new(tmp_path, cfg, monkeypatch):
    from tests.conftest import KeywordClassifier

    monkeypatch.setattr("monitor.cli.make_classifier", lambda settings: KeywordClassifier())
    (tmp_path / "t.csv").write_text("text\nI recommend acme\navoid acme\n")
    r = run(cfg, tmp_path / "t.csv", "--brand", "Acme", "--source", "tickets", "--classify")
    assert r.exit_code == 0, r.output
    assert "2 new" in r.stdout and "classified 2 mention(s) with keyword-fake@1" in r.stdout
    weekly = Store(tmp_path / "m.db").query("SELECT basis, promoters, detractors FROM advocacy_weekly")
    assert weekly == [{"basis": "text", "promoters": 1.0, "detractors": 1.0}]
