"""Every channel against a real local receiver: one contract, plus per-channel escaping."""

from __future__ import annotations

import email
import email.policy
import io
import json
import re
from datetime import UTC, datetime

import pytest
import requests
from alert_fakes import free_port
from hypothesis import given
from hypothesis import strategies as st

from monitor.alerts.channels import (
    ZWSP,
    AppriseChannel,
    ConsoleChannel,
    EmailChannel,
    WebhookChannel,
    header_safe,
    idempotency_key,
    neutralise_mentions,
)
from monitor.errors import DeliveryError
from monitor.records import Alert
from tests.fakes.drip import dripped_body
from tests.fakes.sources import FixtureServer, Reply

NASTY = Alert(
    rule="neg", key="neg:mention:42", severity="critical",
    title="[Acme] bad\r\nBcc: victim@example.com <!channel> @everyone",
    body="I hate Acme <!channel> & <https://evil.example|click here> @everyone @here <@123456> <@&987>",
    brand="Acme", mention_ids=(42,), created_at=datetime(2026, 11, 2, 12, 0, tzinfo=UTC), data={"kind": "mention"},
    id=7,
)


def webhook(receiver, smtp):
    return WebhookChannel("hook", receiver.url, timeout=2), lambda: [json.loads(r["body"])["text"]
                                                                    for r in receiver.requests]


def apprise_json(receiver, smtp):
    url = f"json://127.0.0.1:{receiver.port}/apprise"
    return AppriseChannel("apprise", url), lambda: [json.loads(r["body"])["message"] for r in receiver.requests]


def smtp_mail(receiver, smtp):
    ch = EmailChannel("mail", host="127.0.0.1", port=smtp.port, security="none", sender="monitor@example.org",
                      to=["team@example.org"], timeout=5)
    return ch, lambda: [email.message_from_bytes(m["data"], policy=email.policy.default).get_content()
                        for m in smtp.messages]


def console(receiver, smtp):
    out = io.StringIO()
    return ConsoleChannel("console", stream=out), lambda: [out.getvalue()] if out.getvalue() else []


CHANNELS = [webhook, apprise_json, smtp_mail, console]


@pytest.mark.parametrize("make", CHANNELS, ids=lambda f: f.__name__)
def test_channel_contract_delivers_the_text(make, receiver, smtp):
    channel, received = make(receiver, smtp)
    channel.send(NASTY)
    (text,) = received()
    assert "I hate Acme" in text


@pytest.mark.parametrize("make", [webhook, apprise_json, smtp_mail], ids=lambda f: f.__name__)
def test_channel_contract_unreachable_is_a_delivery_error(make, receiver, smtp):
    receiver.port = smtp.port = free_port()  # nothing listens there
    receiver.url = f"http://127.0.0.1:{receiver.port}/hook"
    channel, _ = make(receiver, smtp)
    with pytest.raises(DeliveryError) as info:
        channel.send(NASTY)
    assert not info.value.permanent


def test_webhook_payload_and_idempotency_header(receiver):
    WebhookChannel("hook", receiver.url, signing_secret="s3cret-key").send(NASTY)
    (req,) = receiver.requests
    body = json.loads(req["body"])
    assert req["headers"]["Idempotency-Key"] == body["idempotency_key"] == idempotency_key(NASTY)
    assert body["alert_key"] == "neg:mention:42" and body["severity"] == "critical" and body["text"] == NASTY.body
    assert req["headers"]["webhook-signature"].startswith("v1,")


@pytest.mark.parametrize(("mode", "permanent", "retry_after"), [("500", False, None), ("429:7", False, 7.0),
                                                                 ("400", True, None), ("404", True, None)])
def test_webhook_status_classes(receiver, mode, permanent, retry_after):
    receiver.plan = [mode]
    with pytest.raises(DeliveryError) as info:
        WebhookChannel("hook", receiver.url).send(NASTY)
    assert info.value.permanent is permanent and info.value.retry_after == retry_after
    assert "127.0.0.1" not in str(info.value)  # the URL (a secret) never goes into the error


def test_webhook_hang_is_a_retryable_timeout(receiver):
    receiver.plan = ["hang"]
    with pytest.raises(DeliveryError, match="timed out") as info:
        WebhookChannel("hook", receiver.url, timeout=0.3).send(NASTY)
    assert not info.value.permanent


