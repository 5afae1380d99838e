"""Alert channels. Contract: ``send(alert)`` returns on success and raises
DeliveryError on failure (``permanent=True`` when retrying cannot help)."""

from __future__ import annotations

import logging
import sys
from typing import Protocol, TextIO

from monitor.records import Alert

logger = logging.getLogger(__name__)


class Channel(Protocol):
    name: str

    def send(self, alert: Alert) -> None: ...


class ConsoleChannel:
    """Prints alerts to a stream (stdout by default): the daemon's log or the terminal."""

    def __init__(self, name: str = "console", stream: TextIO | None = None) -> None:
        self.name = name
        self.stream = stream

    def send(self, alert: Alert) -> None:
        out = self.stream or sys.stdout
        bar = "=" * 72
        out.write(f"{bar}\nALERT [{alert.severity}] {alert.title}\n{alert.body}\n{bar}\n")
        out.flush()


def build_channels(settings) -> dict[str, Channel]:
    channels: dict[str, Channel] = {}
    for name, ch in settings.alerts.channels.items():
        if ch.type == "console":
            channels[name] = ConsoleChannel(name)
    return channels
