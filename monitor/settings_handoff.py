"""Settings of the hand-off (``handoff:`` in config.yaml; re-exported by config.py): the
receivers of outgoing events, each a signed webhook with the events and brands it wants.

    handoff:
      webhooks:
        crm:
          url: ${CRM_WEBHOOK_URL}
          signing_secret: ${CRM_WEBHOOK_SECRET}
          events: [advocate.flagged, detractor.flagged]
          brands: [Acme]        # empty: every brand

Deliveries go through the alert outbox (retries with back-off, dead letters, idempotency keys)
as channel ``handoff:<name>``; see ``monitor.handoff``."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field

from monitor.settings_types import Duration, Secret, SecretHttpUrl, Strict

HANDOFF_PREFIX = "handoff:"  # the outbox channel of receiver <name> is handoff:<name>
EVENTS: tuple[str, ...] = ("advocate.flagged", "detractor.flagged", "inbox.assigned", "inbox.sla_breached")
Event = Literal["advocate.flagged", "detractor.flagged", "inbox.assigned", "inbox.sla_breached"]


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class HandoffWebhook(Strict):
    """One receiver: POSTs each event it subscribed to as JSON, signed like the alert webhook
    channel (Standard Webhooks ``webhook-id`` / ``webhook-timestamp`` / ``webhook-signature``)."""

    url: SecretHttpUrl  # ${ENV}: receiver URLs often carry tokens
    signing_secret: Secret  # required: a receiver must be able to tell our events from forgeries
    events: Annotated[list[Event], BeforeValidator(_as_list)] = Field(min_length=1)
    brands: Annotated[list[str], BeforeValidator(_as_list)] = []  # empty: every brand
    timeout: Duration = timedelta(seconds=10)
    enabled: bool = True


class HandoffSettings(Strict):
    webhooks: dict[Annotated[str, Field(min_length=1, max_length=60, pattern=r"^[A-Za-z0-9_.-]+$")],
                   HandoffWebhook] = {}

    def targets(self, event: str, brand: str | None) -> list[str]:
        """The names of the enabled receivers that want ``event`` of ``brand``, sorted."""
        return sorted(name for name, w in self.webhooks.items()
                      if w.enabled and event in w.events and (not w.brands or brand is None or brand in w.brands))
