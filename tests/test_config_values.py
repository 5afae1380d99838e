"""Config values are checked for their meaning where they are loaded: terms that match
something, durations from a second to ten years, URLs that parse; YAML that would recurse,
explode or silently drop a duplicate key is refused; every problem names its key path and line."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from monitor import pipeline
from monitor.alerts.engine import AlertEngine
from monitor.alerts.outbox import RetryPolicy
from monitor.cli import main
from monitor.config import Terms, load_settings, parse_duration
from monitor.errors import ConfigError
from monitor.matching import Matcher
from monitor.records import Author, FetchResult, Mention
from monitor.store import Store

from .conftest import KeywordClassifier

HEAD = """\
brands:
  - name: Acme
    terms: {include: [acme]}
"""


def load(tmp_path, body: str, env: dict | None = None):
    path = tmp_path / "config.yaml"
    path.write_text(body, encoding="utf-8")
    return load_settings(path, env=env or {})


def problems(tmp_path, body: str, env: dict | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, body, env)
    return "\n".join(info.value.problems)


def rule(when: str) -> str:
    return HEAD + f"alerts:\n  rules:\n    - name: r\n      when: {when}\n      channels: [console]\n"


# ------------------------------------------------------------------------------- 6. terms

EMPTY_TERMS = ["'\"\"'", "'  '", "'\"'", "'\" \"'", "''", "'\"  \"'"]


@pytest.mark.parametrize("term", EMPTY_TERMS)
@pytest.mark.parametrize("key", ["terms", "exclude_terms"])
def test_an_alert_rule_term_must_contain_a_word(tmp_path, key, term):
    text = problems(tmp_path, rule(f"{{{key}: [good, {term}]}}"))
    assert f"line 7: alerts.rules[0].when.{key}[1]: a term must contain a word" in text


@pytest.mark.parametrize("term", EMPTY_TERMS)
@pytest.mark.parametrize("key", ["include", "exclude"])
def test_a_brand_term_must_contain_a_word(tmp_path, key, term):
    body = HEAD.replace("{include: [acme]}", "{include: [acme], exclude: [x]}")
    body = body.replace(f"{key}: [", f"{key}: [{term}, ")
    assert f"line 3: brands[0].terms.{key}[0]: a term must contain a word" in problems(tmp_path, body)


def test_a_blank_quoted_phrase_cannot_become_a_match_everything_pattern():
    with pytest.raises(ValidationError):
        Matcher(Terms(include=['" "']))
    assert Matcher(Terms(include=['  "acme cloud" '])).match("I use Acme  Cloud daily") == "acme cloud"


def test_a_config_check_accepts_is_one_classify_can_use(tmp_path):
    """Terms were checked only when classify built its matchers: check said OK, classify failed."""
    ok = CliRunner().invoke(main, ["-c", str(tmp_path / "c.yaml"), "check"])  # missing file: exit 2
    assert ok.exit_code == 2
    (tmp_path / "c.yaml").write_text(rule("{terms: ['\"\"']}"), encoding="utf-8")
    result = CliRunner().invoke(main, ["-c", str(tmp_path / "c.yaml"), "check"])
    assert result.exit_code == 2 and "alerts.rules[0].when.terms[0]" in result.output, result.output
    settings = load(tmp_path, rule("{terms: ['\"acme cloud\"'], exclude_terms: [beta]}"))
    store = Store(tmp_path / "m.db")
    m = Mention(source="hackernews", native_id="1", brand="Acme", text="acme cloud is terrible",
                created_at=datetime.now(UTC), author=Author("hackernews", "u"))
    store.save_batch("Acme:hackernews", "acme", FetchResult([m], "c"))
    engine = AlertEngine.from_settings(settings.alerts, store)
    assert pipeline.classify_pending(store, KeywordClassifier(), engine=engine) == 1
    store.close()


# --------------------------------------------------------------------------- 7. durations


@pytest.mark.parametrize(("body", "key", "message"), [
    (HEAD + "classify_every: 99999999999d\n", "classify_every", "at most 10 years"),
    (HEAD + "classify_every: .inf\n", "classify_every", "at most 10 years"),
    (HEAD + "classify_every: .nan\n", "classify_every", "positive"),
    (HEAD + "classify_every: 0.0000001s\n", "classify_every", "at least 1 second"),
    (HEAD + "classify_every: 0.5\n", "classify_every", "at least 1 second"),
    (HEAD + "classify_every: 3654d\n", "classify_every", "at most 10 years"),
    (HEAD + "advocates: {recency_half_life: 999999999999999999999999d}\n", "advocates.recency_half_life",
     "at most 10 years"),
    (HEAD + "alerts: {backoff_base: 1.0e+308}\n", "alerts.backoff_base", "at most 10 years"),
    (HEAD + "    sources: [{type: hackernews, every: 99999999999d}]\n", "brands[0].sources[0].every",
     "at most 10 years"),
    (HEAD + "http: {deadline: .inf}\n", "http.deadline", "finite"),
    (HEAD + "advocates: {weights: {stance: .inf}}\n", "advocates.weights.stance", "finite"),
])
def test_durations_and_numbers_are_finite_and_within_bounds(tmp_path, body, key, message):
    text = problems(tmp_path, body)
    assert f": {key}: " in text and message in text, text


def test_the_duration_bounds_themselves():
    assert parse_duration("1s") == timedelta(seconds=1)
    assert parse_duration("3653d") == timedelta(days=3653)
    assert parse_duration(timedelta(minutes=5)) == timedelta(minutes=5)
    for bad in ("0.9s", "3654d", float("inf"), float("nan"), 10**400, "9" * 400 + "d", True, None, [1]):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_the_longest_backoff_at_the_most_attempts_does_not_overflow(tmp_path):
    settings = load(tmp_path, HEAD + "alerts: {max_attempts: 100, backoff_base: 3653d, backoff_max: 3653d}\n")
    policy = RetryPolicy.from_settings(settings.alerts)
    assert policy.delay(99) <= timedelta(days=3653) * 1.2
    assert RetryPolicy(max_attempts=100, rng=lambda: 0.5).delay(99) == timedelta(hours=1)


@pytest.fixture
def cli_config(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(f"database: {tmp_path / 'm.db'}\n" + rule("{sentiment: negative}"), encoding="utf-8")
    Store(tmp_path / "m.db").close()
    return path


@pytest.mark.parametrize(("command", "since", "message"), [
    (["mentions"], "1000000d", "at most 10 years"),
    (["alerts", "test", "r"], "1000000d", "at most 10 years"),
    (["alerts", "backtest"], "99999999999999w", "at most 10 years"),
    (["mentions"], "0.001s", "at least 1 second"),
    (["mentions"], "0001-01-01T00:00+14:00", "out of the range of dates"),
])
def test_since_out_of_range_is_a_usage_error(cli_config, command, since, message):
    result = CliRunner().invoke(main, ["-c", str(cli_config), *command, "--since", since])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not isinstance(result.exception, OverflowError)


# ------------------------------------------------------------------------------ 8. YAML


BOMB = """\
a: &a [x, x, x, x, x, x, x, x, x, x]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
"""


@pytest.mark.parametrize(("body", "expected"), [
    ("a: &a [*a]\n", ["line 1, column 8", "alias *a refers to a node that contains it"]),
    (HEAD + "alerts: &x\n  rules:\n    - {name: r, channels: [console], when: *x}\n",
     ["line 6", "alias *x refers to a node that contains it"]),
    (BOMB, ["alias bomb"]),
    ("x: " + "[" * 500 + "]" * 500 + "\n", ["nested more than"]),
    ("a: &a [[[[[[[[[[x]]]]]]]]]]\nb: &b [[[[[[[[[[*a]]]]]]]]]]\nc: &c [[[[[[[[[[*b]]]]]]]]]]\n"
     "d: &d [[[[[[[[[[*c]]]]]]]]]]\ne: [[[[[[[[[[*d]]]]]]]]]]\n", ["levels deep once aliases are expanded"]),
    (HEAD.replace("brands:", "database: a.db\nlog_level: INFO\ndatabase: b.db\nbrands:"),
     ["line 3, column 1", "duplicate key 'database' (first at line 1)"]),
    (HEAD + "    terms: {include: [other]}\n", ["line 4", "duplicate key 'terms' (first at line 3)"]),
    (HEAD + "x: 2026-02-30\n", ["line 4", "cannot read this value"]),
    (HEAD + "x: " + "9" * 5000 + "\n", ["line 4", "cannot read this value"]),
])
def test_hostile_yaml_is_refused_with_its_line(tmp_path, body, expected):
    text = problems(tmp_path, body)
    for fragment in expected:
        assert fragment in text, text


def test_anchors_and_merge_keys_within_the_budget_still_work(tmp_path):
    settings = load(tmp_path, """\
