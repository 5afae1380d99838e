"""Small helpers the store's modules share: timestamps as stored, optional filters, LIKE."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

CHUNK = 500  # ids per ``IN (...)``: SQLite before 3.32 allows 999 parameters a query


class Cursor(Protocol):
    """What the store's modules use of a cursor (sqlite3's, or ``_pg.PgCursor``)."""

    @property
    def rowcount(self) -> int: ...
    @property
    def lastrowid(self) -> int | None: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...
    def fetchmany(self, size: int) -> list[Any]: ...


def iso(dt: datetime) -> str:
    """A datetime as stored: ISO 8601, UTC, seconds (a naive one is taken as UTC)."""
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).isoformat(timespec="seconds")


def parse_iso(value: str) -> datetime:
    """A stored timestamp as a timezone-aware datetime (a naive one is taken as UTC)."""
    dt = datetime.fromisoformat(value)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def add_filters(where: list[str], params: list[Any], *filters: tuple[str, Any]) -> None:
    """Appends each (condition with one ``?``, value) whose value is set (not None or empty)."""
    for condition, value in filters:
        if value:
            where.append(condition)
            params.append(value)


def like_pattern(text: str) -> str:
    """A LIKE pattern (with ESCAPE '\\') matching ``text`` anywhere, its \\, % and _ taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def marks(n: int) -> str:
    """``?,?,...``: n placeholders for ``IN (...)``."""
    return ",".join("?" * n)


def chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
