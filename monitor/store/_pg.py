"""PostgreSQL behind the same ``Store`` API: the store's SQL is written once, in SQLite's
dialect, and translated here once per statement (a cache per connection) for PostgreSQL.

Only this module imports psycopg. The SQLite path never comes here: a ``Store`` on a file
calls sqlite3 directly, as before.

What the translation covers (the SQLite the store uses, nothing more):

* placeholders: ``?`` -> ``%s``, ``:name`` -> ``%(name)s``; a ``%`` -> ``%%``
* ``INSERT OR IGNORE`` -> ``ON CONFLICT DO NOTHING``; ``INSERT OR REPLACE`` -> ``ON CONFLICT
  (primary key) DO UPDATE`` of the listed columns; an ``INSERT`` into a table with an ``id``
  column -> ``RETURNING id`` (``cursor.lastrowid``)
* functions: ``total(x)``, ``group_concat(x[, sep])``, ``instr``, ``ifnull``, two-argument
  ``max``/``min``, ``date(x[, modifiers])`` (the ones the store uses: ``'weekday 0', '-6 days'``
  and ``'+N days'``), ``json_each(x) [alias]``
* ``LIKE`` -> ``ILIKE`` (SQLite's LIKE ignores ASCII case), ``BEGIN IMMEDIATE`` -> ``BEGIN``
* ``ORDER BY`` terms sort NULLs as SQLite does (``NULLS FIRST`` ascending, ``NULLS LAST``
  descending; an ``id`` needs none), and a subquery in FROM gets the alias PostgreSQL 15 needs
* DDL: ``INTEGER PRIMARY KEY`` -> an identity column, ``INTEGER`` -> ``BIGINT``, ``REAL`` ->
  ``DOUBLE PRECISION``, ``BLOB`` -> ``BYTEA``, ``WITHOUT ROWID`` dropped; index columns carry the
  same NULLS order as the queries; foreign keys are ``DEFERRABLE INITIALLY IMMEDIATE`` (checked
  at once, as SQLite's; ``store.transfer`` defers them to its COMMIT)

Integers come back as int, ``numeric`` results (``sum`` of integers) as int or float, as SQLite
gives them; a Python bool is sent as 0/1 (the store's flags are INTEGER columns). A lost
connection costs the transaction it was in (an error, nothing of it committed); the next BEGIN
or read outside a transaction connects again.

Migrations are the same functions as on SQLite (``migrations.py``), applied in the same order,
each in one transaction with its row in ``schema_migrations``: a second run applies nothing.
Every statement runs with client-side parameter binding (``psycopg.ClientCursor``), so an
untyped ``? IS NULL`` works as in SQLite. The session's time zone is UTC.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

import psycopg
from psycopg.adapt import Loader

from monitor.errors import StoreError, StoreUnavailable

SCHEMES = ("postgresql://", "postgres://")


def is_url(target: object) -> bool:
    """Whether a ``database`` setting names a PostgreSQL server rather than a SQLite file."""
    return isinstance(target, str) and target.startswith(SCHEMES)


def safe_url(url: str) -> str:
    """The URL without its password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


class _NumericLoader(Loader):
    """numeric (``sum`` of integers, ``avg``) as int when whole, else float: what SQLite returns."""

    def load(self, data: Any) -> int | float:
        text = bytes(data).decode()
        if "." in text or "e" in text.lower() or text in ("NaN", "Infinity", "-Infinity"):
            return float(text)
        return int(text)


class PgCursor:
    """The part of ``sqlite3.Cursor`` the store uses: fetchone, fetchall, rowcount, lastrowid."""

    def __init__(self, cur: psycopg.Cursor[Any], lastrowid: int | None = None) -> None:
        self._cur = cur
        self.lastrowid = lastrowid
        self.rowcount = cur.rowcount
        self.description = cur.description

    def fetchone(self) -> Any:
        return self._cur.fetchone() if self._cur.description else None

    def fetchall(self) -> list[Any]:
        return self._cur.fetchall() if self._cur.description else []

    def fetchmany(self, size: int) -> list[Any]:
        return self._cur.fetchmany(size) if self._cur.description else []

    def __iter__(self) -> Iterator[Any]:
        return iter(self.fetchall())


