"""Shared set-up for the web tests: a seeded database, a user, the app."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from monitor import advocates
from monitor.config import Settings
from monitor.store import Store
from monitor.web.app import create_app
from monitor.web.security import hash_password
from tests.web_data import NOW, seed

PASSWORD = "correct horse battery"


def settings_for(db: Path, **web) -> Settings:
    return Settings.model_validate({
        "database": str(db),
        "brands": [{"name": "Acme", "terms": {"include": ["acme"]}},
                   {"name": "Globex", "terms": {"include": ["globex"]}}],
        "advocates": {"index_min_sample": 2},
        "web": web,
    })


def make_db(tmp_path: Path, seeder=seed) -> tuple[Settings, Store]:
    db = tmp_path / "monitor.db"
    settings = settings_for(db)
    store = Store(db, now=lambda: NOW)
    seeder(store)
    store.accounts.add_user("maria", hash_password(PASSWORD, n=2**12), role="admin")  # tests ask for less
    advocates.refresh(store, settings.advocates, now=NOW)
    return settings, store


def make_app(settings: Settings, store: Store):
    reader = Store(settings.database_path, readonly=True, now=lambda: NOW)
    return create_app(settings, reader, store, now=lambda: NOW)


def client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1")


def hidden(html: str, name: str) -> str:
    m = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert m, f"no hidden field {name}"
    return m.group(1)


async def login(c: httpx.AsyncClient, user: str = "maria", password: str = PASSWORD) -> httpx.Response:
    page = await c.get("/login")
    return await c.post("/login", data={"username": user, "password": password, "csrf": hidden(page.text, "csrf"),
                                        "next": "/advocates"})


@contextmanager
def served(app) -> Iterator[str]:
    """``app`` served by uvicorn on a free port of 127.0.0.1, in a thread, for the browser tests:
    yields its URL, stops it after."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    for _ in range(200):  # waits for the start, times nothing
        if srv.started:
            break
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        thread.join(10)

