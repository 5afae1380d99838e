"""A local stand-in for the Algolia HN Search API, on 127.0.0.1, serving real-shaped
responses (tests/fixtures/hackernews/) with faults injected on demand."""

from __future__ import annotations

import copy
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

FIXTURES = Path(__file__).parent.parent / "fixtures" / "hackernews"


def load_fixture(name: str):
    return json.loads((FIXTURES / name).read_text())


def make_hits(n: int, start_ts: int, step: int = 60, text: str = "SQLite comment number {i}") -> list[dict]:
    """n comment hits, newest last in time, shaped like the recorded fixture."""
    template = load_fixture("search_by_date.json")["hits"][0]
    hits = []
    for i in range(n):
        h = copy.deepcopy(template)
        h["objectID"] = str(50_000_000 + i)
        h["created_at_i"] = start_ts + i * step
        h["created_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(h["created_at_i"]))
        h["comment_text"] = text.format(i=i)
        h["author"] = f"user{i % 7}"
        h["_tags"] = ["comment", f"author_user{i % 7}", "story_41986001"]
        hits.append(h)
    return hits


class FakeAlgolia:
    def __init__(self, hits: list[dict] | None = None) -> None:
        self.hits = list(hits or [])
        self.faults: list[str] = []  # consumed one per search request
        self.requests: list[str] = []
        self.karma: dict[str, int] = {}
        self.retry_after = "1"  # the Retry-After header of the 429 fault
        self.missing_users: set[str] = set()  # /users/<name> answers 404 for these
        self.delay = 0.0  # seconds each search waits before answering (a slow upstream)
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/api/v1"

    def __enter__(self) -> FakeAlgolia:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def add(self, hits: list[dict]) -> None:
        with self.lock:
            self.hits += hits

    def searches(self) -> list[str]:
        with self.lock:
            return [r for r in self.requests if "/search_by_date" in r]

    def user_lookups(self) -> list[str]:
        with self.lock:
            return [r for r in self.requests if "/users/" in r]

    def search(self, params: dict[str, str]) -> dict:
        lo, hi = -1, 2**62
        for cond in (params.get("numericFilters") or "").split(","):
            m = re.fullmatch(r"created_at_i(>=|<=|>|<)(\d+)", cond.strip())
            if not m:
                continue
            op, v = m.group(1), int(m.group(2))
            if op == ">":
                lo = max(lo, v)
            elif op == ">=":
                lo = max(lo, v - 1)
            elif op == "<=":
                hi = min(hi, v)
            else:
                hi = min(hi, v - 1)
        per_page = int(params.get("hitsPerPage", 20))
        page = int(params.get("page", 0))
        with self.lock:
            matched = [h for h in self.hits if lo < h["created_at_i"] <= hi]
        matched.sort(key=lambda h: h["created_at_i"], reverse=True)
        body = load_fixture("search_by_date.json")
        body["hits"] = matched[page * per_page : (page + 1) * per_page]
        body["nbHits"] = len(matched)
        body["nbPages"] = (len(matched) + per_page - 1) // per_page
        body["page"] = page
        body["hitsPerPage"] = per_page
        body["query"] = params.get("query", "")
        return body

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _send(self, status: int, body: bytes, headers: dict | None = None) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                url = urlparse(self.path)
                params = {k: v[0] for k, v in parse_qs(url.query).items()}
                with fake.lock:
                    fake.requests.append(self.path)
                if url.path.startswith("/api/v1/users/"):
                    name = url.path.rsplit("/", 1)[-1]
                    if name in fake.missing_users:
                        return self._send(404, b'{"status":404,"error":"Not Found"}')
                    user = {"about": "", "karma": fake.karma.get(name, 100), "username": name}
                    return self._send(200, json.dumps(user).encode())
                if url.path != "/api/v1/search_by_date":
                    return self._send(404, b'{"message":"not found","status":404}')
                with fake.lock:
                    fault = fake.faults.pop(0) if fake.faults else None
                if fake.delay:
                    time.sleep(fake.delay)
                if fault == "429":
                    return self._send(429, b'{"message":"Too many requests"}', {"Retry-After": fake.retry_after})
                if fault == "500":
                    return self._send(500, b"<html>Internal error</html>")
                if fault == "down":
                    self.close_connection = True
                    self.connection.close()
                    return None
                body = json.dumps(fake.search(params)).encode()
                if fault == "truncated":
                    return self._send(200, body[: len(body) // 2])
                if fault == "malformed":
                    return self._send(200, b'{"hits": "not a list", "nbPages": "x"}')
                if fault == "huge":
                    pad = b'{"hits": [], "pad": "' + b"x" * (12 * 1024 * 1024) + b'"}'
                    return self._send(200, pad)
                if fault == "drip":
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    for i in range(0, len(body), 64):
                        self.wfile.write(body[i : i + 64])
                        self.wfile.flush()
                        time.sleep(0.2)
                    return None
                if fault == "bad_hits":
                    data = json.loads(body)
                    data["hits"] = [{"objectID": None}, {"created_at_i": "soon"}, *data["hits"],
                                    {"objectID": "x1", "created_at_i": 10**30}]
                    return self._send(200, json.dumps(data).encode())
                if fault == "weird_text":
                    data = json.loads(body)
                    for h in data["hits"]:
                        h["comment_text"] = "SQLite \ud800 lone surrogate \x00\x07 control <script>alert(1)</script>"
                    return self._send(200, json.dumps(data).encode())
                return self._send(200, body)

        return Handler
