"""Test helpers for alerts: a keyword classifier, a settable clock, mention factories, and
real local receivers (an HTTP server that records and can fail on demand, an SMTP server)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from monitor.records import Author, Classification, FetchResult, LabelScore, Mention


class KeywordClassifier:
    """'hate' -> negative detractor, 'love' -> positive promoter, else neutral; 'meh' -> uncertain."""

    name = "keywords@1"

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        out = []
        for t in texts:
            low = t.lower()
            if "hate" in low:
                s, a, p = "negative", "detractor", 0.9
            elif "love" in low:
                s, a, p = "positive", "promoter", 0.9
            else:
                s, a, p = "neutral", "none", 0.7
            rest = (1 - p) / 2
            sent = {k: (p if k == s else rest) for k in ("negative", "neutral", "positive")}
            adv = {k: (p if k == a else rest) for k in ("promoter", "detractor", "none")}
            out.append(Classification(LabelScore(s, sent), LabelScore(a, adv), self.name, uncertain="meh" in low))
        return out


class Clock:
    def __init__(self, start: datetime | None = None) -> None:
        self.t = start or datetime(2026, 11, 2, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.t

    def advance(self, **kw) -> datetime:
        self.t += timedelta(**kw)
        return self.t


def mention(n: int, text: str, *, brand: str = "Acme", at: datetime | None = None, author: str | None = "alice",
            reach: int | None = 10, source: str = "hackernews", rating: int | None = None, lang: str | None = "en",
            url: str | None = None) -> Mention:
    return Mention(
        source=source, native_id=str(n), brand=brand, text=text, created_at=at or datetime(2026, 11, 1, tzinfo=UTC),
        url=url or f"https://news.example/item?id={n}",
        author=Author(source=source, handle=author, reach=reach, reach_kind="karma") if author else None,
        rating=rating, lang=lang,
    )


def add_mentions(store, mentions: list[Mention], source_key: str = "Acme:hackernews") -> list[int]:
    return store.save_batch(source_key, "q", FetchResult(mentions, None))


# ----------------------------------------------------------------------------- HTTP receiver


class Receiver:
    """Records every request. ``plan`` is consumed one item per request:
    'ok', '500', '400', '429:<seconds>' (with Retry-After), 'hang' (read the body, then
    stall past the client's timeout), 'slow' (answer 200 after ``slow_s``).
    When the plan is empty ``default`` applies. ``delivered`` keeps the first request per
    Idempotency-Key among those answered 2xx, like a receiver that honours the key."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.delivered: dict[str, dict] = {}
        self.plan: list[str] = []
        self.default = "ok"
        self.hang_s = 2.0
        self.slow_s = 0.05
        self.arrivals: dict[str, float] = {}  # Idempotency-Key -> time.perf_counter() of first 2xx
        self.lock = threading.Lock()
        self._stop = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver.lock:
                    mode = receiver.plan.pop(0) if receiver.plan else receiver.default
                    record = {"path": self.path, "headers": dict(self.headers), "body": body, "mode": mode}
                    receiver.requests.append(record)
                if mode == "hang":  # accepted, then the answer is too late: the ambiguous case
                    receiver._accept(self.headers.get("Idempotency-Key"), record)
                    receiver._stop.wait(receiver.hang_s)
                    return self._answer(200)
                if mode == "slow":
                    time.sleep(receiver.slow_s)
                    mode = "ok"
                if mode == "ok":
                    receiver._accept(self.headers.get("Idempotency-Key"), record)
                    return self._answer(200)
                if mode.startswith("429"):
                    return self._answer(429, {"Retry-After": mode.split(":", 1)[1] if ":" in mode else "1"})
                return self._answer(int(mode))

            def _answer(self, status, headers=None):
                try:
                    self.send_response(status)
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"{}")
                except OSError:
                    pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _accept(self, key: str | None, record: dict) -> None:
        with self.lock:
            key = key or f"raw-{len(self.requests)}"
            if key not in self.delivered:
                self.delivered[key] = record
                self.arrivals[key] = time.perf_counter()

    def json_bodies(self) -> list[dict]:
        return [json.loads(r["body"]) for r in self.requests if r["body"]]

    def close(self) -> None:
        self._stop.set()
        self.server.shutdown()
        self.server.server_close()


# ----------------------------------------------------------------------------- SMTP receiver


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SmtpReceiver:
    """aiosmtpd on 127.0.0.1 keeping every message it accepts (raw bytes and envelope)."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[dict] = []
        outer = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                outer.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                                       "data": envelope.content})
                return "250 OK"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def close(self) -> None:
        self.controller.stop()
