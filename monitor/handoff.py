"""Outgoing events for the tools a company already uses: ``advocate.flagged``,
``detractor.flagged``, ``inbox.assigned`` and ``inbox.sla_breached``, as signed webhooks.

An event is queued as an alert (rule = the event's name, key ``handoff:<event>:<subject>``,
``data["event"]`` = the JSON body below) with one delivery per receiver that wants it
(``handoff.webhooks`` in config.yaml, channel ``handoff:<name>``), in the same transaction as
what causes it. The alert outbox then delivers it like any alert: retries with back-off and
jitter (Retry-After honoured), every attempt recorded, dead letters after ``max_attempts``,
the receiver's deadline, no redirects followed. ``HandoffWebhookChannel`` POSTs the body with
the webhook channel's Standard Webhooks signature; the event's ``id`` is stable across retries
and restarts (``Idempotency-Key`` and ``webhook-id``), so a receiver drops repeats by it.

The body (``schema`` 1; fields are only ever added)::

    {"id": "evt_<32 hex>", "event": "advocate.flagged", "schema": 1, "at": "<ISO 8601 UTC>",
     "brand": "Acme",
     "person": {...},            # advocate.flagged, detractor.flagged
     "item": {...}, "actor": "", # inbox.assigned (actor: who assigned), inbox.sla_breached
     "links": {"monitor": "<web_base_url>/authors/<id> or /inbox/<id>" | null, ...}}

Flags: ``announce_flags`` (after every advocate refresh) finds the persons whose current
flag for a brand was never announced, records it (``handoff_flags``) and queues its event in
one transaction: a person is announced once per brand and flag, however often the scores are
refreshed (and however often they cross the threshold again). Flags standing when the
hand-off was installed count as announced (the migration); the CRM exports cover them.

A flag event names the person's latest mention of the brand (``mention_ids``, as an inbox event
names its mention): when that mention is deleted (``monitor forget``, retention) the event's
text and body are stripped like any alert's that quoted it, and one not yet delivered is
dead-lettered instead of sent.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from monitor.records import Alert
from monitor.settings_handoff import HANDOFF_PREFIX, HandoffSettings
from monitor.store import Store, iso
from monitor.store.handoff import NewFlag
from monitor.store.rows import InboxItem

logger = logging.getLogger(__name__)

SCHEMA = 1
TEXT_MAX = 500  # characters of the mention's text in an inbox event


def event_id(key: str) -> str:
    """Stable for one event across retries and restarts: derived from its unique key."""
    return "evt_" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


class Handoff:
    """Queues events for the receivers that want them (``settings.handoff``); links point at
    ``web_base_url`` (``alerts.web_base_url``) when it is set."""

    def __init__(self, settings: HandoffSettings | None = None, web_base_url: str | None = None) -> None:
        self.settings = settings or HandoffSettings()
        self.web_base_url = web_base_url.rstrip("/") if web_base_url else None

    @classmethod
    def of(cls, settings: Any) -> Handoff:
        """From the whole ``Settings``."""
        return cls(settings.handoff, settings.alerts.web_base_url)

    def link(self, path: str) -> str | None:
        return f"{self.web_base_url}{path}" if self.web_base_url else None

    def queue(self, store: Store, event: str, brand: str, subject: str, fields: Mapping[str, Any], now: datetime, *,
              title: str, mention_ids: Sequence[int] = ()) -> bool:
        """Queue one event for every receiver that wants it (call inside the transaction of
        the change that causes it). False when none wants it or it was queued before."""
        targets = self.settings.targets(event, brand)
        if not targets:
            return False
        key = f"handoff:{event}:{subject}"
        body = {"id": event_id(key), "event": event, "schema": SCHEMA, "at": iso(now), "brand": brand, **fields}
        alert = Alert(rule=event, key=key, severity="info", title=title, body=f"hand-off event {event}: {title}",
                      brand=brand, mention_ids=tuple(mention_ids), created_at=now,
                      data={"kind": "handoff", "event": body})
        return bool(store.alerts.insert([alert], {event: [HANDOFF_PREFIX + t for t in targets]}))

    # ------------------------------------------------------------------ the events

    def flagged(self, store: Store, row: NewFlag, now: datetime) -> bool:
        event = f"{row['flag']}.flagged"
        person = {
            "id": row["person_id"], "handle": row["handle"], "platform": row["source"], "name": row["display_name"],
            "profile_url": row["profile_url"], "flag": row["flag"],
            "advocate_score": round(float(row["advocate_score"]), 1),
            "detractor_score": round(float(row["detractor_score"]), 1), "mentions": row["mentions"],
            "reach": row["reach"], "first_mention_at": row["first_at"], "last_mention_at": row["last_at"],
            "programme_status": member["status"] if (member := store.programme.member(row["person_id"], row["brand"]))
            else None,
        }
        links = {"monitor": self.link(f"/authors/{row['person_id']}"), "profile": row["profile_url"]}
        return self.queue(store, event, row["brand"], f"{row['brand']}:{row['person_id']}",
                          {"person": person, "links": links}, now,
                          title=f"[{row['brand']}] {row['flag']} flagged: {row['handle']} ({row['source']})",
                          mention_ids=(row["last_mention_id"],) if row["last_mention_id"] else ())

    def inbox_assigned(self, store: Store, item: InboxItem, actor: str | None, now: datetime) -> bool:
        return self.queue(store, "inbox.assigned", item["brand"], f"{item['id']}:{item['version']}",
                          {"item": self._item(item), "actor": actor, "links": self._item_links(item)}, now,
                          title=f"[{item['brand']}] inbox item {item['id']} assigned to {item['assignee']}",
                          mention_ids=(item["mention_id"],))

    def sla_breached(self, store: Store, item: InboxItem, now: datetime) -> bool:
        return self.queue(store, "inbox.sla_breached", item["brand"], str(item["id"]),
                          {"item": self._item(item), "links": self._item_links(item)}, now,
                          title=f"[{item['brand']}] SLA breached: {item['priority']} inbox item {item['id']}",
                          mention_ids=(item["mention_id"],))

    @staticmethod
    def _item(item: InboxItem) -> dict[str, Any]:
        return {"id": item["id"], "state": item["state"], "priority": item["priority"], "assignee": item["assignee"],
                "entered_at": item["entered_at"], "due_at": item["due_at"],
                "first_response_at": item["first_response_at"], "mention_id": item["mention_id"],
                "mention_at": item["mention_at"], "platform": item["source"], "author": item["author"],
                "stance": item["advocacy"], "url": item["url"], "text": (item["text"] or "")[:TEXT_MAX]}

    def _item_links(self, item: InboxItem) -> dict[str, str | None]:
        return {"monitor": self.link(f"/inbox/{item['id']}"), "mention": item["url"]}


def announce_flags(store: Store, handoff: Handoff, now: datetime | None = None, batch: int = 500) -> int:
    """Announce every flag not announced yet (see the module); the number of events queued."""
    now = now or store.now()
    queued = 0
    while True:
        rows = store.handoff.new_flags(batch)
        if not rows:
            break
        with store.transaction():
            for row in rows:
                if store.handoff.announced(row["brand"], row["person_id"], row["flag"], now):
                    queued += handoff.flagged(store, row, now)
    if queued:
        logger.info("hand-off: %d flag event(s) queued", queued)
    return queued


def refresh_and_announce(store: Store, settings: Any, *, full: bool = False) -> Any:
    """``advocates.refresh`` and then ``announce_flags``: what the daemon, the web page's
    refresher and ``monitor advocates refresh`` run. Returns the refresh's result."""
    from monitor import advocates

    result = advocates.refresh(store, settings.advocates, full=full)
    announce_flags(store, Handoff.of(settings))
    return result
