"""http_client.py: SSRF guard (fake resolver; every connect recorded by an audit hook,
none may go anywhere but 127.0.0.1), redirects re-checked hop by hop, per-host rate
limiter, Retry-After."""

from __future__ import annotations

import sys

import httpx
import pytest

from monitor.errors import BlockedAddressError, SourceError
from monitor.http_client import HttpClient, HttpPolicy, NetworkGuard, RateLimiter, is_public
from tests.fakes.sources import FakeResolver, FixtureServer, Reply

CONNECTS: list[tuple] = []


def _audit(event, args):
    if event == "socket.connect" and CONNECTS is not None:
        address = args[1]
        if isinstance(address, tuple):
            CONNECTS.append(address)


sys.addaudithook(_audit)

BLOCKED = [
    "10.0.0.5", "172.16.1.1", "192.168.1.1", "127.0.0.1", "127.8.9.10", "169.254.169.254", "100.64.0.1",
    "0.0.0.0",  # noqa: S104 - an address to refuse; nothing binds to it
    "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255", "198.18.0.1", "192.0.0.8",
    "192.0.2.1", "198.51.100.7", "203.0.113.9", "::1", "::", "fe80::1", "fc00::1", "fd12:3456::1",
    "::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:169.254.169.254", "2002:7f00:1::1", "64:ff9b::7f00:1",
    "64:ff9b::a00:1", "ff02::1", "2001:db8::1",
]
PUBLIC = ["93.184.215.14", "1.1.1.1", "2606:4700:4700::1111", "8.8.8.8"]


@pytest.fixture(autouse=True)
def _connects():
    CONNECTS.clear()
    yield
    assert all(addr[0] in ("127.0.0.1", "::1") for addr in CONNECTS), CONNECTS


def client(resolver, allow=(), **kw) -> HttpClient:
    return HttpClient(HttpPolicy(resolve=resolver, allow_networks=tuple(allow), retries=0, sleep=lambda s: None, **kw))


@pytest.mark.parametrize("address", BLOCKED)
def test_non_public_addresses_are_refused_before_connecting(address):
    http = client(FakeResolver({"evil.test": [address]}))
    with pytest.raises(BlockedAddressError):
        http.get_bytes("http://evil.test/feed")
    assert CONNECTS == []


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass_the_guard(address):
    assert NetworkGuard(resolve=FakeResolver({"ok.test": [address]})).check("ok.test", 443) == [address]


def test_one_private_record_among_public_ones_blocks():
    http = client(FakeResolver({"mixed.test": ["93.184.215.14", "10.1.2.3"]}))
    with pytest.raises(BlockedAddressError, match="10.1.2.3"):
        http.get_bytes("https://mixed.test/")


@pytest.mark.parametrize("url", ["http://10.0.0.1/", "http://[::1]:8080/", "http://2130706433/", "http://0x7f.1/",
                                 "http://017700000001/", "http://127.1/", "http://good@127.0.0.1/",
                                 "http://[::ffff:169.254.169.254]/latest/meta-data/"])
def test_literal_and_numeric_addresses_are_refused(url):
    resolver = FakeResolver()
    with pytest.raises(BlockedAddressError):
        client(resolver).get_bytes(url)
    assert CONNECTS == []


def test_non_http_schemes_are_refused():
    with pytest.raises(SourceError):
        client(FakeResolver()).get_bytes("file:///etc/passwd")


def test_allowed_network_reaches_the_local_server():
    with FixtureServer() as server:
        server.routes["/feed"] = Reply(body=b"ok")
        port = server.url.rsplit(":", 1)[1]
        http = client(FakeResolver({"mirror.internal": ["127.0.0.1"]}), allow=["127.0.0.1/32"])
        assert http.get_bytes(f"http://mirror.internal:{port}/feed") == b"ok"
        assert len(server.seen) == 1
        with pytest.raises(BlockedAddressError):  # the same without the allow entry
            client(FakeResolver({"mirror.internal": ["127.0.0.1"]})).get_bytes(f"http://mirror.internal:{port}/feed")


def test_redirect_to_a_blocked_address_is_refused_at_the_hop():
    with FixtureServer() as server:
        server.routes["/start"] = Reply(302, headers={"Location": "http://metadata.test/latest/meta-data/"})
        port = server.url.rsplit(":", 1)[1]
        resolver = FakeResolver({"public.test": ["127.0.0.1"], "metadata.test": ["169.254.169.254"]})
        with pytest.raises(BlockedAddressError, match="169.254.169.254"):
            client(resolver, allow=["127.0.0.1/32"]).get_bytes(f"http://public.test:{port}/start")
        assert [s.path for s in server.seen] == ["/start"]
        assert resolver.lookups == ["public.test", "metadata.test"]