brands:
  - name: Acme
    terms: &terms {include: [acme], exclude: [roadrunner]}
    sources:
      - &hn {type: hackernews, every: 10m}
      - <<: *hn
        name: hn-slow
        every: 1h
  - name: Acme Cloud
    terms: *terms
""")
    assert settings.brands[1].terms == settings.brands[0].terms
    assert [s.every for s in settings.brands[0].sources] == [timedelta(minutes=10), timedelta(hours=1)]


@pytest.mark.parametrize(("snippet", "key"), [
    ("    sources: [{type: hackernews, base_url: 'https://exa mple.com'}]\n", "brands[0].sources[0].base_url"),
    ("    sources: [{type: hackernews, base_url: 'https://'}]\n", "brands[0].sources[0].base_url"),
    ("    sources: [{type: hackernews, base_url: 'ftp://example.com'}]\n", "brands[0].sources[0].base_url"),
    ("    sources: [{type: hackernews, base_url: 'https://example.com:99999/'}]\n", "brands[0].sources[0].base_url"),
    ("    sources: [{type: hackernews, base_url: 'https://exa..mple.com'}]\n", "brands[0].sources[0].base_url"),
    ("    sources: [{type: feed, urls: ['https://ok.example/rss', 'https://[::1/x']}]\n",
     "brands[0].sources[0].urls[1]"),
    ("    sources: [{type: mastodon, instance: 'https://mastodon .social'}]\n", "brands[0].sources[0].instance"),
    ("alerts: {web_base_url: 'https://mon\titor.example'}\n", "alerts.web_base_url"),
    ("web: {public_url: 'monitor.example.com'}\n", "web.public_url"),
])
def test_urls_must_parse(tmp_path, snippet, key):
    assert f": {key}: " in problems(tmp_path, HEAD + snippet)


def test_a_webhook_url_from_the_environment_must_parse_and_is_not_echoed(tmp_path):
    body = HEAD + "alerts:\n  channels:\n    hook: {type: webhook, url: '${HOOK}'}\n"
    text = problems(tmp_path, body, env={"HOOK": "https://hooks.exa mple/T0KEN-canary"})
    assert "alerts.channels.hook.url" in text and "T0KEN-canary" not in text
    assert load(tmp_path, body, env={"HOOK": "https://[::1]:8080/hook"}).alerts.channels["hook"].url


def test_good_urls_pass_and_base_urls_lose_their_trailing_slash(tmp_path):
    settings = load(tmp_path, HEAD + "    sources: [{type: hackernews, base_url: 'http://127.0.0.1:8080/api/'}]\n"
                    "alerts: {web_base_url: 'https://xn--mnchen-3ya.example/monitor/'}\n")
    assert settings.brands[0].sources[0].base_url == "http://127.0.0.1:8080/api"
    assert settings.alerts.web_base_url == "https://xn--mnchen-3ya.example/monitor"


# ------------------------------------------------------------------ 9. key paths and lines


@pytest.mark.parametrize(("channels", "expected"), [
    ("    console: {type: console, min_severity: loud}\n", "line 6: alerts.channels.console.min_severity"),
    ("    console:\n      type: console\n      min_severity: loud\n", "line 8: alerts.channels.console.min_severity"),
    ("    webhook: {type: console, min_severity: loud}\n", "line 6: alerts.channels.webhook.min_severity"),
    ("    email:\n      type: email\n      host: h\n      sender: a@b.c\n      to: nobody\n",
     "line 10: alerts.channels.email.to: "),
    ("    console:\n      type: console\n      min_severty: info\n",
     "line 8: alerts.channels.console.min_severty: unknown key (did you mean 'min_severity'?)"),
    ("    chat:\n      type: apprise\n      url: '${X}'\n      quiet_hourz: {}\n",
     "line 9: alerts.channels.chat.quiet_hourz: unknown key (did you mean 'quiet_hours'?)"),
])
def test_a_channel_keeps_its_name_in_the_key_path(tmp_path, channels, expected):
    text = problems(tmp_path, HEAD + "alerts:\n  channels:\n" + channels, env={"X": "json://localhost"})
    assert expected in text, text


def test_a_window_condition_and_a_source_keep_their_paths(tmp_path):
    body = HEAD + ("    sources:\n      - type: feed\n        preset: google_news\n        every: 0s\n"
                   "alerts:\n  rules:\n    - name: spike\n      channels: [console]\n"
                   "      window: {kind: volume_spike, windw: 1h}\n")
    text = problems(tmp_path, body)
    assert "line 7: brands[0].sources[0].every: a duration must be positive" in text
    assert "line 12: alerts.rules[0].window.windw: unknown key (did you mean 'window'?)" in text


def test_a_single_value_written_for_a_list_is_reported_at_its_own_key(tmp_path):
    text = problems(tmp_path, rule("{sentiment: happy}"))
    assert "line 7: alerts.rules[0].when.sentiment: Input should be" in text, text
    text = problems(tmp_path, rule("{sentiment: [negative, happy]}"))
    assert "line 7: alerts.rules[0].when.sentiment[1]: Input should be" in text, text
