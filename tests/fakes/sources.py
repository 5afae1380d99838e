"""Test doubles shared by the source tests: a fixture HTTP server on 127.0.0.1 and a
fake DNS resolver. No traffic leaves the machine."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

FIXTURES = Path(__file__).parent.parent / "fixtures"


def fixture_bytes(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def fixture_json(name: str):
    return json.loads(fixture_bytes(name))


@dataclass
class Reply:
    status: int = 200
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


Route = Reply | Callable[[Seen], Reply]


class FixtureServer:
    """Serves ``routes`` (path -> Reply or function of the request) on 127.0.0.1.
    A route ending in ``*`` matches by prefix; the longest match wins."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("content-length") or 0)
                seen = Seen(self.command, parts.path, parse_qs(parts.query), dict(self.headers),
                            self.rfile.read(length) if length else b"")
                server.seen.append(seen)
                route = server.find(parts.path)
                reply = Reply(404, b'{"error": "not found"}') if route is None else (
                    route(seen) if callable(route) else route)
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                self.send_header("Connection", "close")
                if isinstance(reply.body, bytes):
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                    return
                self.end_headers()  # no length: the body ends when the connection closes
                try:
                    for chunk in reply.body:
                        self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True

            do_GET = do_POST = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def find(self, path: str) -> Route | None:
        path = path.rstrip("/") or "/"
        if path in self.routes:
            return self.routes[path]
        prefixes = [p for p in self.routes if p.endswith("*") and path.startswith(p[:-1])]
        return self.routes[max(prefixes, key=len)] if prefixes else None

    def __enter__(self) -> FixtureServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def big_body(total: int = 50 * 1024 * 1024, chunk: int = 256 * 1024) -> Iterable[bytes]:
    """A 50 MB JSON-looking body, streamed without a Content-Length."""
    yield b'{"hits": ['
    piece = b'{"objectID": "1", "comment_text": "' + b"a" * (chunk - 40) + b'"},'
    sent = 0
    while sent < total:
        yield piece
        sent += len(piece)


class FakeResolver:
    """``resolve(host, port)`` from a table; records every lookup. Unknown names fail."""

    def __init__(self, table: dict[str, list[str] | Callable[[], list[str]]] | None = None) -> None:
        self.table = {"127.0.0.1": ["127.0.0.1"], **(table or {})}
        self.lookups: list[str] = []

    def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append(host)
        found = self.table.get(host)
        if found is None:
            raise OSError(f"fake resolver: unknown host {host}")
        return found() if callable(found) else list(found)
