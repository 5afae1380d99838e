"""SQL for data governance (``store.governance``): deleting mentions with every row derived
from them (retention, ``monitor forget``), keeping their figures as daily aggregates, the
record that an erasure happened, and the counts ``/metrics`` exposes.

Every table that refers to a mention: ``classifications``, ``corrections``, ``alert_holds``,
``alert_waits``, ``inbox_items`` (``mention_id``; an item's ``inbox_events`` and
``inbox_notes``), ``mentions.duplicate_of``, and ``alerts.mention_ids`` (a JSON list) whose
title, body and data quote the mention. Authors are referred to by ``mentions``,
``programme_members``, ``programme_events``, ``programme_rewards`` and ``referrals`` (the advocate
programme, whose status the ``author_marks`` view derives), ``author_links``, ``author_stats``
(``person_id``), ``reach_lookups`` and the noise-control keys of ``alert_state`` (``author=<id>``).
"""

from __future__ import annotations

import json
import secrets
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from monitor.store._sql import iso
from monitor.store.advocacy import WEEK, WEEKLY_COLS, weekly_sql
from monitor.store.rows import ErasureRow, ForgetCandidate, MetricsCounts, RetentionRun

if TYPE_CHECKING:
    from monitor.store import Store

IDS = "(SELECT CAST(value AS INTEGER) FROM json_each(:ids))"  # a JSON list of ids as an IN set (no parameter limit)
_COUNTS = WEEKLY_COLS[5:]  # mentions, classified, promoters, ... negative


class DryRun(Exception):
    """Raised inside a transaction to roll a dry run back."""


@dataclass
class Removal:
    """What deleting a batch of mentions did: rows per table, and what to recompute."""

    rows: Counter[str] = field(default_factory=Counter)
    weeks: set[tuple[str, str]] = field(default_factory=set)  # (brand, week) whose figures changed
    authors: set[int] = field(default_factory=set)  # authors whose stats to recompute

    def add(self, other: Removal) -> None:
        self.rows.update(other.rows)
        self.weeks |= other.weeks
        self.authors |= other.authors


