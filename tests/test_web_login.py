"""Login hardening: scrypt off the event loop, the same work for unknown and known names,
failed logins throttled per name and per address (with an injected clock: no sleeping)."""

from __future__ import annotations

import hashlib
import logging
import threading
from datetime import timedelta

import anyio
import httpx
import pytest

from monitor.config import WebSettings
from monitor.store import Store
from monitor.web import security
from monitor.web.app import create_app
from tests.web_data import NOW
from tests.web_support import PASSWORD, hidden, login, make_db, settings_for

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend():
    return "asyncio"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self):
        return self.now

    def advance(self, **kw) -> None:
        self.now += timedelta(**kw)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def build(tmp_path, clock):
    """build(**web settings) -> the app, on a seeded database, with the test's clock."""
    settings, store = make_db(tmp_path)

    def _build(**web):
        s = settings_for(settings.database_path, **web)
        reader = Store(s.database_path, readonly=True, now=lambda: NOW)
        return create_app(s, reader, store, now=clock)

    _build.store = store
    return _build


def web_client(app, address: str = "127.0.0.1") -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, client=(address, 40000)),
                             base_url="http://127.0.0.1")


# ------------------------------------------------------------------ the event loop


async def test_password_check_runs_off_the_event_loop_and_other_requests_are_served(build, monkeypatch):
    started, release = threading.Event(), threading.Event()
    seen: dict = {}

    def slow_check(password, stored):
        seen["thread"] = threading.get_ident()
        started.set()
        seen["released"] = release.wait(30)  # a safety net against a hang, not a timing assertion
        return False

    monkeypatch.setattr(security, "check_login", slow_check)
    results: dict = {}
    async with web_client(build()) as c:
        async def attempt():
            results["login"] = await login(c, password="wrong password")

        async with anyio.create_task_group() as tg:
            tg.start_soon(attempt)
            assert await anyio.to_thread.run_sync(started.wait, 30)
            page = await c.get("/healthz")  # served while the password check is in progress
            assert "login" not in results, "the login finished before the check was released"
            release.set()
    assert page.status_code == 200
    assert seen["released"], "the password check blocked the event loop"
    assert seen["thread"] != threading.get_ident()
    assert results["login"].status_code == 401


# ------------------------------------------------------------------ equal work


@pytest.fixture
def scrypt_calls(monkeypatch):
    calls: list[tuple] = []
    real = hashlib.scrypt

    def recording(password, *, salt, n, r, p, maxmem=0, dklen=64):
        calls.append((n, r, p, dklen))
        return real(password, salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=dklen)

    monkeypatch.setattr(hashlib, "scrypt", recording)
    return calls


async def test_unknown_and_known_names_do_the_same_scrypt_work(build, scrypt_calls):
    # a user whose hash is made the way `monitor users add` makes it
    build.store.accounts.add_user("ivan", security.hash_password("ivan's real password"))
    real_params = scrypt_calls.pop()
    security.dummy_hash()  # made once, lazily; not part of what a login does afterwards
    async with web_client(build()) as c:
        scrypt_calls.clear()
        assert (await login(c, user="nobody-by-this-name", password="guess")).status_code == 401
        unknown = list(scrypt_calls)
        scrypt_calls.clear()
        assert (await login(c, user="ivan", password="guess")).status_code == 401
        known = list(scrypt_calls)
    assert unknown == known == [real_params]


def test_dummy_hash_has_the_parameters_of_real_hashes_and_is_made_once():
    security.dummy_hash.cache_clear()
    first = security.dummy_hash()
    assert security.dummy_hash() is first
    assert first.split("$")[1:4] == security.hash_password("x").split("$")[1:4]
    assert not security.check_login("anything", None)


# ------------------------------------------------------------------ throttling


async def test_defaults():
    web = WebSettings()
    assert (web.login_max_failures_per_name, web.login_max_failures_per_address) == (5, 20)
    assert web.login_failure_window == timedelta(minutes=15)


async def test_failures_per_name_block_even_the_right_password_until_they_expire(build, clock):
    async with web_client(build()) as c:
        for _ in range(5):
            assert (await login(c, password="wrong password")).status_code == 401
            clock.advance(minutes=1)
        r = await login(c)  # the right password, but the name is blocked: not even checked
        assert r.status_code == 429
        assert "Too many failed logins for this account; try again in 10 minutes." in r.text
        assert int(r.headers["retry-after"]) == 10 * 60
        assert (await c.get("/advocates")).status_code == 303  # no session
        # attempts refused with 429 are not counted: the block expires by itself
        for _ in range(10):
            assert (await login(c)).status_code == 429
        clock.advance(minutes=10)  # the first failure leaves the 15-minute window: one more try
        assert (await login(c, password="wrong password")).status_code == 401
        r = await login(c)
        assert r.status_code == 429 and "try again in 1 minute." in r.text
        clock.advance(minutes=1)
        r = await login(c)
        assert r.status_code == 303 and r.headers["location"] == "/advocates"


