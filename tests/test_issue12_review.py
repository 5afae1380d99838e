"""Issue 12 (parts 4 to 6) seen together: what a review of the programme, the hand-off and the
roles found between them, one test per fix."""

from __future__ import annotations

import json

import pytest

from monitor import governance
from monitor import inbox as desk
from monitor.config import Settings
from monitor.settings_inbox import InboxSettings
from monitor.store import Store
from tests.web_data import NOW, seed


@pytest.fixture
def seeded(tmp_path):
    store = Store(tmp_path / "monitor.db", now=lambda: NOW)
    seed(store)
    yield store
    store.close()


def settings_for(tmp_path, **extra) -> Settings:
    return Settings.model_validate({"database": str(tmp_path / "monitor.db"),
                                    "brands": [{"name": "Acme", "terms": {"include": ["acme"]}}], **extra})


def _alice_item(store: Store) -> int:
    mention = store.query("SELECT m.id FROM mentions m JOIN authors a ON a.id = m.author_id "
                          "WHERE a.handle = 'alice' ORDER BY m.id")[0]["id"]
    item = desk.route_to_inbox(store, InboxSettings(), mention, "high", rule="r", now=NOW)
    assert item is not None
    store.inbox.add_note(item, "maria", "alice asked for a refund by e-mail")
    return item


def test_forget_counts_the_inbox_items_of_the_persons_mentions_with_their_history_and_notes(seeded, tmp_path):
    item = _alice_item(seeded)
    result = governance.forget(seeded, settings_for(tmp_path), "alice")
    assert result.rows["inbox_items"] == 1 and result.rows["inbox_notes"] == 1
    assert result.rows["inbox_events"] >= 1  # at least its entry
    assert seeded.inbox.get(item) is None
    assert not seeded.query("SELECT 1 FROM inbox_notes") and not seeded.query("SELECT 1 FROM inbox_events")
    (erasure,) = seeded.governance.erasures()
    assert json.loads(erasure["rows"])["inbox_items"] == 1  # the record of the erasure names them too


def test_a_retention_dry_run_counts_the_inbox_rows_it_would_delete_and_keeps_them(seeded, tmp_path):
    item = _alice_item(seeded)
    settings = settings_for(tmp_path, brands=[{"name": "Acme", "terms": {"include": ["acme"]}, "retention": "1d"}])
    dry = governance.run_retention(seeded, settings, dry_run=True)
    assert dry.rows["inbox_items"] >= 1 and dry.rows["inbox_notes"] == 1
    assert seeded.inbox.get(item) is not None  # rolled back
    done = governance.run_retention(seeded, settings)
    assert done.rows["inbox_items"] == dry.rows["inbox_items"] and seeded.inbox.get(item) is None


def test_a_hand_off_event_whose_content_was_removed_is_dead_lettered_saying_so():
    from monitor.alerts.channels import HandoffWebhookChannel
    from monitor.errors import DeliveryError
    from monitor.records import Alert

    channel = HandoffWebhookChannel("handoff:crm", "http://127.0.0.1:9/hook", signing_secret="k")
    stripped = Alert("detractor.flagged", "handoff:detractor.flagged:Acme:2", "info", "removed", "removed",
                     brand="Acme", data={"removed": "erased on request"})
    with pytest.raises(DeliveryError) as err:
        channel.content(stripped)
    assert err.value.permanent and "removed (erased on request)" in str(err.value)
    broken = Alert("detractor.flagged", "k", "info", "t", "b", brand="Acme", data={})
    with pytest.raises(DeliveryError, match="carries no hand-off event"):
        channel.content(broken)
