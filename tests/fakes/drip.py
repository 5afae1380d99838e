"""A peer that answers too slowly, on 127.0.0.1: it reads one request, then sends its
``reply`` a few bytes at a time, each piece well within any read timeout, so only a total
deadline ends the exchange (``prefix`` goes out at once, before the drip). It gives up by
itself after ``limit`` seconds (a test that fails never hangs), and records whether the
client left first."""

from __future__ import annotations

import socket
import threading
import time


class DripServer:
    def __init__(self, reply: bytes, *, prefix: bytes = b"", interval: float = 0.05, piece: int = 1,
                 limit: float = 6.0) -> None:
        self.reply, self.prefix, self.interval, self.piece, self.limit = reply, prefix, interval, piece, limit
        self.connections = 0
        self.requests: list[bytes] = []
        self.first_byte = threading.Event()  # the answer has begun
        self.client_left = threading.Event()  # the client closed while the answer was still coming
        self._closing = threading.Event()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)
        self._sock.settimeout(0.05)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> DripServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self._thread.join(2)
        self._sock.close()

    def _serve(self) -> None:
        while not self._closing.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(2)
            try:
                self.requests.append(_read_request(conn))
            except OSError:
                return
            until = time.monotonic() + self.limit
            try:
                conn.sendall(self.prefix)
            except OSError:
                return
            for start in range(0, len(self.reply), self.piece):
                if self._closing.is_set() or time.monotonic() > until:
                    return
                try:
                    conn.sendall(self.reply[start:start + self.piece])
                except OSError:
                    self.client_left.set()
                    return
                self.first_byte.set()
                if _closed(conn):
                    self.client_left.set()
                    return
                time.sleep(self.interval)


def _read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return data
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    while len(body) < length:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head + b"\r\n\r\n" + body


def _closed(conn: socket.socket) -> bool:
    """The client has closed or shut down its side (nothing more is expected from it)."""
    try:
        conn.setblocking(False)
        try:
            return conn.recv(1, socket.MSG_PEEK) == b""
        except BlockingIOError:
            return False
        except OSError:
            return True
    finally:
        conn.setblocking(True)
        conn.settimeout(2)


def dripped_headers(n: int = 2000) -> DripServer:
    """A status line, then a header that never ends in time."""
    return DripServer(b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * n + b"\r\nContent-Length: 2\r\n\r\n{}")


def dripped_body(n: int = 2000, status: int = 200, **kw) -> DripServer:
    """Complete headers at once, then a JSON string body that never ends in time."""
    head = f"HTTP/1.1 {status} OK\r\nContent-Type: application/json\r\nContent-Length: {n + 2}\r\n\r\n"
    return DripServer(b'"' + b"a" * n + b'"', prefix=head.encode(), **kw)
