"""SQL for advocate aggregates and the pages that read them: ``store.advocacy``.

Writes run in the store's short transactions. The effective label of a mention is a
user's newest correction, else the current model's label (rows with status other than
'ok' count as unclassified). Duplicates (``duplicate_of``) and off-topic mentions
(``monitor.relevance``) are left out of every figure.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, cast

from monitor.store._sql import add_filters, chunks, like_pattern, marks
from monitor.store.rows import (
    AuthorListing,
    AuthorRow,
    AuthorStats,
    FoundMention,
    MentionBrief,
    StanceTuple,
    TimelineRow,
    Watermark,
    WeeklyRow,
)

if TYPE_CHECKING:
    from monitor.store import Store

_FIXED = ("(SELECT k.label FROM corrections k WHERE k.mention_id = m.id AND k.field = '{f}' "
          "ORDER BY k.id DESC LIMIT 1)")
_ADV = f"COALESCE({_FIXED.format(f='advocacy')}, CASE WHEN c.status = 'ok' THEN c.advocacy END)"
_SENT = f"COALESCE({_FIXED.format(f='sentiment')}, CASE WHEN c.status = 'ok' THEN c.sentiment END)"
# a mention is off topic (monitor.relevance) by a user's newest relevance mark, else by the model's score
# (0 or 1 on both backends: PostgreSQL mixes no boolean with an integer)
OFF_TOPIC = ("COALESCE((SELECT CASE WHEN k.label = 'not_about' THEN 1 ELSE 0 END FROM corrections k "
             "WHERE k.mention_id = m.id AND k.field = 'relevance' ORDER BY k.id DESC LIMIT 1), c.off_topic, 0)")
ON_TOPIC = f"{OFF_TOPIC} = 0"
_SIGNAL = "CASE WHEN m.kind IN ('review', 'support') THEN 'transactional' ELSE 'relationship' END"
WEEK = "date({col}, 'weekday 0', '-6 days')"  # the Monday of the row's ISO week


def weekly_sql(where: str, period: str = WEEK.format(col="m.created_at")) -> str:
    """advocacy_weekly's rows of the mentions ``where`` selects; ``period`` (the ``week``
    column) is the Monday of each mention's week, or e.g. its day (``date(m.created_at)``)."""
    return (
        f"WITH s AS (SELECT m.brand, {period} AS week, m.source, "
        f"{_SIGNAL} AS signal, m.kind, m.rating, m.score, {_ADV} AS adv, {_SENT} AS sent "
        "FROM mentions m LEFT JOIN classifications c ON c.mention_id = m.id AND c.model = :model "
        f"WHERE m.duplicate_of IS NULL AND {ON_TOPIC} AND {where}) "
        "SELECT brand, week, source, signal, 'text' AS basis, count(*) AS mentions, count(adv) AS classified, "
        "total(adv = 'promoter') AS promoters, total(adv = 'none') AS passives, "
        "total(adv = 'detractor') AS detractors, "
        "total(sent = 'positive') AS positive, total(sent = 'neutral') AS neutral, "
        "total(sent = 'negative') AS negative "
        "FROM s GROUP BY brand, week, source, signal "
        "UNION ALL SELECT brand, week, source, signal, 'stars', count(*), count(*), total(rating = 5), "
        "total(rating = 4), total(rating <= 3), 0, 0, 0 FROM s WHERE kind = 'review' AND rating BETWEEN 1 AND 5 "
        "GROUP BY brand, week, source, signal "
        "UNION ALL SELECT brand, week, source, signal, 'survey', count(*), count(*), total(score >= 9), "
        "total(score BETWEEN 7 AND 8), total(score <= 6), 0, 0, 0 FROM s WHERE score BETWEEN 0 AND 10 "
        "GROUP BY brand, week, source, signal"
    )


WEEKLY_COLS = ("brand", "week", "source", "signal", "basis", "mentions", "classified", "promoters", "passives",
                "detractors", "positive", "neutral", "negative")



