"""Property tests of the config loader: random YAML-ish text, random structures and damaged
valid configs. ``load_settings`` returns Settings or raises ConfigError, never anything
else (no OverflowError, RecursionError, ValidationError, MemoryError...), and a problem in a
well-formed document names a key path that is in the document (or, for a missing key, whose
parent is)."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from monitor.config import Settings, load_settings
from monitor.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
ENV = {"X": "https://hooks.example/x", "SECRET": "s3cret-value", "SLACK": "slack://a/b/c", "SPACE": "https://a b/"}

RICH = """\
database: monitor.db
brands:
  - name: Acme
    terms: {include: [acme, '"acme cloud"'], exclude: [roadrunner]}
    sources:
      - {type: hackernews, every: 10m, base_url: 'https://hn.example/api/'}
      - {type: reddit, client_id: '${SECRET}', client_secret: '${SECRET}', subreddits: [acme], watch: [comments]}
      - {type: feed, name: news, preset: google_news}
      - {type: feed, urls: ['https://acme.example/feed.rss']}
      - {type: appstore, app_ids: [1234567890], countries: [us, gb]}
      - {type: bluesky, handle: bot.bsky.social, app_password: '${SECRET}'}
      - {type: mastodon, instance: 'https://fosstodon.org', hashtags: [acme], search: true, token: '${SECRET}'}
http: {allow_networks: [10.0.0.0/8], per_host_interval: 1.0, deadline: 30}
health: {channels: [console]}
classifier: {engine: onnx, languages: [en]}
alerts:
  web_base_url: https://monitor.example/
  backoff_base: 5s
  channels:
    console: {type: console}
    webhook: {type: webhook, url: '${X}', signing_secret: '${SECRET}', timeout: 5s}
    chat: {type: apprise, url: '${SLACK}', quiet_hours: {start: '22:00', end: '07:00', timezone: Europe/Berlin}}
    mail: {type: email, host: smtp.example, sender: m@example.com, to: [t@example.com], password: '${SECRET}'}
  rules:
    - name: neg
      when: {sentiment: negative, terms: ['"acme cloud"'], exclude_terms: [test], min_reach: 10}
      channels: [console, webhook]
      digest: {immediate: 2, every: 1h}
    - name: spike
      window: {kind: volume_spike, window: 1h, baseline: 7d}
      channels: [chat]
    - name: silent
      window: {kind: source_silent, after: 6h}
      group: null
      channels: [mail]
