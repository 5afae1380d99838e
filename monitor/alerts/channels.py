"""Alert channels. Contract: ``send(alert)`` returns on success and raises
DeliveryError on failure (``permanent=True`` when retrying cannot help, ``retry_after``
when the receiver said when to come back). Untrusted text is escaped per channel;
secrets (webhook URLs, passwords) never go into an error message or a log line.

Each channel bounds its own send: ``deadline`` is the most seconds one send may take
(connect, request and answer together; the outbox gives up on a send at that point
too), and no channel follows redirects: a receiver that answers 3xx gets no second
request to wherever it points (an internal address, say)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import smtplib
import ssl
import sys
import time
from collections.abc import Callable
from email.message import EmailMessage
from email.utils import format_datetime
from typing import TYPE_CHECKING, Any, Protocol, TextIO

from monitor.errors import DeliveryError
from monitor.records import Alert
from monitor.settings_handoff import HANDOFF_PREFIX

if TYPE_CHECKING:
    from pydantic import SecretStr

    from monitor.config import Settings
    from monitor.http_client import HttpClient
    from monitor.settings_alerts import QuietHours

logger = logging.getLogger(__name__)

_HEADER_UNSAFE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")
_MASS_PING = re.compile(r"@(everyone|here|channel|all)\b|<@([!&]?\d+)>", re.IGNORECASE)
ZWSP = "\u200b"


class Channel(Protocol):
    name: str

    def send(self, alert: Alert) -> None: ...


# ----------------------------------------------------------------------------- escaping


def neutralise_mentions(text: str) -> str:
    """@everyone, @here, @channel, @all and <@id> user/role pings (Discord, Mattermost,
    Rocket.Chat...) become inert text: a zero-width space after the @."""
    return _MASS_PING.sub(lambda m: m.group(0).replace("@", "@" + ZWSP, 1), text)


def header_safe(text: str, limit: int = 200) -> str:
    """One line for an e-mail subject or any header: CR, LF and control characters removed."""
    return _HEADER_UNSAFE.sub(" ", text).strip()[:limit]


def idempotency_key(alert: Alert) -> str:
    """Stable across retries and restarts: derived from the alert's unique key."""
    return "alrt_" + hashlib.sha256(alert.key.encode("utf-8")).hexdigest()[:32]


def payload(alert: Alert) -> dict[str, Any]:
    """The generic JSON webhook body (also what the console and tests read)."""
    return {
        "idempotency_key": idempotency_key(alert), "alert_key": alert.key, "alert_id": alert.id, "rule": alert.rule,
        "severity": alert.severity, "brand": alert.brand, "title": alert.title, "text": alert.body,
        "created_at": alert.created_at.isoformat(), "mention_ids": list(alert.mention_ids), "data": alert.data,
    }