def _with_retained(live: str) -> str:
    """The live mentions' weekly rows plus the figures kept of deleted ones (``retained_daily``:
    retention and erasures keep the counts, not the mentions) for the same brand and week."""
    counts = WEEKLY_COLS[5:]
    return (f"SELECT brand, week, source, signal, basis, {', '.join(f'sum({c}) AS {c}' for c in counts)} FROM ("
            f"{live} UNION ALL SELECT brand, {WEEK.format(col='day')} AS week, source, signal, basis, "
            f"{', '.join(counts)} FROM retained_daily WHERE brand = :brand AND day >= :start "
            "AND day < date(:start, '+7 days')) GROUP BY brand, week, source, signal, basis")


_STANCE_SELECT = (
    "SELECT m.id, m.author_id, COALESCE(l.person_id, m.author_id) AS person_id, m.brand, m.source, m.kind, m.rating, "
    f"m.created_at, {_ADV} AS advocacy, {_SENT} AS sentiment, "
    "(SELECT 1 FROM corrections k WHERE k.mention_id = m.id AND k.field = 'advocacy' LIMIT 1) AS corrected, "
    "m.score FROM mentions m LEFT JOIN classifications c ON c.mention_id = m.id AND c.model = ? "
    "LEFT JOIN author_links l ON l.author_id = m.author_id "
    f"WHERE m.duplicate_of IS NULL AND {ON_TOPIC} AND m.author_id IS NOT NULL "
)

STATS_COLS = ("person_id", "brand", "source", "handle", "sources", "mentions", "promoters", "passives", "detractors",
              "reach", "first_at", "last_at", "last_promoter_at", "last_detractor_at", "weeks_active",
              "promoter_weeks", "detractor_weeks", "stance", "flips", "last_flip", "last_flip_at", "advocate_score",
              "detractor_score", "flag", "explain", "updated_at")

SORTS = {"score": "{score}", "mentions": "s.mentions", "promoters": "s.promoters", "detractors": "s.detractors",
         "reach": "s.reach", "last": "s.last_at", "handle": "s.handle", "flips": "s.flips"}


