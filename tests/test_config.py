from __future__ import annotations

import pytest
from click.testing import CliRunner

from monitor.cli import main
from monitor.config import load_settings, parse_duration
from monitor.errors import ConfigError

from .conftest import ROOT, write_config

GOOD = """\
database: data/monitor.db
brands:
  - name: Acme
    terms:
      include: [acme]
    sources:
      - type: hackernews
        every: 5m
"""


def test_shipped_config_is_valid():
    settings = load_settings(ROOT / "config.yaml", env={})
    assert settings.brands and settings.source_jobs()


def test_relative_paths_resolve_against_the_config_folder(tmp_path):
    s = load_settings(write_config(tmp_path / "c.yaml", GOOD), env={})
    assert s.database_path == tmp_path / "data" / "monitor.db"
    assert s.brands[0].sources[0].every.total_seconds() == 300


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (GOOD.replace("every: 5m", "evry: 5m"),
         ["line 8", "brands[0].sources[0].evry", "unknown key", "did you mean 'every'"]),
        (GOOD.replace("every: 5m", "every: soon"), ["line 8", "brands[0].sources[0].every", "not a duration"]),
        (GOOD.replace("every: 5m", "every: -5"), ["brands[0].sources[0].every", "positive"]),
        (GOOD.replace("type: hackernews", "type: myspace"), ["brands[0].sources[0]", "myspace"]),
        (GOOD.replace("include: [acme]", "include: []"), ["brands[0].terms.include"]),
        (GOOD.replace("database: data/monitor.db", "database: [1, 2]"), ["line 1", "database"]),
        (GOOD + "classifier:\n  engine: gpu\n", ["classifier.engine"]),
        (GOOD + "alerts:\n  rules:\n    - name: r1\n      when: {sentiment: negative}\n      channels: [slack]\n",
         ["unknown channel 'slack'"]),
        ("brands: [\n", ["YAML syntax error", "line"]),
        ("- just\n- a list\n", ["top level must be a mapping"]),
        ("database: x.db\n", ["brands", "required key is missing"]),
        ("!!python/object/apply:os.system ['echo hi']\n", ["YAML syntax error"]),
        (GOOD.replace("- name: Acme", "- name: Acme\n    base_url: ${NOT_SET_ANYWHERE}"),
         ["NOT_SET_ANYWHERE is not set"]),
    ],
)
def test_broken_configs_name_the_key_and_line(tmp_path, body, expected):
    path = write_config(tmp_path / "c.yaml", body)
    with pytest.raises(ConfigError) as info:
        load_settings(path, env={})
    text = "\n".join(info.value.problems)
    for fragment in expected:
        assert fragment in text, text


def test_every_problem_is_reported_at_once(tmp_path):
    body = GOOD.replace("every: 5m", "every: soon\n        colour: blue")
    with pytest.raises(ConfigError) as info:
        load_settings(write_config(tmp_path / "c.yaml", body), env={})
    assert len(info.value.problems) == 2


def test_check_command_exit_codes(tmp_path):
    runner = CliRunner()
    good = write_config(tmp_path / "good.yaml", GOOD)
    result = runner.invoke(main, ["-c", str(good), "check"])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output
    bad = write_config(tmp_path / "bad.yaml", GOOD.replace("every: 5m", "evry: 5m"))
    result = runner.invoke(main, ["-c", str(bad), "check"])
    assert result.exit_code == 2
    assert "brands[0].sources[0].evry" in result.output
    assert "Traceback" not in result.output
    result = runner.invoke(main, ["-c", str(tmp_path / "missing.yaml"), "check"])
    assert result.exit_code == 2 and "no such config file" in result.output


def test_env_reference_resolves_to_a_hidden_secret(tmp_path):
    from pydantic import SecretStr

    from monitor.config import _resolve_env

    problems: list[str] = []
    out = _resolve_env({"token": "${TOKEN}"}, {"TOKEN": "s3cr3t-value"}, "", problems, {})
    assert isinstance(out["token"], SecretStr)
    assert "s3cr3t-value" not in repr(out)
    assert not problems


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("10m", 600), ("2h", 7200), ("7d", 604800), (45, 45)])
def test_durations(text, seconds):
    assert parse_duration(text).total_seconds() == seconds


def test_a_mastodon_base_url_is_the_server_it_reads(tmp_path):
    body = GOOD.replace("- type: hackernews\n        every: 5m",
                        "- type: mastodon\n        base_url: https://fosstodon.org/")
    source = load_settings(write_config(tmp_path / "c.yaml", body), env={}).brands[0].sources[0]
    assert source.instance == "https://fosstodon.org"  # not the default mastodon.social
    both = body.replace("base_url: https://fosstodon.org/",
                        "base_url: https://fosstodon.org\n        instance: https://mastodon.social")
    with pytest.raises(ConfigError) as info:
        load_settings(write_config(tmp_path / "d.yaml", both), env={})
    assert "brands[0].sources[0]" in "\n".join(info.value.problems)
    assert "name different servers" in "\n".join(info.value.problems)
