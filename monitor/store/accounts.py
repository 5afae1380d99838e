"""SQL for the web page's own writes: users, sessions, marks, label corrections and
confirmed author links. Each write is one short transaction."""

from __future__ import annotations

from datetime import datetime

from monitor.store import Store, iso

MARKS = ("contacted", "rewarded", "do_not_contact")
FIELDS = {"advocacy": ("promoter", "detractor", "none"), "sentiment": ("negative", "neutral", "positive")}


# -------------------------------------------------------------------------- users


def add_user(store: Store, username: str, password_hash: str, *, replace: bool = False) -> None:
    with store.transaction():
        if replace:
            store.conn.execute(
                "INSERT INTO users (username, password_hash, created_at) VALUES (?, ?, ?) ON CONFLICT (username) "
                "DO UPDATE SET password_hash = excluded.password_hash, disabled = 0", [username, password_hash, iso(store.now())])
            store.conn.execute("DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE username = ?)", [username])
        else:
            store.conn.execute("INSERT INTO users (username, password_hash, created_at) VALUES (?, ?, ?)",
                               [username, password_hash, iso(store.now())])


def user_exists(store: Store, username: str) -> bool:
    return bool(store.query("SELECT 1 FROM users WHERE username = ?", [username]))


def get_user(store: Store, username: str) -> dict | None:
    rows = store.query("SELECT * FROM users WHERE username = ? AND disabled = 0", [username])
    return rows[0] if rows else None


def list_users(store: Store) -> list[dict]:
    return store.query("SELECT id, username, created_at, disabled FROM users ORDER BY username")


def disable_user(store: Store, username: str) -> bool:
    with store.transaction():
        n = store.conn.execute("UPDATE users SET disabled = 1 WHERE username = ?", [username]).rowcount
        store.conn.execute("DELETE FROM sessions WHERE user_id = (SELECT id FROM users WHERE username = ?)", [username])
    return bool(n)


# ----------------------------------------------------------------------- sessions


def create_session(store: Store, token_hash: str, user_id: int, csrf: str, expires_at: datetime) -> None:
    with store.transaction():
        store.conn.execute("DELETE FROM sessions WHERE expires_at < ?", [iso(store.now())])
        store.conn.execute("INSERT INTO sessions (token_hash, user_id, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
                           [token_hash, user_id, csrf, iso(store.now()), iso(expires_at)])


def get_session(store: Store, token_hash: str, now: datetime) -> dict | None:
    rows = store.query("SELECT s.token_hash, s.csrf, s.expires_at, u.id AS user_id, u.username FROM sessions s "
                       "JOIN users u ON u.id = s.user_id WHERE s.token_hash = ? AND s.expires_at > ? AND u.disabled = 0",
                       [token_hash, iso(now)])
    return rows[0] if rows else None


def delete_session(store: Store, token_hash: str) -> None:
    with store.transaction():
        store.conn.execute("DELETE FROM sessions WHERE token_hash = ?", [token_hash])


# -------------------------------------------------------------------------- marks


def set_mark(store: Store, author_id: int, brand: str, mark: str, user: str, on: bool = True,
             note: str | None = None) -> None:
    if mark not in MARKS:
        raise ValueError(f"unknown mark {mark!r}")
    with store.transaction():
        if on:
            store.conn.execute(
                "INSERT INTO author_marks (author_id, brand, mark, note, set_by, set_at) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (author_id, brand, mark) DO UPDATE SET note = excluded.note, set_by = excluded.set_by, "
                "set_at = excluded.set_at", [author_id, brand, mark, note, user, iso(store.now())])
        else:
            store.conn.execute("DELETE FROM author_marks WHERE author_id = ? AND brand = ? AND mark = ?",
                               [author_id, brand, mark])


def marks_of(store: Store, author_id: int) -> list[dict]:
    return store.query("SELECT * FROM author_marks WHERE author_id = ? ORDER BY brand, mark", [author_id])


# -------------------------------------------------------------------- corrections


def add_correction(store: Store, mention_id: int, field: str, label: str, user: str) -> int:
    if label not in FIELDS.get(field, ()):
        raise ValueError(f"{field} label must be one of {FIELDS.get(field)}")
    with store.transaction():
        row = store.conn.execute(
            f"SELECT c.{field}, c.model FROM classifications c WHERE c.mention_id = ? ORDER BY c.id DESC LIMIT 1",
            [mention_id]).fetchone()
        if not store.conn.execute("SELECT 1 FROM mentions WHERE id = ?", [mention_id]).fetchone():
            raise ValueError(f"no mention {mention_id}")
        cur = store.conn.execute(
            "INSERT INTO corrections (mention_id, field, label, model_label, model, set_by, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [mention_id, field, label, row[0] if row else None, row[1] if row else None, user, iso(store.now())])
        return cur.lastrowid


def corrections(store: Store, field: str | None = None, limit: int | None = None) -> list[dict]:
    """The newest correction per mention and field, with the mention's text."""
    where = "AND k.field = ?" if field else ""
    params: list = [field] if field else []
    sql = ("SELECT k.id, k.mention_id, k.field, k.label, k.model_label, k.model, k.set_by, k.created_at, m.brand, "
           "m.source, m.kind, m.title, m.text FROM corrections k JOIN mentions m ON m.id = k.mention_id "
           "WHERE k.id = (SELECT max(id) FROM corrections k2 WHERE k2.mention_id = k.mention_id AND k2.field = k.field) "
           f"{where} ORDER BY k.id DESC")
    if limit:
        sql += " LIMIT ?"
        params.append(limit)
    return store.query(sql, params)


# -------------------------------------------------------------------------- links


def link_authors(store: Store, person_id: int, author_id: int, user: str) -> None:
    """Record that ``author_id`` is the same person as ``person_id`` (confirmed by a user)."""
    with store.transaction():
        for aid in (person_id, author_id):
            if not store.conn.execute("SELECT 1 FROM authors WHERE id = ?", [aid]).fetchone():
                raise ValueError(f"no author {aid}")
        root = store.conn.execute("SELECT person_id FROM author_links WHERE author_id = ?", [person_id]).fetchone()
        person = root[0] if root else person_id
        if author_id == person:
            return
        # author_id's own group (if any) joins the person
        store.conn.execute("UPDATE author_links SET person_id = ? WHERE person_id = ?", [person, author_id])
        store.conn.execute(
            "INSERT INTO author_links (author_id, person_id, confirmed_by, confirmed_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (author_id) DO UPDATE SET person_id = excluded.person_id, confirmed_by = excluded.confirmed_by, "
            "confirmed_at = excluded.confirmed_at", [author_id, person, user, iso(store.now())])


def unlink_author(store: Store, author_id: int) -> int | None:
    """Remove a link; returns the person it belonged to."""
    with store.transaction():
        row = store.conn.execute("SELECT person_id FROM author_links WHERE author_id = ?", [author_id]).fetchone()
        store.conn.execute("DELETE FROM author_links WHERE author_id = ?", [author_id])
    return row[0] if row else None


def find_author(store: Store, source: str, handle: str) -> int | None:
    rows = store.query("SELECT id FROM authors WHERE source = ? AND handle = ?", [source, handle])
    return rows[0]["id"] if rows else None
