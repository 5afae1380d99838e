"""SQL for themes (``monitor topics``, the Topics page): ``store.themes``.

Reads the sentence vectors kept with the classifications (``classifications.embedding``)
of one brand and model in a time window, with each mention's effective labels (a user's
correction first, as everywhere); writes the themes found, so a theme that persists
keeps its id. Duplicates (``duplicate_of``) and off-topic mentions are left out, as from every figure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, TypedDict, cast

from monitor.store._sql import iso
from monitor.store.advocacy import _ADV, _SENT, ON_TOPIC

if TYPE_CHECKING:
    from monitor.store import Store


class VectorMention(TypedDict):
    """A mention with its sentence vector and effective labels (None: not judged)."""

    id: int
    created_at: str
    title: str | None
    text: str
    url: str | None
    sentiment: str | None
    advocacy: str | None
    embedding: bytes


class ThemeRow(TypedDict):
    """A stored theme: its latest label, centroid (``monitor.vectors`` blob) and size."""

    id: int
    brand: str
    model: str
    label: str
    centroid: bytes
    size: int
    first_seen: str
    last_seen: str


class VectorModel(TypedDict):
    model: str
    vectors: int


@dataclass(frozen=True)
class ThemeUpdate:
    """A theme as found now: ``id`` the stored theme it continues (None: a new one)."""

    id: int | None
    label: str
    centroid: bytes
    size: int


class ThemeStore:
    def __init__(self, store: Store) -> None:
        self._store = store

    def vector_models(self, brand: str) -> list[VectorModel]:
        """The models that kept vectors of ``brand``'s mentions, most vectors first."""
        return cast("list[VectorModel]", self._store.query(
            "SELECT c.model, count(*) AS vectors FROM classifications c JOIN mentions m ON m.id = c.mention_id "
            "WHERE m.brand = ? AND c.embedding IS NOT NULL AND c.status = 'ok' GROUP BY c.model "
            "ORDER BY vectors DESC, c.model", [brand]))

    def vectors(self, brand: str, model: str, since: datetime, until: datetime, *,
                advocacy: str | None = None, limit: int | None = None) -> list[VectorMention]:
        """``brand``'s mentions created in [since, until) that ``model`` judged and kept a
        vector of, newest first (at most ``limit``); ``advocacy``: only those whose effective
        stance is this (promoter, detractor)."""
        where = ["m.brand = ?", "m.created_at >= ?", "m.created_at < ?", "m.duplicate_of IS NULL", ON_TOPIC,
                 "c.embedding IS NOT NULL", "c.status = 'ok'"]
        params: list[object] = [model, brand, iso(since), iso(until)]
        if advocacy:
            where.append(f"{_ADV} = ?")
            params.append(advocacy)
        sql = (f"SELECT m.id, m.created_at, m.title, m.text, m.url, {_SENT} AS sentiment, {_ADV} AS advocacy, "
               "c.embedding FROM mentions m JOIN classifications c ON c.mention_id = m.id AND c.model = ? "
               f"WHERE {' AND '.join(where)} ORDER BY m.created_at DESC, m.id DESC")
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        return cast("list[VectorMention]", self._store.query(sql, params))

    def stored(self, brand: str, model: str) -> list[ThemeRow]:
        """The themes found before for ``brand`` with ``model``'s vectors, oldest first."""
        return cast("list[ThemeRow]", self._store.query(
            "SELECT id, brand, model, label, centroid, size, first_seen, last_seen FROM themes "
            "WHERE brand = ? AND model = ? ORDER BY id", [brand, model]))

    def save(self, brand: str, model: str, themes: Sequence[ThemeUpdate]) -> list[int]:
        """Store the themes found now, in one transaction: a continued theme gets its new label,
        centroid and size, a new one a new id. Returns each theme's id, in order."""
        store = self._store
        now = iso(store.now())
        ids: list[int] = []
        with store.transaction():
            for t in themes:
                if t.id is not None and store.execute(
                        "UPDATE themes SET label = ?, centroid = ?, size = ?, last_seen = ? "
                        "WHERE id = ? AND brand = ? AND model = ?",
                        [t.label, t.centroid, t.size, now, t.id, brand, model]).rowcount:
                    ids.append(t.id)
                    continue
                cur = store.execute(
                    "INSERT INTO themes (brand, model, label, centroid, size, first_seen, last_seen) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)", [brand, model, t.label, t.centroid, t.size, now, now])
                ids.append(int(cur.lastrowid or 0))
        return ids