def sign(secret: str, msg_id: str, timestamp: str, body: bytes) -> str:
    """The ``webhook-signature`` header (Standard Webhooks' scheme): ``v1,`` and the base64 of
    HMAC-SHA256 over ``{webhook-id}.{webhook-timestamp}.{body}``, keyed with the secret's
    UTF-8 bytes as configured."""
    mac = hmac.new(secret.encode("utf-8"), f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


# ----------------------------------------------------------------------------- channels


DEFAULT_DEADLINE = 30.0  # seconds, for a channel that names no timeout


class _Base:
    deadline = DEFAULT_DEADLINE

    def __init__(self, name: str, *, quiet_hours: QuietHours | None = None, min_severity: str = "info") -> None:
        self.name = name
        self.quiet_hours = quiet_hours
        self.min_severity = min_severity


class ConsoleChannel(_Base):
    """Prints alerts to a stream (stdout by default): the daemon's log or the terminal."""

    def __init__(self, name: str = "console", stream: TextIO | None = None, **kw: Any) -> None:
        super().__init__(name, **kw)
        self.stream = stream

    def send(self, alert: Alert) -> None:
        out = self.stream or sys.stdout
        bar = "=" * 72
        out.write(f"{bar}\nALERT [{alert.severity}] {header_safe(alert.title)}\n{alert.body}\n{bar}\n")
        out.flush()


def _http_client(timeout: float) -> HttpClient:
    from monitor.http_client import HttpClient, HttpPolicy

    # guard=False: alert receivers are written by the operator and are often internal (a chat
    # server on the LAN); the SSRF guard is for the URLs sources fetch. ``deadline``: the whole
    # exchange, so a 200 whose body trickles in cannot hold the sender past ``timeout``.
    return HttpClient(HttpPolicy(connect_timeout=min(5.0, timeout), read_timeout=timeout, deadline=timeout,
                                 retries=0, max_bytes=1024 * 1024, guard=False))


class WebhookChannel(_Base):
    """POSTs ``payload(alert)`` as JSON with an ``Idempotency-Key`` header (and, with a
    signing secret, Standard Webhooks ``webhook-id/timestamp/signature`` headers).
    ``timeout`` bounds the whole exchange; ``client``: an ``http_client.HttpClient``."""

    def __init__(self, name: str, url: str, *, signing_secret: str | None = None, timeout: float = 10.0,
                 client: HttpClient | None = None, **kw: Any) -> None:
        super().__init__(name, **kw)
        self._url = url
        self._secret = signing_secret
        self._timeout = timeout
        self.deadline = timeout + 1.0  # the client's own deadline ends the send first, with a clearer error
        self._client = client or _http_client(timeout)

    def content(self, alert: Alert) -> tuple[bytes, str]:
        """The body to POST and its idempotency key (also the ``webhook-id``)."""
        return json.dumps(payload(alert), ensure_ascii=False, default=str).encode("utf-8"), idempotency_key(alert)

    def send(self, alert: Alert) -> None:
        import httpx

        from monitor.errors import SourceError
        from monitor.http_client import RequestStopped, parse_retry_after

        body, key = self.content(alert)
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        if self._secret:
            ts = str(int(time.time()))
            headers |= {"webhook-id": key, "webhook-timestamp": ts,
                        "webhook-signature": sign(self._secret, key, ts, body)}
        try:
            status, answer_headers, _ = self._client.send("POST", self._url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise DeliveryError(f"webhook timed out ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:  # never str(exc): it may carry the URL
            raise DeliveryError(f"webhook unreachable ({type(exc).__name__})") from None
        except RequestStopped:
            raise DeliveryError("webhook: the send was cut short by shutdown") from None
        except SourceError:  # the total deadline, or an answer over the size cap; its text names the URL
            raise DeliveryError(f"webhook timed out (no complete answer within {self._timeout:g}s)") from None
        if 200 <= status < 300:
            return
        if status in (408, 425, 429) or status >= 500:
            raise DeliveryError(f"webhook answered HTTP {status}",
                                retry_after=parse_retry_after(answer_headers.get("retry-after")))
        if 300 <= status < 400:
            raise DeliveryError(f"webhook answered HTTP {status} (a redirect: not followed; configure the URL "
                                "it points to)", permanent=True)
        raise DeliveryError(f"webhook answered HTTP {status}", permanent=True)


class HandoffWebhookChannel(WebhookChannel):
    """A hand-off receiver (``handoff.webhooks.<name>``, channel ``handoff:<name>``): POSTs
    the event an alert carries (``data["event"]``, see ``monitor.handoff``) instead of the
    alert, signed the same way; the event's ``id`` is the idempotency key and ``webhook-id``."""

    def content(self, alert: Alert) -> tuple[bytes, str]:
        event = alert.data.get("event") if isinstance(alert.data, dict) else None
        removed = alert.data.get("removed") if isinstance(alert.data, dict) else None
        if event is None and isinstance(removed, str):  # a mention it named was deleted (governance)
            raise DeliveryError(f"channel {self.name}: not sent, the event's content was removed ({removed})",
                                permanent=True)
        if not isinstance(event, dict) or not isinstance(event.get("id"), str):
            raise DeliveryError(f"channel {self.name}: alert {alert.key} carries no hand-off event", permanent=True)
        return json.dumps(event, ensure_ascii=False, default=str).encode("utf-8"), event["id"]


class AppriseChannel(_Base):
    """Any Apprise URL. Text goes as plain text: Apprise escapes Slack's & < > itself
    (<!channel> stays text; a test holds it to that), mass pings are neutralised here for
    every chat service, titles are one line. Apprise follows no redirects (its default
    does; an explicit ``redirect=yes`` in the URL still can) and gives up after ``timeout``."""

    def __init__(self, name: str, url: str, *, timeout: float = 20.0, **kw: Any) -> None:
        super().__init__(name, **kw)
        self._url = url
        self.timeout = timeout
        self.deadline = timeout + 2.0
        self.scheme = url.split("://", 1)[0].lower()

    def _format(self, alert: Alert) -> tuple[str, str]:
        title, body = header_safe(f"[{alert.severity}] {alert.title}"), alert.body
        if self.scheme not in ("mailto", "mailtos"):
            title, body = neutralise_mentions(title), neutralise_mentions(body)
        return title, body

    def send(self, alert: Alert) -> None:
        apprise = _apprise()
        ap = apprise.Apprise(asset=apprise.AppriseAsset(http_redirects=False, service_timeout=self.timeout))
        if not ap.add(self._url):
            raise DeliveryError(f"channel {self.name}: not a valid Apprise URL", permanent=True)
        title, body = self._format(alert)
        ok = ap.notify(body=body, title=title, body_format=apprise.NotifyFormat.TEXT, timeout=self.timeout)
        if not ok:
            raise DeliveryError(f"channel {self.name}: Apprise could not deliver ({self.scheme})")


def _apprise() -> Any:
    """Apprise with its plugins loaded, imported lazily (it is large). Its e-mail plugin
    imports the deprecated ``imghdr`` on Python < 3.13: silenced here, once."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import apprise
        from apprise.apprise import N_MGR

        plugins: Any = N_MGR  # apprise's own functions carry no annotations
        plugins.load_modules()
    return apprise


class EmailChannel(_Base):
    """Plain-text e-mail over SMTP; an alert with ``data["html"]`` (the weekly report, built
    from the autoescaped templates) adds it as the HTML alternative. The Message-ID is
    derived from the alert key, so a retry carries the same one and mail systems can drop
    the repeat."""

    def __init__(self, name: str, *, host: str, port: int, sender: str, to: list[str], security: str = "starttls",
                 username: str | None = None, password: str | None = None, timeout: float = 20.0,
                 **kw: Any) -> None:
        super().__init__(name, **kw)
        self.host, self.port, self.sender, self.to = host, port, sender, list(to)
        self.security, self.username, self._password, self.timeout = security, username, password, timeout
        self.deadline = 3 * timeout  # connect, TLS and the SMTP dialogue each wait up to ``timeout``

    def message(self, alert: Alert) -> EmailMessage:
        msg = EmailMessage()
        msg["Subject"] = header_safe(f"[{alert.severity}] {alert.title}", 180)
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.to)
        domain = self.sender.rsplit("@", 1)[-1].strip(">") or "monitor.invalid"
        msg["Message-ID"] = f"<{idempotency_key(alert)}@{header_safe(domain, 100)}>"
        msg["Date"] = format_datetime(alert.created_at)
        msg["X-Monitor-Idempotency-Key"] = idempotency_key(alert)
        msg.set_content(alert.body)
        html = alert.data.get("html") if isinstance(alert.data, dict) else None
        if isinstance(html, str) and html:
            msg.add_alternative(html, subtype="html")
        return msg

    def send(self, alert: Alert) -> None:
        msg = self.message(alert)
        smtp: smtplib.SMTP
        try:
            if self.security == "ssl":
                smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                        context=ssl.create_default_context())
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            with smtp:
                if self.security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if self.username:
                    smtp.login(self.username, self._password or "")
                smtp.send_message(msg)
        except smtplib.SMTPResponseException as exc:
            permanent = 500 <= exc.smtp_code < 600 and exc.smtp_code != 535  # 535: auth, may be a rotated secret
            raise DeliveryError(f"SMTP server answered {exc.smtp_code}", permanent=permanent) from None
        except smtplib.SMTPRecipientsRefused:
            raise DeliveryError("SMTP server refused every recipient", permanent=True) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP delivery failed ({type(exc).__name__})") from None


# ----------------------------------------------------------------------------- registry


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


# config ``type`` -> (name, the channel's settings, quiet_hours and min_severity) -> channel
CHANNEL_TYPES: dict[str, Callable[[str, Any, dict[str, Any]], Channel]] = {
    "console": lambda name, ch, kw: ConsoleChannel(name, **kw),
    "webhook": lambda name, ch, kw: WebhookChannel(name, ch.url.get_secret_value(),
                                                   signing_secret=_secret(ch.signing_secret),
                                                   timeout=ch.timeout.total_seconds(), **kw),
    "apprise": lambda name, ch, kw: AppriseChannel(name, ch.url.get_secret_value(), **kw),
    "email": lambda name, ch, kw: EmailChannel(name, host=ch.host, port=ch.port, sender=ch.sender, to=ch.to,
                                               security=ch.security, username=ch.username,
                                               password=_secret(ch.password), timeout=ch.timeout.total_seconds(), **kw),
}


def build_channels(settings: Settings) -> dict[str, Channel]:
    channels: dict[str, Channel] = {}
    for name, ch in settings.alerts.channels.items():
        kw = {"quiet_hours": ch.quiet_hours, "min_severity": ch.min_severity}
        channels[name] = CHANNEL_TYPES[ch.type](name, ch, kw)
    for name, hook in settings.handoff.webhooks.items():  # disabled ones too: what they have queued still goes
        channels[HANDOFF_PREFIX + name] = HandoffWebhookChannel(
            HANDOFF_PREFIX + name, hook.url.get_secret_value(), signing_secret=hook.signing_secret.get_secret_value(),
            timeout=hook.timeout.total_seconds())
    return channels