class PgConnection:
    """A psycopg connection with the calls the store makes on a sqlite3 one (``execute``,
    ``executemany``, ``in_transaction``, ``close``). Autocommit, as the store's SQLite
    connection (``isolation_level=None``): ``Store.transaction`` sends BEGIN and COMMIT."""

    def __init__(self, url: str, *, readonly: bool = False) -> None:
        self.url = url
        self.readonly = readonly
        self.raw = self._connect()
        self._cache: dict[str, tuple[str, bool]] = {}
        self._tables: dict[str, tuple[list[str], bool]] = {}
        self._lock = threading.Lock()
        self._in_tx = False  # a BEGIN sent and not yet ended (what a lost connection takes with it)

    def _connect(self) -> psycopg.Connection[Any]:
        try:
            raw = psycopg.connect(self.url, autocommit=True, cursor_factory=psycopg.ClientCursor,
                                  options="-c TimeZone=UTC", connect_timeout=10)
        except psycopg.Error as exc:
            reason = _reason(exc, self.url)
            error = StoreError if _PERMANENT.search(str(exc)) else StoreUnavailable
            raise error(f"cannot open database {safe_url(self.url)}: {reason}") from None
        raw.adapters.register_loader("numeric", _NumericLoader)
        if self.readonly:
            raw.execute("SET default_transaction_read_only = on")
        return raw

    def _lost(self) -> bool:
        return self.raw.closed or self.raw.broken

    @property
    def in_transaction(self) -> bool:
        if self._lost():
            return self._in_tx
        return self.raw.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    def close(self) -> None:
        self.raw.close()

    def __del__(self) -> None:
        # as a sqlite3 connection: closed when the store is dropped (a command that ends without
        # close()), never a ResourceWarning
        raw = getattr(self, "raw", None)
        if raw is not None and not raw.closed:
            raw.close()

    def translate(self, sql: str) -> tuple[str, bool]:
        """(PostgreSQL statement, whether it returns the new row's id for ``lastrowid``)."""
        found = self._cache.get(sql)
        if found is None:
            if len(self._cache) >= 4096:  # statements built with n placeholders: bounded all the same
                self._cache.clear()
            found = self._cache[sql] = self._translate(sql)
        return found

    def execute(self, sql: str, params: Any = ()) -> PgCursor:
        text, returns_id = self.translate(sql)
        verb = text[:8].upper()
        ends = text.upper() in ("COMMIT", "ROLLBACK")
        if self._lost():  # the server restarted or the network dropped since the last statement
            if text.upper() == "ROLLBACK":  # the transaction went with the connection
                self._in_tx = False
                self.raw = self._connect()
                return PgCursor(self.raw.cursor())
            if self._in_tx:
                raise StoreError("the connection to the database was lost in a transaction: nothing of it "
                                 "was committed")
            self.raw = self._connect()
        if ends:
            self._in_tx = False  # ended, whether or not the COMMIT succeeds
        cur = self.raw.cursor()
        try:
            cur.execute(text, _params(params))
        except psycopg.OperationalError as exc:
            if not (self._lost() and not self._in_tx and verb.startswith(("SELECT", "WITH", "BEGIN"))):
                raise _store_error(exc, text) from exc
            self.raw = self._connect()  # a read or a BEGIN outside a transaction: once more, on a new connection
            cur = self.raw.cursor()
            try:
                cur.execute(text, _params(params))
            except psycopg.Error as again:
                raise _store_error(again, text) from again
        except psycopg.Error as exc:
            raise _store_error(exc, text) from exc
        if verb.startswith("BEGIN"):
            self._in_tx = True
        lastrowid = None
        if returns_id:
            row = cur.fetchone()
            lastrowid = int(row[0]) if row else None
        return PgCursor(cur, lastrowid)

    def executemany(self, sql: str, rows: Iterable[Any]) -> PgCursor:
        text, returns_id = self.translate(sql)
        if returns_id:
            text = text[: text.rindex(" RETURNING id")]
        cur = self.raw.cursor()
        try:
            cur.executemany(text, [_params(r) for r in rows])
        except psycopg.Error as exc:
            raise _store_error(exc, text) from exc
        return PgCursor(cur)

    def reset_identity(self, table: str) -> None:
        """After rows were copied in with their ids: the next id follows the largest."""
        if self._table(table)[1]:
            self.raw.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "  # a known table name
                             f"(SELECT COALESCE(max(id), 0) + 1 FROM {table}), false)")

    # ------------------------------------------------------------------ translation

    def _table(self, name: str) -> tuple[list[str], bool]:
        """(primary key columns, whether it has an ``id`` identity column) of a table."""
        if name not in self._tables:
            cur = self.raw.cursor()
            cur.execute(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = to_regclass(%s) AND i.indisprimary "
                "ORDER BY array_position(i.indkey, a.attnum)", [name])
            pk = [str(r[0]) for r in cur.fetchall()]
            cur.execute("SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() "
                        "AND table_name = %s AND column_name = 'id' AND is_identity = 'YES'", [name])
            self._tables[name] = (pk, cur.fetchone() is not None)
        return self._tables[name]

    def _translate(self, sql: str) -> tuple[str, bool]:
        text = _strip_comments(sql).strip().rstrip(";")
        head = text[:30].upper()
        if head.startswith("PRAGMA"):
            raise StoreError(f"not on PostgreSQL: {text[:60]}")
        if head.startswith("BEGIN"):
            return "BEGIN", False
        if head.startswith(("CREATE", "ALTER")):
            return _placeholders(_index_nulls(_ddl(text))), False
        text = _order_nulls(_LIKE.sub("ILIKE", _alias_subqueries(_rewrite_calls(text))))
        returns_id = False
        m = _INSERT.match(text)
        if m:
            verb, table = " ".join((m.group(1) or "").upper().split()), m.group(2)
            text = f"INSERT INTO {table}" + text[m.end():]
            pk, has_id = self._table(table)
            returning = _top_level_find(text, " RETURNING ")
            body, tail = (text, "") if returning < 0 else (text[:returning], text[returning:])
            if verb == "OR IGNORE":
                body += " ON CONFLICT DO NOTHING"
            elif verb == "OR REPLACE":
                cols = re.match(r"INSERT INTO\s+\w+\s*\(([^)]*)\)", body)
                if not cols or not pk:
                    raise StoreError(f"INSERT OR REPLACE needs a column list and a primary key: {table}")
                names = [c.strip() for c in cols.group(1).split(",")]
                sets = ", ".join(f"{c} = excluded.{c}" for c in names if c not in pk)
                body += f" ON CONFLICT ({', '.join(pk)}) " + (f"DO UPDATE SET {sets}" if sets else "DO NOTHING")
            if not tail and has_id:
                tail, returns_id = " RETURNING id", True
            text = body + tail
        return _placeholders(text), returns_id


