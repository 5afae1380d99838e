"""Mastodon: hashtag timelines (no login, where the instance allows it: Mastodon 4.5+
can require login, which then reads as an auth failure in the source's health) and
status search with a token (``GET /api/v2/search?type=statuses``; full-text only on
instances that enabled it).

Queries: ``"tag:<hashtag>"`` and ``"search:<term>"``. Cursor: ``{"min_id": "<id>"}``,
the newest status stored; ``min_id`` asks for the statuses right after it, so pages
walk forward in time and nothing is skipped. Status ids are snowflakes
(milliseconds << 16), so a date converts to a ``min_id`` for backfill. Followers count
comes with every status: no extra request for reach.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from monitor.collect._common import ITEM_ERRORS, ConfiguredSource, dump_state, parse_time, read_cursor, strip_html
from monitor.errors import CursorError, MalformedResponseError
from monitor.records import Author, FetchResult, Mention

logger = logging.getLogger(__name__)

PAGE = 40
FIRST_RUN_LOOKBACK = timedelta(days=2)
MAX_CLOCK_SKEW = timedelta(hours=1)


class _Account(BaseModel):
    model_config = ConfigDict(extra="ignore")
    acct: str
    display_name: str | None = None
    url: str | None = None
    followers_count: int | None = None


class _Status(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: str
    created_at: str
    content: str
    url: str | None = None
    uri: str | None = None
    language: str | None = None
    spoiler_text: str | None = None
    in_reply_to_id: str | None = None
    replies_count: int | None = None
    reblogs_count: int | None = None
    favourites_count: int | None = None
    account: _Account
    reblog: dict[str, Any] | None = None


class _Cursor(BaseModel):
    model_config = ConfigDict(extra="ignore")
    min_id: str = Field(pattern=r"^[0-9]{1,30}$")


def snowflake_for(when: datetime) -> str:
    return str(int(when.timestamp() * 1000) << 16)


def _status_id(value: str, latest: int) -> int:
    """A status id as the number it is; ValueError for one that is not a snowflake up to ``latest``
    (it would move the cursor past every status to come)."""
    if not value.isascii() or not value.isdigit() or len(value) > 30 or not 0 < int(value) <= latest:
        raise ValueError("status id is not a snowflake of the past")
    return int(value)


class MastodonSource(ConfiguredSource):
    type = "mastodon"

    def queries(self) -> list[str]:
        tags = self.settings.hashtags or ["".join(t.strip('"').split()) for t in self.terms.include]
        out = [f"tag:{t.lstrip('#')}" for t in tags]
        if self.settings.search:
            out += [f"search:{t}" for t in self.terms.include]
        return out

    def _headers(self) -> dict[str, str] | None:
        token = self.settings.token
        return {"Authorization": f"Bearer {token.get_secret_value()}"} if token is not None else None

    def fetch(self, query: str, cursor: str | None) -> FetchResult:
        kind, _, value = query.partition(":")
        min_id = self._min_id(cursor)  # before any request: CursorError when unreadable
        base = self.settings.instance
        if kind == "tag":
            data = self.http.get_json(f"{base}/api/v1/timelines/tag/{quote(value, safe='')}",
                                      params={"limit": PAGE, "min_id": min_id}, headers=self._headers())
            statuses = data
        else:
            data = self.http.get_json(f"{base}/api/v2/search",
                                      params={"q": value, "type": "statuses", "limit": PAGE, "min_id": min_id,
                                              "resolve": "false"}, headers=self._headers())
            statuses = data.get("statuses") if isinstance(data, dict) else None
        if not isinstance(statuses, list):
            raise MalformedResponseError(f"{self.key}: expected a list of statuses")
        mentions, skipped, newest = [], 0, int(min_id)
        latest = int(snowflake_for(self.now() + MAX_CLOCK_SKEW))
        for raw in statuses:
            try:
                status = _Status.model_validate(raw)
                newest = max(newest, _status_id(status.id, latest))
                mention = self._to_mention(status)
            except ITEM_ERRORS as exc:
                skipped += 1
                logger.warning("%s: skipped a malformed status (%s)", self.key, type(exc).__name__)
                continue
            if mention is not None:
                mentions.append(mention)
        done = len(statuses) < PAGE
        return FetchResult(mentions, dump_state({"min_id": str(newest)}), done=done, skipped=skipped)

    def _min_id(self, cursor: str | None) -> str:
        state = read_cursor(_Cursor, cursor, self.key)
        if state is None:
            return snowflake_for(self.now() - FIRST_RUN_LOOKBACK)
        if int(state.min_id) > int(snowflake_for(self.now() + MAX_CLOCK_SKEW)):
            raise CursorError(f"{self.key}: unreadable cursor (min_id is in the future)")
        return state.min_id

    def _to_mention(self, s: _Status) -> Mention | None:
        if s.reblog is not None:
            return None  # a boost: the original is collected on its own
        text = strip_html(s.content)
        if s.spoiler_text:
            text = f"{strip_html(s.spoiler_text)}\n{text}".strip()
        if not text:
            return None
        acct = s.account.acct
        return Mention(
            source=self.type,
            native_id=s.uri or f"{self.settings.instance}/statuses/{s.id}",
            brand=self.brand,
            kind="comment" if s.in_reply_to_id else "post",
            text=text,
            created_at=parse_time(s.created_at),
            url=s.url if s.url and s.url.startswith(("https://", "http://")) else None,
            lang=s.language,
            author=Author(source=self.type, handle=acct, display_name=s.account.display_name or None,
                          url=s.account.url, reach=s.account.followers_count,
                          reach_kind="followers" if s.account.followers_count is not None else None),
            extra={k: v for k, v in {"replies": s.replies_count, "boosts": s.reblogs_count,
                                     "favourites": s.favourites_count}.items() if v is not None},
        )

    def cursor_since(self, query: str, since: datetime) -> str | None:
        return dump_state({"min_id": snowflake_for(since)})