class AdvocacyStore:
    """Advocate aggregates (``author_stats``, ``advocacy_weekly``, ``aggregate_state``) and
    the reads of the advocates, author and mentions pages."""

    def __init__(self, store: Store) -> None:
        self._store = store

    # -------------------------------------------------------------------- state

    def get_state(self, name: str) -> str | None:
        rows = self._store.query("SELECT value FROM aggregate_state WHERE name = ?", [name])
        return cast("str | None", rows[0]["value"]) if rows else None

    def set_state(self, values: Mapping[str, Any]) -> None:
        with self._store.transaction():
            for name, value in values.items():
                self._store.execute(
                    "INSERT INTO aggregate_state (name, value) VALUES (?, ?) "
                    "ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                    [name, None if value is None else str(value)])

    def newest_model(self) -> str | None:
        rows = self._store.query("SELECT model FROM classifications ORDER BY id DESC LIMIT 1")
        return str(rows[0]["model"]) if rows else None

    def high_water(self) -> Watermark:
        row = self._store.query(
            "SELECT (SELECT COALESCE(max(id), 0) FROM mentions) AS m, "
            "(SELECT COALESCE(max(id), 0) FROM classifications) AS c, "
            "(SELECT COALESCE(max(id), 0) FROM corrections) AS k")[0]
        return {"m": row["m"], "c": row["c"], "k": row["k"]}

    def changed_since(self, wm: Mapping[str, int]) -> tuple[set[tuple[str, str]], set[int]]:
        """(brand, week) keys and author ids touched by mentions, classifications or
        corrections newer than the watermarks."""
        rows = self._store.query(
            f"SELECT m.brand, {WEEK.format(col='m.created_at')} AS week, m.author_id FROM mentions m WHERE m.id > ? "
            f"UNION SELECT m.brand, {WEEK.format(col='m.created_at')}, m.author_id FROM classifications c "
            "JOIN mentions m ON m.id = c.mention_id WHERE c.id > ? "
            f"UNION SELECT m.brand, {WEEK.format(col='m.created_at')}, m.author_id FROM corrections k "
            "JOIN mentions m ON m.id = k.mention_id WHERE k.id > ?",
            [wm["m"], wm["c"], wm["k"]],
        )
        return {(r["brand"], r["week"]) for r in rows}, {r["author_id"] for r in rows if r["author_id"] is not None}

    # ------------------------------------------------------------------- weekly

    def rebuild_weekly(self, model: str | None, keys: Iterable[tuple[str, str]] | None = None) -> int:
        """Recompute advocacy_weekly: everything (keys None) or the given (brand, week) keys."""
        store = self._store
        insert = (f"INSERT OR REPLACE INTO advocacy_weekly ({', '.join(WEEKLY_COLS)}) "
                  f"SELECT {', '.join(WEEKLY_COLS)} FROM ({{q}})")
        n = 0
        if keys is None:  # every group, each in its own short transaction; stale groups go
            keys = {(r["brand"], r["week"]) for r in store.query(
                f"SELECT DISTINCT brand, {WEEK.format(col='created_at')} AS week FROM mentions UNION "
                f"SELECT DISTINCT brand, {WEEK.format(col='day')} FROM retained_daily")}
            stale = {(r["brand"], r["week"])
                     for r in store.query("SELECT DISTINCT brand, week FROM advocacy_weekly")} - keys
            with store.transaction():
                store.executemany("DELETE FROM advocacy_weekly WHERE brand = ? AND week = ?", sorted(stale))
        for brand, week in sorted(set(keys)):
            with store.transaction():
                store.execute("DELETE FROM advocacy_weekly WHERE brand = ? AND week = ?", [brand, week])
                n += store.execute(
                    insert.format(q=_with_retained(weekly_sql(
                        "m.brand = :brand AND m.created_at >= :start AND m.created_at < date(:start, '+7 days')"))),
                    {"model": model, "brand": brand, "start": week}).rowcount
        return n

    def weekly(self, brand: str | None = None, since_week: str | None = None) -> list[WeeklyRow]:
        where: list[str] = ["1 = 1"]
        params: list[Any] = []
        add_filters(where, params, ("brand = ?", brand), ("week >= ?", since_week))
        return cast("list[WeeklyRow]", self._store.query(
            f"SELECT * FROM advocacy_weekly WHERE {' AND '.join(where)} ORDER BY week", params))

    def brands_in_data(self) -> list[str]:
        return [r["brand"] for r in self._store.query("SELECT DISTINCT brand FROM advocacy_weekly ORDER BY brand")]

    # ------------------------------------------------------------- author stats

    def stance_rows_all(self, model: str | None) -> Iterator[StanceTuple]:
        """Every authored mention as a tuple, ordered by author: (id, author_id, person_id,
        brand, source, kind, rating, created_at, advocacy, sentiment, corrected, score). Streams
        from its own read-only connection, so the store's writes can go on meanwhile."""
        reader = self._store.open_reader()
        try:
            cur = reader.execute(_STANCE_SELECT + "ORDER BY m.author_id", [model])
            while True:
                batch = cur.fetchmany(5000)
                if not batch:
                    return
                yield from batch
        finally:
            reader.close()

    def members(self, person_id: int) -> list[int]:
        rows = self._store.query("SELECT author_id FROM author_links WHERE person_id = ?", [person_id])
        return sorted({person_id, *(r["author_id"] for r in rows)})

    def stance_rows_for(self, model: str | None, person_id: int, brand: str | None = None) -> list[StanceTuple]:
        """A person's (all their linked handles') authored mentions, oldest first, as
        ``stance_rows_all`` tuples."""
        ids = self.members(person_id)
        sql = _STANCE_SELECT + f"AND m.author_id IN ({marks(len(ids))}) " + ("AND m.brand = ? " if brand else "")
        return cast("list[StanceTuple]", self._store.fetchall(
            sql + "ORDER BY m.created_at, m.id", [model, *ids, *([brand] if brand else [])]))

    def timeline(self, model: str | None, person_id: int, brand: str | None = None,
                 limit: int = 200) -> tuple[list[TimelineRow], int]:
        """The newest ``limit`` mentions of a person (all their linked handles), and how many there are."""
        ids = self.members(person_id)
        where = f"m.duplicate_of IS NULL AND m.author_id IN ({marks(len(ids))})" + (" AND m.brand = ?" if brand else "")
        params = [*ids, *([brand] if brand else [])]
        total = self._store.count(f"SELECT count(*) FROM mentions m WHERE {where}", params)
        rows = self._store.query(
            "SELECT m.id, m.author_id, m.brand, m.source, m.kind, m.rating, m.created_at, m.title, m.text, m.url, "
            f"{_ADV} AS advocacy, {_SENT} AS sentiment, "
            "(SELECT 1 FROM corrections k WHERE k.mention_id = m.id AND k.field = 'advocacy' LIMIT 1) AS corrected, "
            "m.score FROM mentions m LEFT JOIN classifications c ON c.mention_id = m.id AND c.model = ? "
            f"WHERE {where} ORDER BY m.created_at DESC, m.id DESC LIMIT ?",
            [model, *params, limit])
        return cast("list[TimelineRow]", rows), total

    def authors_info(self, author_ids: Sequence[int]) -> dict[int, AuthorRow]:
        out: dict[int, AuthorRow] = {}
        for chunk in chunks(list(author_ids)):
            for r in self._store.query(f"SELECT * FROM authors WHERE id IN ({marks(len(chunk))})", chunk):
                out[r["id"]] = cast("AuthorRow", r)
        return out

    def replace_author_stats(self, rows: Sequence[Mapping[str, Any]], clear_persons: Iterable[int] = ()) -> None:
        """Write stats rows (each with every ``STATS_COLS`` key); persons in ``clear_persons``
        lose their old rows first (one transaction)."""
        sql = (f"INSERT OR REPLACE INTO author_stats ({', '.join(STATS_COLS)}) "
               f"VALUES ({marks(len(STATS_COLS))})")
        with self._store.transaction():
            for p in clear_persons:
                self._store.execute("DELETE FROM author_stats WHERE person_id = ?", [p])
            self._store.executemany(sql, [[r[c] for c in STATS_COLS] for r in rows])

    def delete_stats_before(self, stamp: str) -> None:
        """Drop stats rows not rewritten since ``stamp`` (persons left without mentions)."""
        with self._store.transaction():
            self._store.execute("DELETE FROM author_stats WHERE updated_at < ?", [stamp])

    def all_author_stats(self) -> Iterator[AuthorStats]:
        cur = self._store.execute(f"SELECT {', '.join(STATS_COLS)} FROM author_stats")
        while True:
            batch = cur.fetchmany(5000)
            if not batch:
                return
            for row in batch:
                yield cast("AuthorStats", dict(zip(STATS_COLS, row, strict=True)))

    def update_scores(self, rows: Sequence[tuple[float, float, str | None, str, str, int]]) -> None:
        """rows: (advocate_score, detractor_score, flag, explain, brand, person_id)."""
        with self._store.transaction():
            self._store.executemany(
                "UPDATE author_stats SET advocate_score = ?, detractor_score = ?, flag = ?, explain = ? "
                "WHERE brand = ? AND person_id = ?", rows)

    # ------------------------------------------------------------------ reading

    def list_authors(self, *, kind: str = "advocate", brand: str | None = None, source: str | None = None,
                     flag: str | None = None, q: str | None = None, mark: str | None = None,
                     min_score: float | None = None, flipped: bool = False, sort: str = "score", desc: bool = True,
                     limit: int = 50, offset: int = 0) -> list[AuthorListing]:
        """Author stats joined with marks, sorted and filtered. ``kind`` picks which score 'score' means."""
        score = "s.advocate_score" if kind == "advocate" else "s.detractor_score"
        where: list[str] = [f"{score} > 0"]  # a person with no such mention is neither
        params: list[Any] = []
        add_filters(where, params, ("s.brand = ?", brand))
        if source:
            where.append("(s.source = ? OR instr(',' || s.sources || ',', ',' || ? || ',') > 0)")
            params += [source, source]
        add_filters(where, params, ("s.flag = ?", flag), ("s.handle LIKE ? ESCAPE '\\'", q and like_pattern(q)))
        if min_score is not None:
            where.append(f"{score} >= ?")
            params.append(min_score)
        if flipped:
            where.append("s.flips > 0")
        if mark == "none":
            where.append("NOT EXISTS (SELECT 1 FROM author_marks k WHERE k.author_id = s.person_id "
                         "AND k.brand = s.brand)")
        elif mark:
            where.append("EXISTS (SELECT 1 FROM author_marks k WHERE k.author_id = s.person_id AND k.brand = s.brand "
                         "AND k.mark = ?)")
            params.append(mark)
        order = SORTS.get(sort, "{score}").format(score=score)
        direction = "DESC" if desc else "ASC"
        params += [limit, offset]
        return cast("list[AuthorListing]", self._store.query(
            f"SELECT s.*, {score} AS score, (SELECT group_concat(k.mark) FROM author_marks k "
            f"WHERE k.author_id = s.person_id AND k.brand = s.brand) AS marks FROM author_stats s "
            f"WHERE {' AND '.join(where)} ORDER BY {order} {direction}, s.person_id LIMIT ? OFFSET ?",
            params,
        ))

    def person_stats(self, person_id: int) -> list[AuthorStats]:
        return cast("list[AuthorStats]", self._store.query(
            "SELECT * FROM author_stats WHERE person_id = ? ORDER BY brand", [person_id]))

    def person_of(self, author_id: int) -> int:
        rows = self._store.query("SELECT person_id FROM author_links WHERE author_id = ?", [author_id])
        return int(rows[0]["person_id"]) if rows else author_id

    def mentions_by_id(self, ids: Sequence[int]) -> dict[int, MentionBrief]:
        out: dict[int, MentionBrief] = {}
        for chunk in chunks(list(ids)):
            for r in self._store.query(
                    "SELECT m.id, m.title, m.text, m.url, m.source, m.kind, m.rating, m.brand, m.created_at "
                    f"FROM mentions m WHERE m.id IN ({marks(len(chunk))})", chunk):
                out[r["id"]] = cast("MentionBrief", r)
        return out

    def search_mentions(self, model: str | None, *, q: str | None = None, brand: str | None = None,
                        source: str | None = None, advocacy: str | None = None, sentiment: str | None = None,
                        kind: str | None = None, ids: Sequence[int] | None = None, limit: int = 50,
                        offset: int = 0, since: str | None = None, until: str | None = None,
                        relevance: str = "relevant") -> list[FoundMention]:
        """Newest first; ``q`` matches text, title or author handle (substring, case-insensitive); ``ids``
        keeps only those mentions; ``since``/``until`` (stored ISO times): created in that window (an
        alert's). ``corrected`` / ``sentiment_corrected``: a user corrected that label. ``relevance``:
        ``relevant`` (the default) leaves off-topic mentions out, ``off_topic`` lists only them, ``all`` both."""
        where: list[str] = ["m.duplicate_of IS NULL"]
        if relevance == "relevant":
            where.append(ON_TOPIC)
        elif relevance == "off_topic":
            where.append(f"{OFF_TOPIC} = 1")
        params: list[Any] = [model]
        # the plain filters on the mention's own columns, also what a window of the newest is cut from
        plain: list[str] = []
        plain_params: list[Any] = []
        add_filters(plain, plain_params, ("brand = ?", brand), ("source = ?", source), ("kind = ?", kind),
                    ("created_at >= ?", since), ("created_at <= ?", until))
        where += [f"m.{c}" for c in plain]
        params += plain_params
        if ids is not None:
            ids = [int(i) for i in ids][:1000]
            where.append(f"m.id IN ({marks(len(ids)) or 'NULL'})")
            params += ids
        if q:
            like = like_pattern(q)
            where.append("(m.text LIKE ? ESCAPE '\\' OR m.title LIKE ? ESCAPE '\\' OR a.handle LIKE ? ESCAPE '\\')")
            params += [like, like, like]
        outer: list[str] = []
        outer_params: list[Any] = []
        add_filters(outer, outer_params, ("advocacy = ?", advocacy), ("sentiment = ?", sentiment))
        inner = ("SELECT m.id, m.brand, m.source, m.kind, m.title, m.text, m.url, m.rating, m.created_at, "
                 f"m.author_id, a.handle AS author, c.advocacy_p, c.sentiment_p, c.model, {_ADV} AS advocacy, "
                 f"{_SENT} AS sentiment, "
                 "(SELECT 1 FROM corrections k WHERE k.mention_id = m.id AND k.field = 'advocacy' LIMIT 1) "
                 "AS corrected, "
                 "(SELECT 1 FROM corrections k WHERE k.mention_id = m.id AND k.field = 'sentiment' LIMIT 1) "
                 f"AS sentiment_corrected, m.score, c.relevance, {OFF_TOPIC} AS off_topic "
                 "FROM mentions m LEFT JOIN authors a ON a.id = m.author_id "
                 "LEFT JOIN classifications c ON c.mention_id = m.id AND c.model = ? "
                 f"WHERE {' AND '.join(where)}")
        # on PostgreSQL, newest first by windows unless the plain plan is good: no filter, or the brand alone
        # (its index); measured at 200k: {} 3 ms direct, 28 windowed; a label filter 345 direct, 19 windowed
        simple = not outer and not q and plain in ([], ["brand = ?"])
        if self._store.postgres and ids is None and not simple:
            return self._search_in_windows(inner, params, outer, outer_params, plain, plain_params, limit, offset)
        sql = (f"SELECT * FROM ({inner}) WHERE {' AND '.join(outer) or '1 = 1'} "
               "ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?")
        return cast("list[FoundMention]", self._store.query(sql, [*params, *outer_params, limit, offset]))

    def _search_in_windows(self, inner: str, params: list[Any], outer: list[str], outer_params: list[Any],
                           plain: list[str], plain_params: list[Any], limit: int,
                           offset: int) -> list[FoundMention]:
        """``search_mentions`` on PostgreSQL: the newest mentions first, window by window.

        SQLite walks the (brand, created_at) index newest first and stops at the page's last
        row. PostgreSQL cannot estimate the label and relevance filters (a user's correction
        wins over the model: subqueries), guesses that almost nothing passes them, and so
        filters and sorts every mention of the brand (2.8 s at a million). Here each query
        filters one window of the newest mentions (its bounds read from the index), growing
        fourfold, until the page is full. Where two windows found under a tenth of the page
        (a rare match), the rest is one query, as before: about one full pass."""
        keep = " AND ".join(outer) or "1 = 1"
        cut = " AND ".join(plain) or "1 = 1"
        need = offset + limit
        found: list[FoundMention] = []
        upper: tuple[str, int] | None = None
        window, rounds = 2_000, 0
        while len(found) < need:
            key = "" if upper is None else " AND (created_at, id) < (?, ?)"
            rare = rounds >= 2 and len(found) * 10 < need
            bound = [] if rare else self._store.query(
                f"SELECT created_at, id FROM mentions WHERE duplicate_of IS NULL AND {cut}{key} "
                "ORDER BY created_at DESC, id DESC LIMIT 1 OFFSET ?",
                [*plain_params, *(upper or ()), window - 1])
            rounds += 1
            # the window: between the bounds (the plain created_at terms let the index find it)
            span, span_params = "", []
            if upper is not None:
                span += " AND m.created_at <= ? AND (m.created_at, m.id) < (?, ?)"
                span_params += [upper[0], *upper]
            if bound:
                span += " AND m.created_at >= ? AND (m.created_at, m.id) >= (?, ?)"
                span_params += [bound[0]["created_at"], bound[0]["created_at"], bound[0]["id"]]
            sql = (f"SELECT * FROM ({inner}{span}) AS w WHERE {keep} "
                   "ORDER BY created_at DESC, id DESC LIMIT ?")
            rows = self._store.query(sql, [*params, *span_params, *outer_params, need - len(found)])
            found += cast("list[FoundMention]", rows)
            if not bound:  # that was the last window
                break
            upper = (bound[0]["created_at"], bound[0]["id"])
            window *= 4
        return found[offset:offset + limit]

    def author_flag(self, source: str, handle: str, brand: str) -> str | None:
        rows = self._store.query(
            "SELECT s.flag FROM authors a LEFT JOIN author_links l ON l.author_id = a.id "
            "JOIN author_stats s ON s.person_id = COALESCE(l.person_id, a.id) AND s.brand = ? "
            "WHERE a.source = ? AND a.handle = ?", [brand, source, handle])
        return cast("str | None", rows[0]["flag"]) if rows else None

    def mention_key(self, mention_id: int) -> tuple[str, str, int | None] | None:
        """(brand, week, author_id) of a mention: what its label feeds."""
        rows = self._store.query(
            f"SELECT brand, {WEEK.format(col='created_at')} AS week, author_id FROM mentions WHERE id = ?",
            [mention_id])
        return (rows[0]["brand"], rows[0]["week"], rows[0]["author_id"]) if rows else None
