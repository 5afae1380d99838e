"""http_client: one total deadline over connect, headers and body, a stop event that ends
a request in flight, for httpx and for the requests session PRAW uses; the requests
session connects to the address its guard checked (no second lookup)."""

from __future__ import annotations

import threading

import pytest

from monitor.errors import BlockedAddressError, SourceError
from monitor.http_client import HttpClient, HttpPolicy, RequestStopped, requests_session
from tests.fakes.drip import dripped_body, dripped_headers
from tests.fakes.sources import FakeResolver, FixtureServer, Reply

LOCAL = ("127.0.0.1/32",)


def policy(**kw) -> HttpPolicy:
    base = {"allow_networks": LOCAL, "resolve": FakeResolver(), "retries": 0, "sleep": lambda s: None,
            "read_timeout": 0.5, "connect_timeout": 0.5, "deadline": 1.0}
    return HttpPolicy(**{**base, **kw})


def httpx_get(p: HttpPolicy, url: str) -> bytes:
    return HttpClient(p).get_bytes(url)


def requests_get(p: HttpPolicy, url: str) -> bytes:
    return requests_session(p).get(url).content


CLIENTS = [httpx_get, requests_get]


@pytest.mark.parametrize("get", CLIENTS, ids=["httpx", "requests"])
@pytest.mark.parametrize("server", [dripped_headers, dripped_body], ids=["headers", "body"])
def test_a_dripping_answer_ends_at_the_deadline(get, server):
    """Each byte comes within the read timeout; before the deadline covered headers a
    dripped header held the request until the peer stopped (150 s in the attack run)."""
    with server() as drip:
        with pytest.raises(SourceError, match="no complete response within 1s"):
            get(policy(), f"{drip.url}/slow")
        assert drip.client_left.wait(2), "the client held on until the peer gave up"


@pytest.mark.parametrize("get", CLIENTS, ids=["httpx", "requests"])
def test_stop_ends_a_request_in_flight(get):
    stop = threading.Event()
    outcome: list[BaseException] = []

    def run():
        try:
            get(policy(deadline=30.0, stop=stop), f"{drip.url}/slow")
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    with dripped_headers() as drip:
        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        assert drip.first_byte.wait(2)
        stop.set()
        worker.join(2)
        assert not worker.is_alive(), "the request outlived the stop request"
    assert len(outcome) == 1 and isinstance(outcome[0], RequestStopped), outcome


@pytest.mark.parametrize("get", CLIENTS, ids=["httpx", "requests"])
def test_no_request_starts_once_stopping(get):
    stop = threading.Event()
    stop.set()
    with dripped_headers() as drip:
        with pytest.raises(RequestStopped):
            get(policy(stop=stop), f"{drip.url}/x")
        assert drip.connections == 0


def test_retries_end_when_the_stop_event_is_set():
    stop = threading.Event()
    slept: list[float] = []

    def sleep(seconds):  # the daemon's sleep is its stop event's wait: SIGTERM during a back-off
        slept.append(seconds)
        stop.set()

    with dripped_headers() as drip, pytest.raises(RequestStopped):
        httpx_get(policy(retries=3, stop=stop, sleep=sleep, deadline=0.3), f"{drip.url}/x")
    assert len(slept) == 1


def test_the_deadline_holds_on_a_pooled_connection_too():
    with FixtureServer() as server:
        server.routes["/fast"] = Reply(body=b"ok", headers={"Connection": "keep-alive"})
        client = HttpClient(policy())
        assert client.get_bytes(f"{server.url}/fast") == b"ok"
    with dripped_headers() as drip, pytest.raises(SourceError, match="within 1s"):
        client.get_bytes(f"{drip.url}/slow")


# ----------------------------------------------------------------------------- requests: pinned to the checked address


def test_requests_session_connects_to_the_address_the_guard_checked():
    """``pinned.test`` is known only to the guard's resolver: requests resolving the name
    itself (as before) could not connect at all."""
    with FixtureServer() as server:
        server.routes["/api/v1/access_token"] = Reply(body=b'{"ok": true}')
        port = server.url.rsplit(":", 1)[1]
        resolver = FakeResolver({"pinned.test": ["127.0.0.1"]})
        response = requests_session(policy(resolve=resolver)).post(f"http://pinned.test:{port}/api/v1/access_token")
        assert response.status_code == 200 and response.json() == {"ok": True}
        assert server.seen[0].headers["Host"] == f"pinned.test:{port}"  # the name still goes in Host
        assert resolver.lookups == ["pinned.test"]


def test_requests_session_dns_rebinding_is_caught_at_connect():
    answers = iter([["127.0.0.1"], ["10.0.0.7"]])
    with FixtureServer() as server:  # closes every connection: the second request connects again
        server.routes["/x"] = Reply(body=b"fine")
        port = server.url.rsplit(":", 1)[1]
        session = requests_session(policy(resolve=FakeResolver({"rebind.test": lambda: next(answers)})))
        assert session.get(f"http://rebind.test:{port}/x").content == b"fine"
        with pytest.raises(BlockedAddressError, match="10.0.0.7"):
            session.get(f"http://rebind.test:{port}/x")
        assert len(server.seen) == 1


def test_requests_session_pinned_https_keeps_the_name_for_sni_and_the_certificate(tmp_path):
    """Connecting to the checked address must not cost TLS its name: the server sees the
    name as SNI and the client verifies the certificate against the name."""
    import ssl
    import subprocess

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                    "/CN=pinned.test", "-addext", "subjectAltName=DNS:pinned.test", "-keyout", str(key),
                    "-out", str(cert)], check=True, capture_output=True, timeout=30)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    names: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    with FixtureServer() as server:
        server.httpd.socket = context.wrap_socket(server.httpd.socket, server_side=True)
        server.routes["/x"] = Reply(body=b"tls")
        port = server.url.rsplit(":", 1)[1]
        session = requests_session(policy(resolve=FakeResolver({"pinned.test": ["127.0.0.1"]}), deadline=5.0))
        assert session.get(f"https://pinned.test:{port}/x", verify=str(cert)).content == b"tls"
        assert names == ["pinned.test"] and server.seen[0].headers["Host"] == f"pinned.test:{port}"