async def test_unknown_names_are_blocked_the_same_way(build):
    async with web_client(build(login_max_failures_per_name=2)) as c:
        for name in ("maria", "nobody"):
            for _ in range(2):
                assert (await login(c, user=name, password="wrong password")).status_code == 401
            r = await login(c, user=name, password="wrong password")
            assert r.status_code == 429 and "for this account; try again in 15 minutes" in r.text


async def test_name_block_applies_from_every_address_but_not_to_other_names(build):
    app = build(login_max_failures_per_name=2)
    async with web_client(app, "203.0.113.1") as a, web_client(app, "203.0.113.2") as b:
        for _ in range(2):
            assert (await login(a, password="wrong password")).status_code == 401
        assert (await login(b)).status_code == 429
        build.store.accounts.add_user("omar", security.hash_password(PASSWORD, n=2**12))
        assert (await login(a, user="omar")).status_code == 303


async def test_failures_per_address_block_that_address_only(build, clock):
    app = build(login_max_failures_per_address=3)
    async with web_client(app, "203.0.113.9") as bad, web_client(app, "198.51.100.7") as good:
        for name in ("alice", "bob", "carol"):
            assert (await login(bad, user=name, password="guess")).status_code == 401
        r = await login(bad)  # a fourth name, right password: the address is blocked
        assert r.status_code == 429
        assert "Too many failed logins from your address; try again in 15 minutes." in r.text
        assert (await login(good)).status_code == 303
        clock.advance(minutes=15)
        assert (await login(bad)).status_code == 303


async def test_success_resets_the_names_failures(build):
    async with web_client(build()) as c:
        for _ in range(4):
            assert (await login(c, password="wrong password")).status_code == 401
        assert (await login(c)).status_code == 303
        c.cookies.clear()
        for _ in range(4):  # four more: not blocked, the count started again
            assert (await login(c, password="wrong password")).status_code == 401
        assert (await login(c)).status_code == 303


async def test_a_limit_of_zero_turns_that_count_off(build):
    async with web_client(build(login_max_failures_per_name=0, login_max_failures_per_address=0)) as c:
        for _ in range(8):
            assert (await login(c, password="wrong password")).status_code == 401
        assert (await login(c)).status_code == 303


async def test_log_lines_name_the_limit_and_no_secret(build, caplog):
    caplog.set_level(logging.INFO, logger="monitor.web")
    secret = "hunter2-wrong-guess"
    async with web_client(build(login_max_failures_per_name=2), "203.0.113.5") as c:
        page = await c.get("/login")
        csrf = hidden(page.text, "csrf")
        for _ in range(3):
            r = await c.post("/login", data={"username": "maria", "password": secret, "csrf": csrf})
    assert r.status_code == 429
    reached = [rec for rec in caplog.records if "login limit reached" in rec.getMessage()]
    assert len(reached) == 1 and reached[0].levelno == logging.WARNING
    assert "2 failed logins for one user name within 15 min (address 203.0.113.5)" in reached[0].getMessage()
    assert any("login refused" in rec.getMessage() for rec in caplog.records)
    assert secret not in caplog.text and csrf not in caplog.text and "maria" not in caplog.text


# ------------------------------------------------------------------ the throttle alone


def test_attempts_in_flight_count_so_concurrent_guesses_cannot_slip_past(clock):
    throttle = security.LoginThrottle(max_per_name=3, max_per_address=100, window=timedelta(minutes=15), now=clock)
    started = [throttle.begin("maria", "203.0.113.1") for _ in range(3)]  # none has finished yet
    block = throttle.begin("maria", "203.0.113.2")
    assert isinstance(block, security.LoginBlock) and block.scope == "account"
    throttle.succeeded("maria", "203.0.113.1", started[0])
    assert throttle.blocked("maria", "203.0.113.1") is None
    assert len(throttle._failures["address"]["203.0.113.1"]) == 2  # the other two attempts still count there


def test_names_are_compared_case_insensitively_and_memory_is_bounded(clock):
    throttle = security.LoginThrottle(max_per_name=2, max_per_address=0, window=timedelta(minutes=15), now=clock,
                                      max_keys=10)
    throttle.begin("Maria", "a")
    throttle.begin("MARIA", "a")
    assert isinstance(throttle.blocked("maria", "b"), security.LoginBlock)
    for i in range(50):
        throttle.begin(f"spray{i}", "a")
    assert len(throttle._failures["account"]) <= 10
    assert throttle._failures["address"] == {}


def test_reaching_a_limit_is_reported_once_per_block(clock):
    throttle = security.LoginThrottle(max_per_name=2, max_per_address=0, window=timedelta(minutes=15), now=clock)
    throttle.begin("maria", "a")
    throttle.begin("maria", "a")  # two attempts in flight, both fail
    assert throttle.reached("maria", "a") == ["account"]
    assert throttle.reached("maria", "a") == []
    clock.advance(minutes=15)
    throttle.begin("maria", "a")
    throttle.begin("maria", "a")
    assert throttle.reached("maria", "a") == ["account"]  # a new block, a new line