# ---------------------------------------------------------------------- helpers


def _params(params: Any) -> Any:
    """bool -> int (the store's flags are INTEGER columns, as in SQLite)."""
    if isinstance(params, Mapping):
        return {k: int(v) if isinstance(v, bool) else v for k, v in params.items()}
    return [int(v) if isinstance(v, bool) else v for v in params]


def _reason(exc: psycopg.Error, url: str) -> str:
    """The server's reason, first line, with the URL's password never in it."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    password = urlsplit(url).password
    if password:
        text = text.replace(password, "***").replace(unquote(password), "***")
    return text


def _store_error(exc: psycopg.Error, sql: str) -> Exception:
    """A constraint refusing a write is a ConstraintError (sqlite3's IntegrityError on SQLite)."""
    if isinstance(exc, psycopg.errors.IntegrityError):
        return ConstraintError(f"{str(exc).strip().splitlines()[0]} ({sql[:200]})")
    return StoreError(f"database error: {str(exc).strip().splitlines()[0]} ({sql[:200]})")


class ConstraintError(StoreError):
    """A uniqueness, foreign key or check constraint refused a write (PostgreSQL)."""


# a connection refused for what waiting will not change (the rest: the server is down or restarting)
_PERMANENT = re.compile(r"authentication|password|does not exist|permission denied|not permitted|no pg_hba|"
                        r"invalid (?:connection|dsn|integer|sslmode)|unsupported", re.IGNORECASE)
_LIKE = re.compile(r"\bLIKE\b", re.IGNORECASE)
_INSERT = re.compile(r"^INSERT\s+(OR\s+(?:IGNORE|REPLACE)\s+)?INTO\s+(\w+)", re.IGNORECASE)


def _literal_end(sql: str, i: int) -> int:
    """The index after the quoted literal or identifier starting at ``i``."""
    q = sql[i]
    j = i + 1
    while j < len(sql):
        if sql[j] == q:
            if j + 1 < len(sql) and sql[j + 1] == q:
                j += 2
                continue
            return j + 1
        j += 1
    return j


def _strip_comments(sql: str) -> str:
    """``sql`` without its ``-- ...`` comments (outside literals; a comment may hold a quote)."""
    if "--" not in sql:
        return sql
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in "'\"":
            j = _literal_end(sql, i)
            out.append(sql[i:j])
            i = j
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j < 0 else j
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _matching_paren(sql: str, i: int) -> int:
    depth = 0
    j = i
    while j < len(sql):
        c = sql[j]
        if c in "'\"":
            j = _literal_end(sql, j)
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return j
        j += 1
    raise StoreError(f"unbalanced parentheses in SQL: {sql[:80]}")


def _split_args(inner: str) -> list[str]:
    args, depth, start, j = [], 0, 0, 0
    while j < len(inner):
        c = inner[j]
        if c in "'\"":
            j = _literal_end(inner, j)
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "," and depth == 0:
            args.append(inner[start:j].strip())
            start = j + 1
        j += 1
    args.append(inner[start:].strip())
    return args


def _top_level_find(sql: str, needle: str) -> int:
    """The last index of ``needle`` outside parentheses and literals, or -1."""
    depth, j, found = 0, 0, -1
    upper = sql.upper()
    while j < len(sql):
        c = sql[j]
        if c in "'\"":
            j = _literal_end(sql, j)
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif depth == 0 and upper.startswith(needle, j):
            found = j
        j += 1
    return found


_DAYS = re.compile(r"'([+-]\d+) days?'$")


def _date(args: list[str]) -> str:
    day = f"(CAST({args[0]} AS timestamptz) AT TIME ZONE 'UTC')::date"
    mods = args[1:]
    if mods[:2] == ["'weekday 0'", "'-6 days'"]:
        day = f"(date_trunc('week', CAST({args[0]} AS timestamptz) AT TIME ZONE 'UTC'))::date"
        mods = mods[2:]
    for mod in mods:
        m = _DAYS.match(mod)
        if not m:
            raise StoreError(f"date() modifier not translated for PostgreSQL: {mod}")
        day = f"({day} + {int(m.group(1))})"
    return f"to_char({day}, 'YYYY-MM-DD')"


_CALLS: dict[str, Callable[[list[str]], str]] = {
    "total": lambda a: f"COALESCE(sum(CAST(({a[0]}) AS INTEGER)), 0)",
    "group_concat": lambda a: f"string_agg(CAST({a[0]} AS TEXT), {a[1] if len(a) > 1 else repr(',')})",
    "instr": lambda a: f"strpos({a[0]}, {a[1]})",
    "ifnull": lambda a: f"COALESCE({a[0]}, {a[1]})",
    "max": lambda a: f"GREATEST({', '.join(a)})" if len(a) > 1 else f"max({a[0]})",
    "min": lambda a: f"LEAST({', '.join(a)})" if len(a) > 1 else f"min({a[0]})",
    "date": _date,
}
_IDENT = re.compile(r"[A-Za-z_]\w*")
_NOT_ALIAS = {"WHERE", "JOIN", "LEFT", "INNER", "CROSS", "ON", "GROUP", "ORDER", "LIMIT", "UNION", "AND", "OR"}
_ALIAS = re.compile(r"\s+(?:AS\s+)?([A-Za-z_]\w*)", re.IGNORECASE)


def _rewrite_calls(sql: str) -> str:
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in "'\"":
            j = _literal_end(sql, i)
            out.append(sql[i:j])
            i = j
            continue
        if (c.isalpha() or c == "_") and (i == 0 or not (sql[i - 1].isalnum() or sql[i - 1] in "_.:")):
            m = _IDENT.match(sql, i)
            assert m is not None
            name, k = m.group(0), m.end()
            low = name.lower()
            if k < n and sql[k] == "(" and (low in _CALLS or low == "json_each"):
                end = _matching_paren(sql, k)
                args = [_rewrite_calls(a) for a in _split_args(sql[k + 1:end])]
                i = end + 1
                if low == "json_each":
                    alias = "json_each"
                    am = _ALIAS.match(sql, i)
                    if am and am.group(1).upper() not in _NOT_ALIAS:
                        alias, i = am.group(1), am.end()
                    out.append(f"json_array_elements_text(CAST({args[0]} AS json)) AS {alias}(value)")
                else:
                    out.append(_CALLS[low](args))
                continue
            out.append(name)
            i = k
            continue
        out.append(c)
        i += 1
    return "".join(out)


_FROM = re.compile(r"\b(FROM|JOIN)\s*\($", re.IGNORECASE)
_CLAUSE = {"WHERE", "GROUP", "ORDER", "LIMIT", "UNION", "JOIN", "LEFT", "INNER", "CROSS", "ON", "HAVING",
           "EXCEPT", "INTERSECT", "WINDOW", "OFFSET"}


def _alias_subqueries(sql: str) -> str:
    """A subquery in FROM or JOIN without an alias gets one (PostgreSQL before 16 needs it)."""
    if "(" not in sql:
        return sql
    out: list[str] = []
    i, n, count = 0, len(sql), 0
    while i < n:
        c = sql[i]
        if c in "'\"":
            j = _literal_end(sql, i)
            out.append(sql[i:j])
            i = j
            continue
        if c == "(":
            start, end = i, _matching_paren(sql, i)
            out.append(f"({_alias_subqueries(sql[start + 1:end])})")
            i = end + 1
            if _FROM.search(sql[max(0, start - 40):start + 1]):
                am = _ALIAS.match(sql, i)
                if not am or am.group(1).upper() in _CLAUSE:
                    count += 1
                    out.append(f" AS _sub{count}")
            continue
        out.append(c)
        i += 1
    return "".join(out)


_ORDER_END = re.compile(r"\s*\b(LIMIT|OFFSET|UNION|EXCEPT|INTERSECT|RETURNING)\b", re.IGNORECASE)
_ORDER_BY = re.compile(r"\bORDER\s+BY\s", re.IGNORECASE)
_NOT_NULL_TERM = re.compile(r"^(\w+\.)?id(\s+(ASC|DESC))?$", re.IGNORECASE)


def _with_nulls(term: str) -> str:
    """SQLite sorts NULL before every value; PostgreSQL after: say where they go (an id is never NULL)."""
    upper = term.upper()
    if "NULLS" in upper.split() or _NOT_NULL_TERM.match(term):
        return term
    return term + (" NULLS LAST" if upper.endswith(" DESC") else " NULLS FIRST")


def _order_nulls(sql: str) -> str:
    """Every ORDER BY term sorts NULLs as SQLite does (first ascending, last descending)."""
    if not _ORDER_BY.search(sql):
        return sql
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in "'\"":
            j = _literal_end(sql, i)
            out.append(sql[i:j])
            i = j
            continue
        m = _ORDER_BY.match(sql, i) if (c in "oO" and (i == 0 or not sql[i - 1].isalnum())) else None
        if not m:
            out.append(c)
            i += 1
            continue
        out.append(m.group(0))
        # the clause: up to a closing parenthesis of its level, LIMIT/OFFSET/UNION..., or the end
        j, depth, start, terms = m.end(), 0, m.end(), []
        while j < n:
            ch = sql[j]
            if ch in "'\"":
                j = _literal_end(sql, j)
                continue
            if ch == "(":
                depth += 1
            elif ch == ")":
                if depth == 0:
                    break
                depth -= 1
            elif depth == 0 and ch == ",":
                terms.append(sql[start:j])
                start = j + 1
            elif depth == 0 and _ORDER_END.match(sql, j) and (j == 0 or sql[j - 1].isspace()):
                break
            j += 1
        terms.append(sql[start:j])
        out.append(", ".join(_with_nulls(_order_nulls(t.strip())) for t in terms))
        if j < n and sql[j - 1].isspace():
            out.append(" ")
        i = j
    return "".join(out)


def _placeholders(sql: str) -> str:
    """``?`` -> ``%s``, ``:name`` -> ``%(name)s`` and ``%`` -> ``%%``, outside literals."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c in "'\"":
            j = _literal_end(sql, i)
            out.append(sql[i:j].replace("%", "%%"))
            i = j
        elif c == "?":
            out.append("%s")
            i += 1
        elif c == "%":
            out.append("%%")
            i += 1
        elif c == ":" and i + 1 < n and (sql[i + 1].isalpha() or sql[i + 1] == "_") and (i == 0 or sql[i - 1] != ":"):
            m = _IDENT.match(sql, i + 1)
            assert m is not None
            out.append(f"%({m.group(0)})s")
            i = m.end()
        else:
            out.append(c)
            i += 1
    return "".join(out)


_DDL = [
    (re.compile(r"\bINTEGER\s+PRIMARY\s+KEY\b", re.IGNORECASE), "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (re.compile(r"\bINTEGER\b", re.IGNORECASE), "BIGINT"),
    (re.compile(r"\bREAL\b", re.IGNORECASE), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b", re.IGNORECASE), "BYTEA"),
    (re.compile(r"\)\s*WITHOUT\s+ROWID", re.IGNORECASE), ")"),
    # checked at once as on SQLite, but a copy (store.transfer) may defer them to its COMMIT
    (re.compile(r"(REFERENCES\s+\w+\s*\([^)]*\)(?:\s+ON\s+DELETE\s+\w+(?:\s+NULL)?)?)"
                r"(?!\s+(?:ON\s+DELETE|DEFERRABLE))", re.IGNORECASE), r"\1 DEFERRABLE INITIALLY IMMEDIATE"),
]


def _ddl(sql: str) -> str:
    out: list[str] = []
    last = 0
    # rewrite only outside literals (a DEFAULT '...' or CHECK list stays as written)
    i = 0
    while i < len(sql):
        if sql[i] in "'\"":
            j = _literal_end(sql, i)
            out.append(_ddl_words(sql[last:i]))
            out.append(sql[i:j])
            last = i = j
            continue
        i += 1
    out.append(_ddl_words(sql[last:]))
    return "".join(out)


_CREATE_INDEX = re.compile(r"^CREATE\s+(UNIQUE\s+)?INDEX\b[^(]*\(", re.IGNORECASE)


def _index_nulls(sql: str) -> str:
    """An index's columns in the order the translated ORDER BY asks for (NULLs as in SQLite)."""
    m = _CREATE_INDEX.match(sql)
    if not m:
        return sql
    end = _matching_paren(sql, m.end() - 1)
    cols = ", ".join(_with_nulls(c) for c in _split_args(sql[m.end():end]))
    return f"{sql[:m.end()]}{cols}{sql[end:]}"


def _ddl_words(text: str) -> str:
    for pattern, replacement in _DDL:
        text = pattern.sub(replacement, text)
    return text


# ---------------------------------------------------------------------- migrations


class PgDatabase:
    """What a migration function calls on sqlite-utils' ``Database`` (``execute``, ``query``,
    ``atomic``), on a PostgreSQL connection."""

    def __init__(self, conn: PgConnection) -> None:
        self.conn = conn
        self._depth = 0

    def execute(self, sql: str, params: Any = ()) -> PgCursor:
        return self.conn.execute(sql, params)

    def query(self, sql: str, params: Any = ()) -> Iterator[dict[str, Any]]:
        cur = self.conn.execute(sql, params)
        names = [d.name for d in cur.description or ()]
        for row in cur.fetchall():
            yield dict(zip(names, row, strict=True))

    @contextmanager
    def atomic(self) -> Iterator[PgDatabase]:
        """A transaction, or inside one a savepoint (sqlite-utils' ``atomic`` on PostgreSQL)."""
        run = self.conn.execute
        if not self.conn.in_transaction:
            run("BEGIN")
            try:
                yield self
                run("COMMIT")
            except BaseException:
                if self.conn.in_transaction:
                    run("ROLLBACK")
                raise
            return
        self._depth += 1
        name = f"monitor_sp{self._depth}"
        run(f"SAVEPOINT {name}")
        try:
            yield self
            run(f"RELEASE SAVEPOINT {name}")
        except BaseException:
            if self.conn.in_transaction:
                run(f"ROLLBACK TO SAVEPOINT {name}")
                run(f"RELEASE SAVEPOINT {name}")
            raise
        finally:
            self._depth -= 1


def apply_migrations(db: PgDatabase, set_name: str, steps: Sequence[tuple[str, Callable[[Any], None]]]) -> list[str]:
    """Apply the steps not yet recorded in ``schema_migrations``, in order, each in one
    transaction with its record. A lock makes two processes starting at once apply each once."""
    raw = db.conn.raw
    raw.execute("CREATE TABLE IF NOT EXISTS schema_migrations (migration_set TEXT NOT NULL, name TEXT NOT NULL, "
                "applied_at TEXT NOT NULL, PRIMARY KEY (migration_set, name))")
    done: list[str] = []
    with db.atomic():
        raw.execute("LOCK TABLE schema_migrations IN EXCLUSIVE MODE")
        applied = {str(r[0]) for r in raw.execute(
            "SELECT name FROM schema_migrations WHERE migration_set = %s", [set_name]).fetchall()}
        for name, fn in steps:
            if name in applied:
                continue
            with db.atomic():
                fn(db)
                raw.execute("INSERT INTO schema_migrations (migration_set, name, applied_at) VALUES (%s, %s, %s)",
                            [set_name, name, datetime.now(UTC).isoformat(timespec="seconds")])
            done.append(name)
    db.conn._tables.clear()
    return done
