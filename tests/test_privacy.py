"""privacy.redact_contacts: e-mail addresses and phone numbers are masked before a mention is
stored; prices, dates, times, versions and other numbers are not."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.cli_common import App
from monitor.privacy import redact_contacts
from monitor.records import Author, FetchResult, Mention

from .conftest import write_config

CONTACTS = [
    ("mail me: jane.doe+acme@example.co.uk.", "mail me: [email]."),
    ("Support (support@acme-cloud.io) never answered", "Support ([email]) never answered"),
    ("MAIL: J_Smith99@Mail.Example.COM", "MAIL: [email]"),
    ("Call +44 20 7946 0958 today", "Call [phone] today"),
    ("hotline +1-202-555-0143!", "hotline [phone]!"),
    ("+33 6 12 34 56 78 (mobile)", "[phone] (mobile)"),
    ("+49 30 1234567", "[phone]"),
    ("ring (555) 123-4567, ask for Ann", "ring [phone], ask for Ann"),
    ("555-123-4567 or 555.123.4567 or 555 123 4567", "[phone] or [phone] or [phone]"),
    ("toll free 1-800-555-0199.", "toll free [phone]."),
    ("London office 020 7946 0958", "London office [phone]"),
    ("text me on 07700 900123", "text me on [phone]"),
]

UNTOUCHED = [
    "costs $1,299.99 (was €1.299,00, £999)",
    "price 1 299 kr, 12 500 yen",
    "released on 2026-12-03 at 10:30, or 03/12/2026, or 12.03.2026",
    "2026-12-03T10:30:00Z and 2026-12-03 10:30:00",
    "upgrade from v4.46.1 to 1.2.3; Windows 10.0.19045.3693; release 2024.10.1",
    "server at 192.168.100.200:8080",
    "order 123456789 and ticket #555-1234",
    "from 2019-2024, up 3.5% to 1,234,567 users",
    "ISBN 978-3-16-148410-0",
    "ping @jane on twitter, or user@localhost",
    "a 4K 120Hz screen for 1499.00 in 2026",
]


@pytest.mark.parametrize(("text", "expected"), CONTACTS)
def test_contacts_are_masked(text, expected):
    assert redact_contacts(text) == expected


@pytest.mark.parametrize("text", UNTOUCHED)
def test_prices_dates_versions_and_other_numbers_stay(text):
    assert redact_contacts(text) == text


@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=200))
def test_redaction_is_idempotent_and_never_grows_a_masked_text_again(text):
    once = redact_contacts(text)
    assert redact_contacts(once) == once


def test_the_store_masks_contacts_when_configured(tmp_path):
    for redact, expected in ((False, "write to ann@example.com"), (True, "write to [email]")):
        cfg = write_config(tmp_path / "config.yaml", f"""\
            database: monitor-{redact}.db
            privacy: {{redact_contacts: {str(redact).lower()}}}
            brands:
              - name: Acme
                terms: {{include: [acme]}}
            """)
        store = App(str(cfg)).store()
        m = Mention("hackernews", "1", "Acme", "acme support: write to ann@example.com", datetime.now(UTC),
                    title="acme? call +44 20 7946 0958", author=Author("hackernews", "ann"))
        store.save_batch("Acme:hackernews", "q", FetchResult([m], None))
        row = store.query("SELECT title, text FROM mentions")[0]
        assert row["text"] == f"acme support: {expected}"
        assert row["title"] == ("acme? call [phone]" if redact else "acme? call +44 20 7946 0958")
        store.close()