def test_email_headers_cannot_be_injected_and_message_id_is_stable(smtp):
    ch = EmailChannel("mail", host="127.0.0.1", port=smtp.port, security="none", sender="monitor@example.org",
                      to=["team@example.org"])
    ch.send(NASTY)
    ch.send(NASTY)  # a retry
    first, second = (email.message_from_bytes(m["data"], policy=email.policy.default) for m in smtp.messages)
    assert "\n" not in first["Subject"] and "\r" not in first["Subject"]
    assert first["Bcc"] is None and smtp.messages[0]["to"] == ["team@example.org"]
    assert first["Message-ID"] == second["Message-ID"] == f"<{idempotency_key(NASTY)}@example.org>"


class FakeResponse:
    status_code = 200
    content = b"ok"
    text = "ok"
    headers: dict = {}

    def json(self):
        return {}


@pytest.fixture
def captured(monkeypatch):
    """What Apprise would POST to Slack or Discord (their hosts are not reachable from tests)."""
    calls = []

    def fake_request(method, url, **kw):
        calls.append({"url": url, **kw})
        r = FakeResponse()
        r.status_code = 204 if "discord" in url else 200
        return r

    monkeypatch.setattr(requests, "request", fake_request)
    monkeypatch.setattr(requests, "post", lambda url, **kw: fake_request("POST", url, **kw))
    return calls


def test_slack_through_apprise_cannot_ping_or_disguise_links(captured):
    AppriseChannel("slack", "slack://T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ/#alerts").send(NASTY)
    assert captured
    sent = json.dumps([c.get("data") or c.get("json") for c in captured])
    assert "<!channel>" not in sent and "<https://evil" not in sent
    assert "&lt;!channel&gt;" in sent


def test_discord_through_apprise_cannot_mass_ping(captured):
    AppriseChannel("discord", "discord://123456789/abcdefghijkl").send(NASTY)
    assert captured
    payloads = [json.loads(c["data"]) if isinstance(c.get("data"), str | bytes) else c.get("json")
                for c in captured]
    text = json.dumps(payloads, ensure_ascii=False)
    assert "@everyone" not in text and "@here" not in text and "<@123456>" not in text
    for p in payloads:
        assert not (p.get("allowed_mentions") or p.get("allow_mentions") or {}).get("parse")


def test_escaping_helpers():
    out = neutralise_mentions("hi @everyone and @Here <@!42> @channel @all, mail me at a@example.org")
    assert "@everyone" not in out and "@Here" not in out and "<@!42>" not in out and "@channel" not in out
    assert "a@example.org" in out
    assert header_safe("a\r\nBcc: x\x00y\u2028z") == "a Bcc: x y z"


@given(st.text())
def test_no_ping_survives_neutralising(text):
    out = neutralise_mentions(text)
    assert not re.search(r"@(everyone|here|channel|all)\b|<@[!&]?\d+>", out, re.IGNORECASE)
    assert out.replace(ZWSP, "") == text.replace(ZWSP, "")  # nothing else changes


@given(st.text())
def test_headers_are_one_line(text):
    out = header_safe(text)
    assert "\r" not in out and "\n" not in out and len(out) <= 200


def test_webhook_whose_answer_trickles_in_ends_at_its_timeout():
    """A 200 whose body comes a byte at a time (each within the read timeout) held the
    sender 60 s despite a 5 s timeout: the timeout now bounds the whole exchange."""
    with dripped_body(interval=0.1) as drip:
        with pytest.raises(DeliveryError, match="timed out") as info:
            WebhookChannel("hook", f"{drip.url}/hook", timeout=1).send(NASTY)
        assert drip.client_left.wait(2), "the sender held on until the receiver gave up"
    assert not info.value.permanent


@pytest.mark.parametrize("kind", ["webhook", "apprise"])
def test_channels_do_not_follow_a_redirect(kind, receiver):
    """A receiver answering 307 to an internal address gets no second request there
    (Apprise followed it)."""
    with FixtureServer() as internal, FixtureServer() as bouncer:
        bouncer.routes["/hook"] = Reply(307, headers={"Location": f"{internal.url}/admin"})
        internal.routes["/admin"] = Reply(body=b"{}")
        if kind == "webhook":
            channel = WebhookChannel("hook", f"{bouncer.url}/hook", timeout=2)
        else:
            channel = AppriseChannel("apprise", f"json://{bouncer.url.removeprefix('http://')}/hook", timeout=2)
        with pytest.raises(DeliveryError):
            channel.send(NASTY)
        assert [s.path for s in bouncer.seen] == ["/hook"]
        assert internal.seen == []
