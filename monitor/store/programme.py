"""SQL of the advocate programme (``store.programme``): per person and brand a status with its
history, a reward log, a referral code, and referrals imported from CSV files.

The status is the one source of truth of the old author marks: ``author_marks`` is a view
derived from it (migration m130), and ``set_mark`` / ``marks_of`` here keep the marks' meaning
(contacted: contacted, joined, rewarded or declined; rewarded; do not contact). A person marked
do not contact stays so until someone lifts it (status identified): no contacting status, no
reward and no referral link meanwhile. Every change writes its history row and its audit row
(``store.audit``) in its own transaction.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypedDict, cast

from monitor.errors import MonitorError
from monitor.store._sql import chunks, iso, marks
from monitor.store.migrations import CODE_ALPHABET, CODE_LENGTH, PROGRAMME_STATUSES
from monitor.store.rows import Mark

if TYPE_CHECKING:
    from monitor.store import Store

STATUSES = PROGRAMME_STATUSES
CONTACTING = ("contacted", "joined", "rewarded")  # statuses that mean reaching out: refused while do not contact
MARK_STATUSES = {"contacted": ("contacted", "joined", "rewarded", "declined"), "rewarded": ("rewarded",),
                 "do_not_contact": ("do_not_contact",)}  # a mark is on while the status is one of these
TEXT_MAX = 500
VALUE_MAX = 1e12


class ProgrammeError(MonitorError):
    """A programme change that cannot be made: no such person, an unknown status, a person
    marked do not contact, a bad value."""


class ProgrammeConflictError(ProgrammeError):
    """The status changed since the page showed it (someone else changed it meanwhile)."""


class Member(TypedDict):
    person_id: int
    brand: str
    status: str
    code: str
    note: str | None
    changed_by: str
    changed_at: str
    created_at: str


class MemberListing(Member):
    """A member with their handle and their rewards' and referrals' counts and totals."""

    handle: str | None
    source: str | None
    display_name: str | None
    rewards: int
    reward_value: float
    referrals: int
    referral_value: float


class ProgrammeEvent(TypedDict):
    id: int
    person_id: int
    brand: str
    at: str
    actor: str
    from_status: str | None
    to_status: str
    note: str | None


class Reward(TypedDict):
    id: int
    person_id: int
    brand: str
    what: str
    value: float
    currency: str | None
    rewarded_at: str
    recorded_by: str
    recorded_at: str
    note: str | None


class Referral(TypedDict):
    id: int
    import_id: int
    line: int
    code: str | None
    person_id: int | None
    brand: str | None
    referred_at: str | None
    value: float | None
    currency: str | None
    status: str
    problem: str | None
    raw: str | None


class BrandTotals(TypedDict):
    brand: str
    members: int
    statuses: dict[str, int]
    rewards: int
    reward_value: float
    referrals: int
    referral_value: float


@dataclass(frozen=True)
class ReferralLine:
    """One line of a referral CSV as read by ``monitor.programme.read_referrals``: a code, a
    time and a value, or a ``problem`` (then the fields that could be read, and ``raw``).
    ``key`` names the line across imports (its content and the how-many-th such line)."""

    line: int
    key: str
    code: str | None
    referred_at: datetime | None
    value: float | None
    problem: str | None
    raw: str


@dataclass
class ImportSummary:
    import_id: int
    rows: int = 0
    matched: int = 0  # new rows matched to a code
    unmatched: int = 0  # new rows kept unmatched (unknown code, bad date or value)
    already: int = 0  # rows an earlier import brought already
    rematched: int = 0  # rows unmatched before whose code is now known
    same_file_at: str | None = None  # when this very file was imported before
    problems: list[tuple[int, str]] | None = None  # (line, problem) of the new unmatched rows


class ProgrammeStore:
    def __init__(self, store: Store) -> None:
        self._store = store

    def _now(self) -> str:
        return iso(self._store.now())

    # ------------------------------------------------------------------ people

    def person(self, author_id: int) -> int:
        """The person an author id belongs to (the representative of linked handles)."""
        store = self._store
        if store.scalar("SELECT 1 FROM authors WHERE id = ?", [author_id]) is None:
            raise ProgrammeError(f"no person {author_id}")
        root = store.scalar("SELECT person_id FROM author_links WHERE author_id = ?", [author_id])
        return author_id if root is None else int(root)

    def member(self, person_id: int, brand: str) -> Member | None:
        rows = self._store.query("SELECT * FROM programme_members WHERE person_id = ? AND brand = ?",
                                 [person_id, brand])
        return cast("Member", rows[0]) if rows else None

    def members_of(self, person_id: int) -> list[Member]:
        return cast("list[Member]", self._store.query(
            "SELECT * FROM programme_members WHERE person_id = ? ORDER BY brand", [person_id]))

    def _ensure(self, person_id: int, brand: str, actor: str) -> Member:
        """The member row, made (identified, with a new code) when there is none. In a transaction."""
        found = self.member(person_id, brand)
        if found is not None:
            return found
        store = self._store
        now = self._now()
        for _ in range(20):  # 31**8 codes: a clash is rare, twenty in a row is a broken random source
            code = new_code()
            if store.scalar("SELECT 1 FROM programme_members WHERE code = ?", [code]) is None:
                break
        else:
            raise ProgrammeError("could not make a unique referral code")
        store.execute("INSERT INTO programme_members (person_id, brand, status, code, changed_by, changed_at, "
                      "created_at) VALUES (?, ?, 'identified', ?, ?, ?, ?)",
                      [person_id, brand, code, actor, now, now])
        store.execute("INSERT INTO programme_events (person_id, brand, at, actor, from_status, to_status, note) "
                      "VALUES (?, ?, ?, ?, NULL, 'identified', NULL)", [person_id, brand, now, actor])
        store.audit.record(actor, "programme.join", "author", person_id, {"brand": brand, "status": "identified"})
        return cast("Member", self.member(person_id, brand))

    def ensure(self, author_id: int, brand: str, actor: str) -> Member:
        """The person's programme row for ``brand`` (status identified and a new referral code
        the first time). The code stays the same from then on."""
        with self._store.transaction():
            return self._ensure(self.person(author_id), brand, actor)

    # ------------------------------------------------------------------ status

    def set_status(self, author_id: int, brand: str, status: str, actor: str, note: str | None = None, *,
                   expected: str | None = None) -> Member:
        """Change the person's status for ``brand``, recorded with who, when and the note.
        ``expected``: the status the page showed; another one now is a ProgrammeConflictError
        (the refused attempt is kept in the audit log, ``programme.conflict``, as the inbox's are).
        From do not contact only ``identified`` (lifting it) is allowed."""
        try:
            return self._set_status(author_id, brand, status, actor, note, expected=expected)
        except ProgrammeConflictError as exc:
            self._store.audit.record(actor, "programme.conflict", "author", author_id,
                                     {"brand": brand, "to": status, "expected": expected, "refused": str(exc)})
            raise

    def _set_status(self, author_id: int, brand: str, status: str, actor: str, note: str | None, *,
                    expected: str | None) -> Member:
        if status not in STATUSES:
            raise ProgrammeError(f"unknown status {status!r} (one of {', '.join(STATUSES)})")
        note = (note or "").strip()[:TEXT_MAX] or None
        store = self._store
        with store.transaction():
            person = self.person(author_id)
            current = self.member(person, brand)
            old = current["status"] if current else "identified"
            if expected is not None and expected != old:
                raise ProgrammeConflictError(
                    f"the status changed to {old} meanwhile ({current['changed_by'] if current else '-'}, "
                    f"{current['changed_at'] if current else '-'}): nothing was changed; look again and retry")
            if old == "do_not_contact" and status not in ("do_not_contact", "identified"):
                raise ProgrammeError(
                    f"person {person} is marked do not contact for {brand}: lift that first (status identified) "
                    "before anything that contacts them")
            member = self._ensure(person, brand, actor)
            if old == status and not note:
                return member
            now = self._now()
            store.execute("UPDATE programme_members SET status = ?, note = ?, changed_by = ?, changed_at = ? "
                          "WHERE person_id = ? AND brand = ?", [status, note, actor, now, person, brand])
            store.execute("INSERT INTO programme_events (person_id, brand, at, actor, from_status, to_status, note) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?)", [person, brand, now, actor, old, status, note])
            store.audit.record(actor, "programme.status", "author", person,
                               {"brand": brand, "from": old, "to": status})  # no note: it may name the person
            return cast("Member", self.member(person, brand))

    def events(self, person_id: int, brand: str | None = None) -> list[ProgrammeEvent]:
        """The person's status history, newest first."""
        return cast("list[ProgrammeEvent]", self._store.query(
            "SELECT * FROM programme_events WHERE person_id = ? AND (? IS NULL OR brand = ?) ORDER BY id DESC",
            [person_id, brand, brand]))

    # ------------------------------------------------------------------ marks

    def set_mark(self, author_id: int, brand: str, mark: str, actor: str, on: bool = True,
                 note: str | None = None) -> None:
        """The old marks, as programme statuses: on sets the status of that name (unless the
        status already carries the mark: joined stays joined when marked contacted); off goes
        back to the latest earlier status without the mark, else identified (lifting do not
        contact is always identified: nothing that contacts the person happens by itself)."""
        if mark not in MARK_STATUSES:
            raise ProgrammeError(f"unknown mark {mark!r}")
        with self._store.transaction():
            person = self.person(author_id)
            current = self.member(person, brand)
            status = current["status"] if current else "identified"
            if on:
                if status not in MARK_STATUSES[mark] or note:
                    self.set_status(person, brand, status if status in MARK_STATUSES[mark] else mark, actor, note)
                return
            if status not in MARK_STATUSES[mark]:
                return
            earlier = [e["from_status"] for e in self.events(person, brand) if mark != "do_not_contact"
                       and e["from_status"] and e["from_status"] not in MARK_STATUSES[mark]]
            self.set_status(person, brand, earlier[0] if earlier else "identified", actor,
                            note or f"mark {mark} removed")

    def marks_of(self, person_id: int) -> list[Mark]:
        return cast("list[Mark]", self._store.query(
            "SELECT * FROM author_marks WHERE author_id = ? ORDER BY brand, mark", [person_id]))

    # ------------------------------------------------------------------ rewards

    def add_reward(self, author_id: int, brand: str, what: str, value: float, actor: str, *,
                   currency: str | None = None, at: datetime | None = None, note: str | None = None) -> int:
        """Log a reward (what, its value in ``currency``, when it was given: ``at``, default
        now); the status becomes rewarded. Refused for a person marked do not contact."""
        what = (what or "").strip()[:TEXT_MAX]
        if not what:
            raise ProgrammeError("say what the reward was")
        if not isinstance(value, int | float) or value != value or abs(value) > VALUE_MAX or value < 0:
            raise ProgrammeError("a reward's value is a number from 0 up")
        store = self._store
        with store.transaction():
            person = self.person(author_id)
            current = self.member(person, brand)
            if current and current["status"] == "do_not_contact":
                raise ProgrammeError(f"person {person} is marked do not contact for {brand}: no reward is recorded")
            self._ensure(person, brand, actor)
            now = self._now()
            cur = store.execute(
                "INSERT INTO programme_rewards (person_id, brand, what, value, currency, rewarded_at, recorded_by, "
                "recorded_at, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [person, brand, what, float(value), currency, iso(at) if at else now, actor, now,
                 (note or "").strip()[:TEXT_MAX] or None])
            reward_id = int(cur.lastrowid or 0)
            store.audit.record(actor, "programme.reward", "author", person,
                               {"brand": brand, "value": float(value), "currency": currency, "reward_id": reward_id})
            if (current["status"] if current else "identified") != "rewarded":
                self.set_status(person, brand, "rewarded", actor, "reward recorded")
            return reward_id

    def rewards(self, person_id: int, brand: str | None = None) -> list[Reward]:
        return cast("list[Reward]", self._store.query(
            "SELECT * FROM programme_rewards WHERE person_id = ? AND (? IS NULL OR brand = ?) "
            "ORDER BY rewarded_at DESC, id DESC", [person_id, brand, brand]))

    # ------------------------------------------------------------------ referrals

    def referrals(self, person_id: int, brand: str | None = None) -> list[Referral]:
        return cast("list[Referral]", self._store.query(
            "SELECT * FROM referrals WHERE person_id = ? AND (? IS NULL OR brand = ?) AND status = 'matched' "
            "ORDER BY referred_at DESC, id DESC", [person_id, brand, brand]))

    def unmatched(self, limit: int = 200) -> list[Referral]:
        """Imported lines that match no code or could not be read, newest import first."""
        return cast("list[Referral]", self._store.query(
            "SELECT * FROM referrals WHERE status = 'unmatched' ORDER BY import_id DESC, line LIMIT ?", [limit]))

    def code_owners(self, codes: Sequence[str]) -> dict[str, tuple[int, str]]:
        """code -> (person, brand) for the codes that exist."""
        out: dict[str, tuple[int, str]] = {}
        for chunk in chunks(list(codes)):
            for code, person, brand in self._store.fetchall(
                    f"SELECT code, person_id, brand FROM programme_members WHERE code IN ({marks(len(chunk))})",
                    list(chunk)):
                out[str(code)] = (int(person), str(brand))
        return out

    def import_referrals(self, lines: Sequence[ReferralLine], *, file_name: str, file_hash: str, actor: str,
                         currency_of: Callable[[str], str | None]) -> ImportSummary:
        """Store a referral file's lines in one transaction: each matched to its code's person
        and brand (``currency_of(brand)``: the brand's currency), or kept unmatched with its
        problem. A line an earlier import brought (same key) is counted in ``already`` and not
        added again; one unmatched before whose code is known now gets matched."""
        store = self._store
        with store.transaction():
            before = store.query("SELECT imported_at FROM referral_imports WHERE file_hash = ? ORDER BY id LIMIT 1",
                                 [file_hash])
            now = self._now()
            import_id = int(store.execute(
                "INSERT INTO referral_imports (file_name, file_hash, imported_at, imported_by) VALUES (?, ?, ?, ?)",
                [file_name[:300], file_hash, now, actor]).lastrowid or 0)
            problems: list[tuple[int, str]] = []
            out = ImportSummary(import_id, same_file_at=before[0]["imported_at"] if before else None, problems=problems)
            owners = self.code_owners(sorted({ln.code for ln in lines if ln.code and not ln.problem}))
            for ln in lines:
                out.rows += 1
                owner = owners.get(ln.code or "") if not ln.problem else None
                problem = ln.problem or (None if owner else f"unknown code {ln.code!r}")
                row: list[Any] = [ln.key, import_id, ln.line, (ln.code or "")[:100] or None,
                                  owner[0] if owner else None, owner[1] if owner else None,
                                  iso(ln.referred_at) if ln.referred_at else None, ln.value,
                                  currency_of(owner[1]) if owner else None,
                                  "unmatched" if problem else "matched", problem, ln.raw[:1000] if problem else None]
                old = store.execute("SELECT status FROM referrals WHERE row_key = ?", [ln.key]).fetchone()
                if old is None:
                    store.execute("INSERT INTO referrals (row_key, import_id, line, code, person_id, brand, "
                                  "referred_at, value, currency, status, problem, raw) "
                                  "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
                    if problem:
                        out.unmatched += 1
                        problems.append((ln.line, problem))
                    else:
                        out.matched += 1
                elif old[0] == "unmatched" and not problem:
                    store.execute("UPDATE referrals SET import_id = ?, line = ?, person_id = ?, brand = ?, "
                                  "currency = ?, status = 'matched', problem = NULL, raw = NULL WHERE row_key = ?",
                                  [import_id, ln.line, row[4], row[5], row[8], ln.key])
                    out.rematched += 1
                else:
                    out.already += 1
            store.execute("UPDATE referral_imports SET rows = ?, matched = ?, unmatched = ?, already = ? WHERE id = ?",
                          [out.rows, out.matched + out.rematched, out.unmatched, out.already, import_id])
            store.audit.record(actor, "programme.import", "referral_import", import_id,
                               {"file": file_name[:200], "rows": out.rows, "matched": out.matched,
                                "rematched": out.rematched, "unmatched": out.unmatched, "already": out.already})
        return out

    # ------------------------------------------------------------------ listing

    def listing(self, *, brand: str | None = None, status: str | None = None, limit: int = 1000,
                offset: int = 0) -> list[MemberListing]:
        """Members with their handle and their rewards' and referrals' counts and totals,
        most referral value first."""
        return cast("list[MemberListing]", self._store.query(
            "SELECT p.*, a.handle, a.source, a.display_name, "
            "(SELECT count(*) FROM programme_rewards r WHERE r.person_id = p.person_id AND r.brand = p.brand) "
            "AS rewards, "
            "(SELECT COALESCE(sum(value), 0) FROM programme_rewards r WHERE r.person_id = p.person_id "
            "AND r.brand = p.brand) AS reward_value, "
            "(SELECT count(*) FROM referrals f WHERE f.person_id = p.person_id AND f.brand = p.brand "
            "AND f.status = 'matched') AS referrals, "
            "(SELECT COALESCE(sum(value), 0) FROM referrals f WHERE f.person_id = p.person_id AND f.brand = p.brand "
            "AND f.status = 'matched') AS referral_value "
            "FROM programme_members p LEFT JOIN authors a ON a.id = p.person_id "
            "WHERE (? IS NULL OR p.brand = ?) AND (? IS NULL OR p.status = ?) "
            "ORDER BY referral_value DESC, referrals DESC, reward_value DESC, p.brand, a.handle, p.person_id "
            "LIMIT ? OFFSET ?", [brand, brand, status, status, limit, offset]))

    def totals(self, brand: str | None = None) -> list[BrandTotals]:
        """Per brand: members by status, rewards and matched referrals (count, value)."""
        out: dict[str, BrandTotals] = {}

        def entry(b: str) -> BrandTotals:
            return out.setdefault(b, {"brand": b, "members": 0, "statuses": {}, "rewards": 0, "reward_value": 0.0,
                                      "referrals": 0, "referral_value": 0.0})

        params = [brand, brand]
        for b, status, n in self._store.fetchall(
                "SELECT brand, status, count(*) FROM programme_members WHERE (? IS NULL OR brand = ?) "
                "GROUP BY brand, status", params):
            e = entry(b)
            e["statuses"][status] = int(n)
            e["members"] += int(n)
        for b, n, v in self._store.fetchall(
                "SELECT brand, count(*), COALESCE(sum(value), 0) FROM programme_rewards WHERE (? IS NULL OR brand = ?) "
                "GROUP BY brand", params):
            e = entry(b)
            e["rewards"], e["reward_value"] = int(n), float(v)
        for b, n, v in self._store.fetchall(
                "SELECT brand, count(*), COALESCE(sum(value), 0) FROM referrals WHERE status = 'matched' "
                "AND (? IS NULL OR brand = ?) GROUP BY brand", params):
            e = entry(b)
            e["referrals"], e["referral_value"] = int(n), float(v)
        return [out[b] for b in sorted(out)]

    def referrals_by_week(self, brand: str | None = None) -> list[tuple[str, str, int, float]]:
        """(brand, ISO week start date, referrals, value) of the matched referrals."""
        return [(str(b), str(w), int(n), float(v)) for b, w, n, v in self._store.fetchall(
            "SELECT brand, date(referred_at, 'weekday 0', '-6 days') AS week, count(*), COALESCE(sum(value), 0) "
            "FROM referrals WHERE status = 'matched' AND referred_at IS NOT NULL AND (? IS NULL OR brand = ?) "
            "GROUP BY brand, week ORDER BY week, brand", [brand, brand])]

    def unmatched_count(self) -> int:
        return self._store.count("SELECT count(*) FROM referrals WHERE status = 'unmatched'")


def new_code() -> str:
    """A referral code: 8 characters of 31 (about 8.5e11 codes), from the system's secure random source."""
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
