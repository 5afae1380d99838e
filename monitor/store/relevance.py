"""SQL for relevance (``monitor.relevance``): ``store.relevance``.

The web page's "not about us" marks are label corrections of the field ``relevance``
(``about`` / ``not_about``; ``store.accounts.add_correction``), so they are stored, listed
and exported like every correction. Here: the marks with the vectors of their mentions (the
examples a brand's model learns from), a brand's stored vectors, and rescoring them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TypedDict, cast

if TYPE_CHECKING:
    from monitor.store import Store


class MarkVector(TypedDict):
    brand: str
    label: str  # about, not_about
    embedding: bytes


class ScoredVector(TypedDict):
    id: int  # the classification's id
    mention_id: int
    created_at: str
    source: str
    title: str | None
    text: str
    embedding: bytes | None
    relevance: float | None
    off_topic: int


class RelevanceStore:
    def __init__(self, store: Store) -> None:
        self._store = store

    def marks(self, model: str) -> list[MarkVector]:
        """Each mention's newest relevance mark with the vector ``model`` kept of it (marks on
        mentions the model has no vector of are left out: nothing to learn from)."""
        return cast("list[MarkVector]", self._store.query(
            "SELECT m.brand, k.label, c.embedding FROM corrections k JOIN mentions m ON m.id = k.mention_id "
            "JOIN classifications c ON c.mention_id = m.id AND c.model = ? "
            "WHERE k.field = 'relevance' AND c.embedding IS NOT NULL AND k.id = (SELECT max(id) FROM corrections "
            "k2 WHERE k2.mention_id = k.mention_id AND k2.field = 'relevance') ORDER BY k.id", [model]))

    def vectors(self, brand: str, model: str) -> list[ScoredVector]:
        """``model``'s classifications of ``brand``'s mentions with their vectors and scores."""
        return cast("list[ScoredVector]", self._store.query(
            "SELECT c.id, c.mention_id, m.created_at, m.source, m.title, m.text, c.embedding, c.relevance, "
            "c.off_topic FROM classifications c JOIN mentions m ON m.id = c.mention_id "
            "WHERE m.brand = ? AND c.model = ? AND m.duplicate_of IS NULL ORDER BY m.created_at DESC, m.id DESC",
            [brand, model]))

    def save_scores(self, scores: Sequence[tuple[int, float | None, bool]]) -> None:
        """(classification id, score, off topic) in one transaction."""
        with self._store.transaction():
            self._store.conn.executemany(
                "UPDATE classifications SET relevance = ?, off_topic = ? WHERE id = ?",
                [(s, int(off), cid) for cid, s, off in scores])
