"""Sample mentions shipped with the package, for `monitor demo`: no network needed."""

from __future__ import annotations

import json
from datetime import timedelta
from importlib import resources

from monitor.records import Author, FetchResult, Mention


def load_samples() -> list[dict]:
    text = resources.files("monitor.demo").joinpath("mentions.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


class DemoSource:
    """Replays the samples once, spread over the last few days (cursor: "done")."""

    type = "demo"

    def __init__(self, *, brand, settings, http_factory=None, now) -> None:
        self.brand = brand.name
        self.key = f"{brand.name}:{settings.name or settings.type}"
        self.now = now
        self.match_all = settings.match_all  # the samples' reviews are of the brand's own app

    def queries(self) -> list[str]:
        return ["samples"]

    def fetch(self, query: str, cursor: str | None) -> FetchResult:
        if cursor == "done":
            return FetchResult([], "done")
        now = self.now()
        mentions = []
        for i, s in enumerate(load_samples()):
            mentions.append(
                Mention(
                    source=s["source"],
                    native_id=f"demo-{i}",
                    brand=self.brand,
                    kind=s.get("kind", "post"),
                    title=s.get("title"),
                    text=s["text"],
                    created_at=now - timedelta(hours=s.get("hours_ago", i * 3)),
                    url=s.get("url"),
                    rating=s.get("rating"),
                    author=Author(source=s["source"], handle=s["author"], reach=s.get("reach"),
                                  reach_kind=s.get("reach_kind")),
                )
            )
        return FetchResult(mentions, "done")