def test_redirect_to_another_scheme_is_refused():
    with FixtureServer() as server:
        server.routes["/start"] = Reply(301, headers={"Location": "file:///etc/passwd"})
        with pytest.raises(BlockedAddressError, match="file"):
            client(FakeResolver(), allow=["127.0.0.1/32"]).get_bytes(f"{server.url}/start")


def test_redirects_are_followed_and_credentials_stay_on_their_host():
    with FixtureServer() as server:
        port = server.url.rsplit(":", 1)[1]
        server.routes["/a"] = Reply(302, headers={"Location": f"http://b.test:{port}/b"})
        server.routes["/b"] = Reply(body=b"landed")
        resolver = FakeResolver({"a.test": ["127.0.0.1"], "b.test": ["127.0.0.1"]})
        body = client(resolver, allow=["127.0.0.1/32"]).get_bytes(f"http://a.test:{port}/a",
                                                                  headers={"Authorization": "Bearer s3cret"})
        assert body == b"landed"
        assert server.seen[0].headers.get("Authorization") == "Bearer s3cret"
        assert "Authorization" not in server.seen[1].headers


def test_redirect_loops_end():
    with FixtureServer() as server:
        server.routes["/loop"] = Reply(302, headers={"Location": "/loop"})
        with pytest.raises(SourceError, match="redirects"):
            client(FakeResolver(), allow=["127.0.0.1/32"], max_redirects=3).get_bytes(f"{server.url}/loop")
        assert len(server.seen) == 4


def test_dns_rebinding_between_requests_is_caught():
    answers = iter([["127.0.0.1"], ["10.0.0.7"]])
    with FixtureServer() as server:
        server.routes["/x"] = Reply(body=b"fine")
        port = server.url.rsplit(":", 1)[1]
        http = client(FakeResolver({"rebind.test": lambda: next(answers)}), allow=["127.0.0.1/32"])
        assert http.get_bytes(f"http://rebind.test:{port}/x") == b"fine"
        with pytest.raises(BlockedAddressError, match="10.0.0.7"):
            http.get_bytes(f"http://rebind.test:{port}/x")


def test_is_public_examples():
    assert is_public(__import__("ipaddress").ip_address("93.184.215.14"))
    assert not is_public(__import__("ipaddress").ip_address("100.127.255.254"))


# ----------------------------------------------------------------------------- politeness


def test_rate_limiter_spaces_requests_per_host():
    now = [100.0]
    slept: list[float] = []

    def sleep(s):
        slept.append(s)
        now[0] += s

    limiter = RateLimiter(2.0, clock=lambda: now[0], sleep=sleep)
    assert limiter.wait("a") == 0.0
    assert limiter.wait("b") == 0.0  # another host is not held up
    assert limiter.wait("a") == pytest.approx(2.0)
    now[0] += 5.0
    assert limiter.wait("a") == 0.0
    assert slept == [pytest.approx(2.0)]


def test_client_uses_the_limiter_for_every_request():
    waited: list[str] = []

    class Recorder(RateLimiter):
        def wait(self, host):
            waited.append(host)
            return 0.0

    transport = httpx.MockTransport(lambda r: httpx.Response(200, content=b"{}"))
    http = HttpClient(HttpPolicy(limiter=Recorder(1.0)), transport=transport)
    http.get_json("https://hn.example/api")
    http.get_json("https://feeds.example/x")
    assert waited == ["hn.example", "feeds.example"]


def test_retry_after_is_respected():
    calls = iter([httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200, content=b"[]")])
    slept: list[float] = []
    http = HttpClient(HttpPolicy(sleep=slept.append, retries=2), transport=httpx.MockTransport(lambda r: next(calls)))
    assert http.get_json("https://api.example/x") == []
    assert slept == [7.0]


def test_retry_after_too_long_gives_up_until_the_next_run():
    http = HttpClient(HttpPolicy(sleep=lambda s: None, retries=2, max_retry_after=60),
                      transport=httpx.MockTransport(lambda r: httpx.Response(503, headers={"Retry-After": "3600"})))
    with pytest.raises(SourceError) as err:
        http.get_bytes("https://api.example/x")
    assert err.value.retry_after == 3600


def test_requests_session_for_praw_is_guarded_too():
    from monitor.http_client import requests_session

    session = requests_session(HttpPolicy(resolve=FakeResolver({"reddit.evil": ["10.9.8.7"]})))
    with pytest.raises(BlockedAddressError):
        session.get("https://reddit.evil/api/v1/access_token")
    assert CONNECTS == []
