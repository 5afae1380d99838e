"""Alert settings: validation with key paths and lines, secrets only from ${ENV}, never echoed."""

from __future__ import annotations

import textwrap

import pytest

from monitor.config import load_settings
from monitor.errors import ConfigError

HEAD = """
brands:
  - name: Acme
    terms: {include: [acme]}
alerts:
"""


def problems(tmp_path, alerts: str, env=None) -> list[str]:
    path = tmp_path / "config.yaml"
    path.write_text(HEAD + textwrap.indent(textwrap.dedent(alerts), "  "))
    with pytest.raises(ConfigError) as info:
        load_settings(path, env=env or {})
    return info.value.problems


def test_a_full_alert_section_loads(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(HEAD + textwrap.indent(textwrap.dedent("""
        web_base_url: https://monitor.example.com/
        channels:
          hook: {type: webhook, url: "${HOOK}", signing_secret: "${HOOK_KEY}"}
          chat: {type: apprise, url: "${CHAT}", min_severity: warning,
                 quiet_hours: {start: "22:00", end: "07:00", timezone: Europe/Berlin}}
          mail: {type: email, host: smtp.example.com, sender: m@example.com, to: t@example.com,
                 username: m, password: "${SMTP_PW}"}
        rules:
          - name: neg
            when: {sentiment: [negative], min_sentiment_probability: 0.7, terms: ['"acme cloud"'], languages: [en]}
            cooldown: 30m
            cooldown_by: [brand, author]
            digest: {immediate: 2, every: 1h}
            channels: [hook, chat, mail]
          - name: spike
            window: {kind: volume_spike, window: 30m, baseline: 3d}
            channels: [hook]
    """), "  "))
    s = load_settings(path, env={"HOOK": "https://h.example/x", "HOOK_KEY": "k", "CHAT": "slack://a/b/c",
                                 "SMTP_PW": "pw"})
    assert s.alerts.web_base_url == "https://monitor.example.com"
    assert s.alerts.channels["mail"].to == ["t@example.com"]
    assert s.alerts.rules[1].window.kind == "volume_spike"
    assert s.alerts.channels_for() == {"neg": ["hook", "chat", "mail"], "spike": ["hook"]}


def test_errors_name_key_path_and_line(tmp_path):
    found = problems(tmp_path, """
        channels:
          c: {type: console}
        rules:
          - name: r
            when: {sentimnt: negative}
            window: {kind: volume_spike, baseline: soon}
            channels: [c, nope]
          - name: s
            group: {wait: 5m}
            digest: {immediate: 1}
            channels: [c]
    """)
    text = "\n".join(found)
    assert "line 11: alerts.rules[0].when.sentimnt: unknown key (did you mean 'sentiment'?)" in text
    ratings = "\n".join(problems(tmp_path, """
        channels: {c: {type: console}}
        rules: [{name: r, when: {min_rating: 4, max_rating: 2}, channels: [c]}]
    """))
    assert "alerts.rules[0].when: min_rating is above max_rating" in ratings
    assert "alerts.rules[0].window.baseline: 'soon' is not a duration" in text
    assert "alerts.rules[1]: use either 'group' or 'digest', not both" in text


def test_unknown_channel_and_window_kind(tmp_path):
    text = "\n".join(problems(tmp_path, """
        channels:
          c: {type: consol}
        rules:
          - name: r
            window: {kind: spike}
            channels: [c]
    """))
    assert "alerts.channels.c: unknown type 'consol'" in text
    assert "alerts.rules[0].window: unknown type 'spike'" in text


def test_secrets_must_come_from_env_and_are_never_echoed(tmp_path):
    text = "\n".join(problems(tmp_path, """
        channels:
          hook: {type: webhook, url: "https://hooks.example/canary-literal-1f2e"}
          mail: {type: email, host: h, sender: a@b.c, to: [d@e.f], password: "${PW}"}
          bad: {type: webhook, url: "${NOT_A_URL}"}
    """, env={"NOT_A_URL": "canary-env-value-9a8b"}))
    assert "alerts.channels.hook.url: secrets must be written as an ${ENV_VAR} reference" in text
    assert "alerts.channels.mail.password: environment variable PW is not set" in text
    assert "alerts.channels.bad.url: must be an http:// or https:// URL" in text
    assert "canary-literal-1f2e" not in text and "canary-env-value-9a8b" not in text


def test_email_addresses_cannot_carry_headers(tmp_path):
    text = "\n".join(problems(tmp_path, """
        channels:
          mail: {type: email, host: h, sender: "a@b.c\\nBcc: x@y.z", to: [d@e.f]}
    """))
    assert "alerts.channels.mail.sender" in text


def test_quiet_hours_and_window_cooldown_checked(tmp_path):
    text = "\n".join(problems(tmp_path, """
        channels:
          c: {type: console, quiet_hours: {start: "25:00", end: "07:00", timezone: Mars/Base}}
        rules:
          - name: r
            window: {kind: source_silent}
            cooldown_by: author
            channels: [c]
    """))
    assert "alerts.channels.c.quiet_hours.start" in text
    assert "unknown time zone 'Mars/Base'" in text
    assert "cooldown_by can name only rule and brand" in text