advocates: {recency_half_life: 60d, weights: {stance: 40}}
web: {allowed_hosts: [localhost], public_url: 'https://monitor.example'}
"""

BASES = [yaml.safe_load(RICH), yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))]

HOSTILE = ["99999999999d", "0.0000001s", "1000000w", "-5", "0", "soon", '" "', '""', "'", "  ", "${NOPE}", "${X}",
           "a${X}", "https://exa mple.com", "https://", "ftp://x.example", "http://x:99999", "console", "webhook",
           "volume_spike", "2026-02-30", "\ud800", "a\x00b", "9" * 5000, "Europe/" + "x" * 300, "::1", "10.0.0.0/33"]
scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(10**40), max_value=10**40),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20), st.sampled_from(HOSTILE))
keys = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12) | st.sampled_from(
    ["type", "kind", "name", "every", "terms", "url", "console", "channels", "rules", "when", "window"])
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(keys, inner, max_size=4)), max_leaves=12)


def doc_paths(node, path="") -> set[str]:
    """Every key path of a document, written as the loader writes them."""
    found = {path} if path else set()
    if isinstance(node, dict):
        for k, v in node.items():
            found |= doc_paths(v, f"{path}.{k}" if path else str(k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found |= doc_paths(v, f"{path}[{i}]")
    return found


def _containers(node, trail=()):
    yield trail, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _containers(v, (*trail, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _containers(v, (*trail, i))


def mutate(doc, data) -> object:
    doc = copy.deepcopy(doc)
    for _ in range(data.draw(st.integers(min_value=1, max_value=4), label="mutations")):
        spots = [(t, n) for t, n in _containers(doc) if isinstance(n, dict | list) and n]
        if not spots:
            break
        _, node = data.draw(st.sampled_from(spots), label="where")
        key = data.draw(st.sampled_from(list(node) if isinstance(node, dict) else list(range(len(node)))), label="key")
        action = data.draw(st.sampled_from(["replace", "hostile", "delete", "add", "rename"]), label="action")
        if action == "replace":
            node[key] = data.draw(values, label="value")
        elif action == "hostile":
            node[key] = data.draw(st.sampled_from(HOSTILE) | scalars, label="value")
        elif action == "delete":
            del node[key]
        elif action == "add" and isinstance(node, dict):
            node[data.draw(keys, label="new key")] = data.draw(values, label="value")
        elif action == "rename" and isinstance(node, dict):
            new = data.draw(keys, label="new name")
            node[new] = node.pop(key)
    return doc


def dump(doc) -> str:
    return yaml.safe_dump(doc, allow_unicode=False, sort_keys=False, width=10_000)


def load(tmp: Path, text: str) -> Settings | ConfigError:
    path = tmp / "config.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    try:
        return load_settings(path, env=ENV)
    except ConfigError as exc:  # anything else fails the test
        assert exc.problems
        for problem in exc.problems:
            assert problem.startswith(f"{path}: "), problem
        return exc


def assert_paths_exist(result, doc) -> None:
    """Each problem of a well-formed document names a key path of the document."""
    if not isinstance(result, ConfigError):
        return
    known = doc_paths(doc)
    for problem in result.problems:
        rest = re.sub(r"^line \d+: ", "", problem.split(": ", 1)[1])
        if rest.startswith("the top level must be a mapping"):
            assert not isinstance(doc, dict)
            continue
        key, message = rest.split(": ", 1)
        if key == "(top level)":
            continue
        parent = re.sub(r"(\.[^.\[]+|\[\d+\])$", "", key)
        assert key in known or (message == "required key is missing" and (parent in known or "." not in key)), \
            (problem, sorted(known))


FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                         HealthCheck.too_slow])


@pytest.fixture(scope="module")
def tmp(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("config-fuzz")


@FUZZ
@given(data=st.data())
def test_damaged_valid_configs_give_settings_or_config_errors_with_real_key_paths(tmp, data):
    doc = mutate(data.draw(st.sampled_from(BASES), label="base"), data)
    try:
        text = dump(doc)
    except (yaml.YAMLError, UnicodeEncodeError):
        return  # not expressible as YAML (a lone surrogate)
    assert_paths_exist(load(tmp, text), doc)


@FUZZ
@given(doc=values)
def test_random_structures_give_settings_or_config_errors(tmp, doc):
    try:
        text = dump(doc)
    except (yaml.YAMLError, UnicodeEncodeError):
        return
    assert_paths_exist(load(tmp, text), doc)


TOKENS = [":", ": ", "-", "- ", "[", "]", "{", "}", ",", "&a ", "&b ", "*a", "*b", "<<: ", "!!str ", "!!int ",
          "!!float ", "!!binary ", "!!timestamp ", "!!python/object:os.system ", "? ", "|", ">", "'", '"', "#", "%",
          "@", "`", "\n", "\n  ", "\n    ", "\t", " ", "~", "null", "true", ".inf", ".nan", "1e3", "0x1f", "0o7",
          "12:30:00", "2026-02-30", "9" * 400, "brands", "alerts", "channels", "console", "type", "rules", "terms",
          "include", "acme", "every", "10m", "${X}", "\\u0000", "\u2028", "\ufeff", "---\n", "...\n"]


@FUZZ
@given(parts=st.lists(st.sampled_from(TOKENS) | st.text(max_size=3), max_size=60))
def test_random_yaml_ish_text_gives_settings_or_config_errors(tmp, parts):
    load(tmp, "".join(parts))


LINES = ["a: &a [*a]", "x: &x {y: *x}", "database: other.db", "brands: []", "  - name: Acme", "    terms: *t",
         "<<: {database: m.db}", "alerts: &al", "    every: 99999999999d", "      type: console", "a: " + "[" * 60,
         "- &l [*l]", "b: &b [*b, *b]", "\t", "x: !!binary '@@@'", "x: !!float 'abc'"]


@FUZZ
@given(data=st.data())
def test_edited_config_text_gives_settings_or_config_errors(tmp, data):
    lines = dump(data.draw(st.sampled_from(BASES), label="base")).splitlines()
    for _ in range(data.draw(st.integers(min_value=1, max_value=5), label="edits")):
        i = data.draw(st.integers(min_value=0, max_value=len(lines)), label="line")
        edit = data.draw(st.sampled_from(["insert", "duplicate", "delete", "splice"]), label="edit")
        if edit == "insert":
            lines.insert(i, data.draw(st.sampled_from(LINES) | st.sampled_from(TOKENS), label="text"))
        elif edit == "duplicate" and i < len(lines):
            lines.insert(i, lines[i])
        elif edit == "delete" and i < len(lines):
            del lines[i]
        elif edit == "splice" and i < len(lines):
            at = data.draw(st.integers(min_value=0, max_value=len(lines[i])), label="column")
            lines[i] = lines[i][:at] + data.draw(st.sampled_from(TOKENS), label="token") + lines[i][at:]
    load(tmp, "\n".join(lines) + "\n")


def test_the_bases_themselves_load(tmp):
    for base in BASES:
        assert isinstance(load(tmp, dump(base)), Settings)