class GovernanceStore:
    def __init__(self, store: Store) -> None:
        self._store = store

    # ------------------------------------------------------------------ retention

    def expired(self, brand: str, before: datetime, *, source_keys: Sequence[str] | None = None,
                exclude_keys: Sequence[str] = (), after_id: int = 0, limit: int = 500) -> list[int]:
        """Ids (ascending, above ``after_id``) of ``brand``'s mentions created before ``before``:
        of these source keys, or (None) of every key but ``exclude_keys``."""
        where = ["brand = :brand", "created_at < :before", "id > :after"]
        if source_keys is not None:
            where.append("source_key IN (SELECT value FROM json_each(:keys))")
        else:
            where.append("source_key NOT IN (SELECT value FROM json_each(:exclude))")
        rows = self._store.fetchall(
            f"SELECT id FROM mentions WHERE {' AND '.join(where)} ORDER BY id LIMIT :limit",
            {"brand": brand, "before": iso(before), "after": after_id, "limit": limit,
             "keys": json.dumps(list(source_keys or [])), "exclude": json.dumps(list(exclude_keys))})
        return [int(r[0]) for r in rows]

    def delete_mentions(self, ids: Sequence[int], model: str | None, reason: str, *,
                        dry_run: bool = False) -> Removal:
        """Delete these mentions and every row derived from them, in one transaction; their
        figures (as ``advocacy_weekly`` counts them with ``model``) go to ``retained_daily``.
        Alerts that quoted them lose their text (``reason`` says why) and the ids; a copy
        (``duplicate_of``) of a deleted original becomes the original. Authors left with no
        mention, mark or link go too. ``dry_run``: the same, rolled back (the counts are exact)."""
        out = Removal()
        if not ids:
            return out
        store = self._store
        p = {"ids": json.dumps([int(i) for i in ids]), "model": model}
        try:
            with store.transaction():
                for r in store.fetchall(
                        f"SELECT DISTINCT brand, {WEEK.format(col='created_at')}, author_id FROM mentions "
                        f"WHERE id IN {IDS}", p):
                    out.weeks.add((r[0], r[1]))
                    if r[2] is not None:
                        out.authors.add(int(r[2]))
                self._keep_figures(p)
                out.rows["alerts"] += self._strip_alerts(p, reason)
                out.rows["mentions (promoted from copy)"] += self._promote_copies(p, out)
                for table in ("classifications", "corrections", "alert_holds", "alert_waits"):
                    out.rows[table] += store.execute(f"DELETE FROM {table} WHERE mention_id IN {IDS}", p).rowcount
                # the inbox items of the mentions with their history and notes (the foreign keys would
                # cascade; deleted here so that the counts, the erasure record and a dry run name them)
                items = f"(SELECT id FROM inbox_items WHERE mention_id IN {IDS})"
                for table in ("inbox_notes", "inbox_events"):
                    out.rows[table] += store.execute(f"DELETE FROM {table} WHERE item_id IN {items}", p).rowcount
                out.rows["inbox_items"] += store.execute(f"DELETE FROM inbox_items WHERE mention_id IN {IDS}",
                                                         p).rowcount
                out.rows["mentions"] += store.execute(f"DELETE FROM mentions WHERE id IN {IDS}", p).rowcount
                out.rows["authors"] += self._drop_orphans(sorted(out.authors))
                if dry_run:
                    raise DryRun
        except DryRun:
            pass
        out.rows = Counter({k: v for k, v in out.rows.items() if v})
        return out

    def _keep_figures(self, p: dict[str, Any]) -> None:
        cols = ", ".join(WEEKLY_COLS)
        sums = ", ".join(f"{c} = retained_daily.{c} + excluded.{c}" for c in _COUNTS)
        self._store.execute(
            f"INSERT INTO retained_daily ({cols.replace('week', 'day')}) SELECT {cols} FROM "
            f"({weekly_sql(f'm.id IN {IDS}', period='date(m.created_at)')}) WHERE true "
            f"ON CONFLICT (brand, day, source, signal, basis) DO UPDATE SET {sums}", p)

    def _strip_alerts(self, p: dict[str, Any], reason: str) -> int:
        store = self._store
        rows = store.fetchall(
            "SELECT id, mention_ids, rule, brand FROM alerts a WHERE EXISTS (SELECT 1 FROM json_each(a.mention_ids) j "
            f"WHERE CAST(j.value AS INTEGER) IN {IDS})", p)
        gone = set(json.loads(p["ids"]))
        for alert_id, mention_ids, rule, brand in rows:
            left = [i for i in json.loads(mention_ids or "[]") if i not in gone]
            store.execute(
                "UPDATE alerts SET title = ?, body = ?, data = ?, mention_ids = ? WHERE id = ?",
                [f"[{brand or 'all brands'}] {rule}: alert text removed ({reason})",
                 f"The text of this alert quoted mention(s) that were deleted ({reason}).",
                 json.dumps({"removed": reason}), json.dumps(left), alert_id])
        return len(rows)

    def _promote_copies(self, p: dict[str, Any], out: Removal) -> int:
        """Copies of a deleted original that stay: the oldest becomes the original, the rest
        point at it (as if the deleted one had never been collected)."""
        store = self._store
        copies = store.fetchall(
            f"SELECT duplicate_of, id, brand, {WEEK.format(col='created_at')}, author_id FROM mentions "
            f"WHERE duplicate_of IN {IDS} AND id NOT IN {IDS} ORDER BY duplicate_of, created_at, id", p)
        promoted: dict[int, int] = {}
        for original, mid, brand, week, author_id in copies:
            if original not in promoted:
                promoted[original] = mid
                out.weeks.add((brand, week))
                if author_id is not None:
                    out.authors.add(int(author_id))
                store.execute("UPDATE mentions SET duplicate_of = NULL WHERE id = ?", [mid])
            else:
                store.execute("UPDATE mentions SET duplicate_of = ? WHERE id = ?", [promoted[original], mid])
        return len(promoted)

    def _drop_orphans(self, author_ids: Sequence[int]) -> int:
        store = self._store
        a = {"ids": json.dumps(list(author_ids))}
        orphan = (f"id IN {IDS} AND NOT EXISTS (SELECT 1 FROM mentions m WHERE m.author_id = authors.id) "
                  "AND NOT EXISTS (SELECT 1 FROM programme_members k WHERE k.person_id = authors.id) "
                  "AND NOT EXISTS (SELECT 1 FROM author_links l WHERE l.author_id = authors.id "
                  "OR l.person_id = authors.id)")
        gone = [int(r[0]) for r in store.fetchall(f"SELECT id FROM authors WHERE {orphan}", a)]
        if not gone:
            return 0
        g = {"ids": json.dumps(gone)}
        store.execute(f"DELETE FROM reach_lookups WHERE author_id IN {IDS}", g)
        store.execute(f"DELETE FROM author_stats WHERE person_id IN {IDS}", g)
        # the flags announced for them: an id SQLite hands out again must not count as announced
        store.execute(f"DELETE FROM handoff_flags WHERE person_id IN {IDS}", g)
        return int(store.execute(f"DELETE FROM authors WHERE id IN {IDS}", g).rowcount)

    def record_retention(self, *, dry_run: bool, mentions: int, rows: dict[str, int]) -> None:
        with self._store.transaction():
            self._store.execute("INSERT INTO retention_runs (ran_at, dry_run, mentions, rows) VALUES (?, ?, ?, ?)",
                                [iso(self._store.now()), int(dry_run), mentions, json.dumps(rows, sort_keys=True)])

    def retention_runs(self, limit: int = 10) -> list[RetentionRun]:
        """The latest retention passes, newest first."""
        return cast("list[RetentionRun]", self._store.query(
            "SELECT * FROM retention_runs ORDER BY id DESC LIMIT ?", [limit]))

    # --------------------------------------------------------------------- forget

    def authors_named(self, handle: str, source: str | None = None) -> list[ForgetCandidate]:
        """Authors with this handle (any case; on one source type when given), and every
        author a user linked to one of them (the same person), with their mention counts."""
        store = self._store
        # SQLite's lower() folds ASCII only: compare in Python, so "JÜRGEN" finds "jürgen"
        wanted = handle.casefold()
        rows = store.fetchall("SELECT id, handle FROM authors" + (" WHERE source = ?" if source else ""),
                              [source] if source else [])
        found = {int(i) for i, h in rows if str(h).casefold() == wanted}
        if found:
            ids = {"ids": json.dumps(sorted(found))}
            persons = {int(r[0]) for r in store.fetchall(
                f"SELECT person_id FROM author_links WHERE author_id IN {IDS} UNION SELECT id FROM authors "
                f"WHERE id IN {IDS}", ids)}
            found |= {int(r[0]) for r in store.fetchall(
                f"SELECT author_id FROM author_links WHERE person_id IN {IDS}", {"ids": json.dumps(sorted(persons))})}
            found |= persons
        return cast("list[ForgetCandidate]", store.query(
            "SELECT a.id, a.source, a.handle, (SELECT count(*) FROM mentions m WHERE m.author_id = a.id) AS mentions "
            f"FROM authors a WHERE a.id IN {IDS} ORDER BY a.source, a.handle, a.id",
            {"ids": json.dumps(sorted(found))}))

    def mentions_by(self, author_ids: Sequence[int], limit: int = 500) -> list[int]:
        return [int(r[0]) for r in self._store.fetchall(
            f"SELECT id FROM mentions WHERE author_id IN {IDS} ORDER BY id LIMIT :limit",
            {"ids": json.dumps(list(author_ids)), "limit": limit})]

    def erase_authors(self, author_ids: Sequence[int], *, subject_hash: str, source: str | None, mentions: int,
                      rows: dict[str, int], actor: str | None = None) -> dict[str, int]:
        """The last step of an erasure, after their mentions are gone: the authors and what
        refers to them, and the record that it happened, in ``erasures`` and in the audit log
        (``author.forget`` by ``actor``; counts only, no handle), in one transaction. Returns
        the rows deleted here per table."""
        store = self._store
        a = {"ids": json.dumps(list(author_ids))}
        out: Counter[str] = Counter()
        with store.transaction():
            # the programme's rows of the person; their referrals stay in the brand's figures, unlinked
            out["referrals"] += store.execute(f"UPDATE referrals SET person_id = NULL WHERE person_id IN {IDS}",
                                              a).rowcount
            for table, where in (("programme_members", f"person_id IN {IDS}"),
                                 ("programme_events", f"person_id IN {IDS}"),
                                 ("programme_rewards", f"person_id IN {IDS}"),
                                 ("author_links", f"author_id IN {IDS} OR person_id IN {IDS}"),
                                 ("author_stats", f"person_id IN {IDS}"),
                                 ("handoff_flags", f"person_id IN {IDS}"),
                                 ("reach_lookups", f"author_id IN {IDS}")):
                out[table] += store.execute(f"DELETE FROM {table} WHERE {where}", a).rowcount
            for author_id in author_ids:  # noise-control keys name the author by id
                out["alert_state"] += store.execute(
                    "DELETE FROM alert_state WHERE key LIKE :k ESCAPE '\\' OR key LIKE :k || '|%' ESCAPE '\\'",
                    {"k": f"%author={int(author_id)}"}).rowcount
            out["authors"] += store.execute(f"DELETE FROM authors WHERE id IN {IDS}", a).rowcount
            total = Counter(rows)
            total.update(out)
            erasure = store.execute(
                "INSERT INTO erasures (erased_at, subject_hash, source, authors, mentions, rows) "
                "VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                [iso(store.now()), subject_hash, source, len(author_ids), mentions,
                 json.dumps({k: v for k, v in sorted(total.items()) if v})]).fetchone()[0]
            detail = {"authors": len(author_ids), "mentions": mentions, **({"source": source} if source else {})}
            store.audit.record(actor, "author.forget", "erasure", erasure, detail)
        return {k: v for k, v in out.items() if v}

    def salt(self) -> str:
        """The salt of erasure hashes: made once per database, kept in it."""
        store = self._store
        with store.transaction():
            store.execute("INSERT INTO governance_state (name, value) VALUES ('erasure_salt', ?) "
                          "ON CONFLICT (name) DO NOTHING", [secrets.token_hex(16)])
            return str(store.scalar("SELECT value FROM governance_state WHERE name = 'erasure_salt'"))

    def erasures(self, limit: int = 100) -> list[ErasureRow]:
        return cast("list[ErasureRow]", self._store.query(
            "SELECT * FROM erasures ORDER BY id DESC LIMIT ?", [limit]))

    # -------------------------------------------------------------------- metrics

    def metrics(self, model: str | None) -> MetricsCounts:
        """Operational counts: mentions, classifications, the backlog of ``model``, deliveries."""
        store = self._store
        deliveries = store.alerts.delivery_counts()
        return {
            "collected": store.count("SELECT total(new) FROM source_runs"),
            "mentions": store.count_mentions(),
            "classifications": store.count("SELECT count(*) FROM classifications"),
            "backlog": store.count_unclassified(model) if model else store.count_mentions(),
            "deliveries_pending": deliveries.get("pending", 0),
            "deliveries_failing": deliveries.get("failing", 0),
            "deliveries_dead": deliveries.get("dead", 0),
            "deliveries_sent": deliveries.get("sent", 0),
        }
