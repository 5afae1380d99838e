from __future__ import annotations

import pytest
from alert_fakes import Clock, Receiver, SmtpReceiver

from monitor.store import Store


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def store(tmp_path, clock):
    s = Store(tmp_path / "monitor.db", now=clock)
    yield s
    s.close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def smtp():
    s = SmtpReceiver()
    yield s
    s.close()
