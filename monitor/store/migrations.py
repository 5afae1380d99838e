"""Schema, as sqlite-utils migrations. Never edit an applied migration: add a new one."""

from __future__ import annotations

from typing import Any

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("monitor")


def run_script(db: Database, script: str) -> None:
    """Run ';'-separated DDL statement by statement: executescript() would COMMIT the
    migration's transaction half-way."""
    for statement in script.split(";"):
        if statement.strip() and not all(line.strip().startswith("--") for line in statement.strip().splitlines()):
            db.execute(statement)


@migrations()
def m001_core(db: Database) -> None:
    run_script(
        db,
        """
        CREATE TABLE authors (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,
            handle TEXT NOT NULL,
            display_name TEXT,
            url TEXT,
            reach INTEGER,
            reach_kind TEXT,
            reach_checked_at TEXT,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            UNIQUE (source, handle)
        );
        -- One row per brand an item mentions: the same item matching two brands is two
        -- mentions (one per brand's figures), never two rows for one brand.
        CREATE TABLE mentions (
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,
            source_key TEXT NOT NULL,
            native_id TEXT NOT NULL,
            brand TEXT NOT NULL,
            kind TEXT NOT NULL DEFAULT 'post',
            title TEXT,
            text TEXT NOT NULL,
            url TEXT,
            canonical_url TEXT,
            duplicate_of INTEGER REFERENCES mentions(id),
            author_id INTEGER REFERENCES authors(id),
            rating INTEGER,
            lang TEXT,
            matched_term TEXT,
            created_at TEXT NOT NULL,
            collected_at TEXT NOT NULL,
            extra TEXT,
            UNIQUE (source, native_id, brand)
        );
        CREATE INDEX mentions_brand_created ON mentions (brand, created_at);
        CREATE INDEX mentions_author ON mentions (author_id);
        CREATE INDEX mentions_canonical ON mentions (canonical_url);
        CREATE TABLE classifications (
            id INTEGER PRIMARY KEY,
            mention_id INTEGER NOT NULL REFERENCES mentions(id),
            model TEXT NOT NULL,
            sentiment TEXT,
            sentiment_p REAL,
            sentiment_probs TEXT,
            advocacy TEXT,
            advocacy_p REAL,
            advocacy_probs TEXT,
            uncertain INTEGER NOT NULL DEFAULT 0,
            status TEXT NOT NULL DEFAULT 'ok',
            lang TEXT,
            created_at TEXT NOT NULL,
            UNIQUE (mention_id, model)
        );
        CREATE INDEX classifications_model ON classifications (model, mention_id);
        CREATE TABLE cursors (
            source_key TEXT NOT NULL,
            query TEXT NOT NULL,
            cursor TEXT,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (source_key, query)
        );
        CREATE TABLE source_runs (
            id INTEGER PRIMARY KEY,
            source_key TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            fetched INTEGER NOT NULL DEFAULT 0,
            new INTEGER NOT NULL DEFAULT 0,
            skipped INTEGER NOT NULL DEFAULT 0,
            ok INTEGER NOT NULL DEFAULT 0,
            error TEXT
        );
        CREATE INDEX source_runs_key ON source_runs (source_key, started_at);
        CREATE TABLE alerts (
            id INTEGER PRIMARY KEY,
            rule TEXT NOT NULL,
            key TEXT NOT NULL UNIQUE,
            severity TEXT NOT NULL,
            brand TEXT,
            title TEXT NOT NULL,
            body TEXT NOT NULL,
            mention_ids TEXT NOT NULL DEFAULT '[]',
            data TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL
        );
        CREATE TABLE deliveries (
            id INTEGER PRIMARY KEY,
            alert_id INTEGER NOT NULL REFERENCES alerts(id),
            channel TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'pending',
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at TEXT NOT NULL,
            last_error TEXT,
            delivered_at TEXT,
            UNIQUE (alert_id, channel)
        );
        CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
        """
    )


@migrations()
def m020_alert_delivery(db: Database) -> None:
    """Alerts: every delivery attempt, cooldown state, and matches held for a group or digest."""
    run_script(
        db,
        """
        CREATE TABLE delivery_attempts (
            id INTEGER PRIMARY KEY,
            delivery_id INTEGER NOT NULL REFERENCES deliveries(id),
            attempt INTEGER NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            outcome TEXT NOT NULL DEFAULT 'started',
            error TEXT,
            retry_at TEXT
        );
        CREATE INDEX delivery_attempts_delivery ON delivery_attempts (delivery_id, attempt);
        CREATE INDEX delivery_attempts_started ON delivery_attempts (started_at);
        CREATE TABLE alert_state (
            rule TEXT NOT NULL,
            key TEXT NOT NULL,
            last_fired_at TEXT NOT NULL,
            suppressed INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (rule, key)
        );
        CREATE TABLE alert_holds (
            id INTEGER PRIMARY KEY,
            rule TEXT NOT NULL,
            kind TEXT NOT NULL,
            group_key TEXT NOT NULL,
            mention_id INTEGER NOT NULL REFERENCES mentions(id),
            held_at TEXT NOT NULL,
            released_at TEXT,
            UNIQUE (rule, mention_id)
        );
        CREATE INDEX alert_holds_open ON alert_holds (released_at, rule, group_key);
        CREATE INDEX alerts_rule_created ON alerts (rule, created_at)
        """
    )


@migrations()
def sources_m002_run_health(db: Database) -> None:
    """source_runs: whether a run failed on credentials (the health check alerts at once)."""
    run_script(db, "ALTER TABLE source_runs ADD COLUMN auth_failed INTEGER NOT NULL DEFAULT 0")


@migrations()
def m030_advocates_web(db: Database) -> None:
    """Advocate aggregates (rebuilt from mentions + classifications), the web page's users,
    sessions, marks and label corrections, and user-confirmed links between handles."""
    run_script(
        db,
        """
        -- A user confirmed that these handles (on different sources) are one person:
        -- every linked author points at the person's representative author id.
        CREATE TABLE author_links (
            author_id INTEGER PRIMARY KEY REFERENCES authors(id),
            person_id INTEGER NOT NULL REFERENCES authors(id),
            confirmed_by TEXT NOT NULL,
            confirmed_at TEXT NOT NULL
        );
        CREATE INDEX author_links_person ON author_links (person_id);
        -- Per person (author id, or the link's person id) and brand, rebuilt by monitor.advocates.
        CREATE TABLE author_stats (
            person_id INTEGER NOT NULL,
            brand TEXT NOT NULL,
            source TEXT NOT NULL,
            handle TEXT NOT NULL,
            sources TEXT NOT NULL,
            mentions INTEGER NOT NULL,
            promoters INTEGER NOT NULL,
            passives INTEGER NOT NULL,
            detractors INTEGER NOT NULL,
            reach INTEGER,
            first_at TEXT NOT NULL,
            last_at TEXT NOT NULL,
            last_promoter_at TEXT,
            last_detractor_at TEXT,
            weeks_active INTEGER NOT NULL,
            promoter_weeks INTEGER NOT NULL,
            detractor_weeks INTEGER NOT NULL,
            stance TEXT NOT NULL,
            flips INTEGER NOT NULL DEFAULT 0,
            last_flip TEXT,
            last_flip_at TEXT,
            advocate_score REAL NOT NULL DEFAULT 0,
            detractor_score REAL NOT NULL DEFAULT 0,
            flag TEXT,
            explain TEXT NOT NULL DEFAULT '{}',
            updated_at TEXT NOT NULL,
            PRIMARY KEY (brand, person_id)
        ) WITHOUT ROWID;
        CREATE INDEX author_stats_advocate ON author_stats (brand, advocate_score DESC);
        CREATE INDEX author_stats_detractor ON author_stats (brand, detractor_score DESC);
        CREATE INDEX author_stats_advocate_all ON author_stats (advocate_score DESC);
        CREATE INDEX author_stats_detractor_all ON author_stats (detractor_score DESC);
        CREATE INDEX author_stats_person ON author_stats (person_id);
        -- Weekly counts per brand, source, signal (transactional: reviews, relationship:
        -- social mentions) and basis (text: the model's label, stars: review ratings).
        CREATE TABLE advocacy_weekly (
            brand TEXT NOT NULL,
            week TEXT NOT NULL,
            source TEXT NOT NULL,
            signal TEXT NOT NULL,
            basis TEXT NOT NULL,
            mentions INTEGER NOT NULL,
            classified INTEGER NOT NULL,
            promoters INTEGER NOT NULL,
            passives INTEGER NOT NULL,
            detractors INTEGER NOT NULL,
            positive INTEGER NOT NULL,
            neutral INTEGER NOT NULL,
            negative INTEGER NOT NULL,
            PRIMARY KEY (brand, week, source, signal, basis)
        ) WITHOUT ROWID;
        CREATE TABLE aggregate_state (
            name TEXT PRIMARY KEY,
            value TEXT
        );
        CREATE TABLE users (
            id INTEGER PRIMARY KEY,
            username TEXT NOT NULL UNIQUE,
            password_hash TEXT NOT NULL,
            created_at TEXT NOT NULL,
            disabled INTEGER NOT NULL DEFAULT 0
        );
        -- Only a hash of the session token is stored, the cookie holds the token.
        CREATE TABLE sessions (
            token_hash TEXT PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id),
            csrf TEXT NOT NULL,
            created_at TEXT NOT NULL,
            expires_at TEXT NOT NULL
        );
        CREATE INDEX sessions_user ON sessions (user_id);
        -- Marketing marks on an author for a brand: contacted, rewarded, do_not_contact.
        CREATE TABLE author_marks (
            author_id INTEGER NOT NULL REFERENCES authors(id),
            brand TEXT NOT NULL,
            mark TEXT NOT NULL,
            note TEXT,
            set_by TEXT NOT NULL,
            set_at TEXT NOT NULL,
            PRIMARY KEY (author_id, brand, mark)
        );
        -- Label corrections by users: the newest per mention and field wins over the model.
        CREATE TABLE corrections (
            id INTEGER PRIMARY KEY,
            mention_id INTEGER NOT NULL REFERENCES mentions(id),
            field TEXT NOT NULL,
            label TEXT NOT NULL,
            model_label TEXT,
            model TEXT,
            set_by TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX corrections_mention ON corrections (mention_id, field, id);
        CREATE INDEX alerts_brand_created ON alerts (brand, created_at);
        CREATE INDEX mentions_created ON mentions (created_at);
        """
    )


@migrations()
def m030_advocates_indexes(db: Database) -> None:
    """Indexes for the advocates list's sort orders and an author's newest mentions."""
    run_script(
        db,
        """
        CREATE INDEX author_stats_brand_reach ON author_stats (brand, reach);
        CREATE INDEX author_stats_brand_mentions ON author_stats (brand, mentions);
        CREATE INDEX author_stats_brand_last ON author_stats (brand, last_at);
        CREATE INDEX author_stats_brand_promoters ON author_stats (brand, promoters);
        CREATE INDEX author_stats_brand_detractors ON author_stats (brand, detractors);
        CREATE INDEX author_stats_brand_flips ON author_stats (brand, flips);
        CREATE INDEX author_stats_reach ON author_stats (reach);
        CREATE INDEX author_stats_mentions ON author_stats (mentions);
        CREATE INDEX author_stats_last ON author_stats (last_at);
        CREATE INDEX mentions_author_created ON mentions (author_id, created_at);
        """
    )


@migrations()
def m040_classification_stance(db: Database) -> None:
    """The 5-point stance toward the mention's brand (models with a stance head; NULL otherwise)."""
    run_script(db, "ALTER TABLE classifications ADD COLUMN stance INTEGER; "
                   "ALTER TABLE classifications ADD COLUMN stance_score REAL")


@migrations()
def m050_reach_waits(db: Database) -> None:
    """Reach lookups as a queue that outlives the run (and a kill), and per-mention rule
    matches that wait for their author's reach (rules with ``min_reach``)."""
    run_script(
        db,
        """
        -- Authors whose reach a source is to look up, queued in the transaction of the page
        -- that brought them. A row leaves when the lookup has answered or has given up.
        CREATE TABLE reach_lookups (
            author_id INTEGER PRIMARY KEY REFERENCES authors(id),
            queued_at TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            next_at TEXT NOT NULL,
            last_error TEXT
        );
        CREATE INDEX reach_lookups_next ON reach_lookups (next_at);
        -- A mention that met every condition of a rule but min_reach while its author's reach
        -- was unknown: judged again when the reach is stored, when the lookup ends without
        -- it, or at `until`, whichever comes first. Then resolved, with the outcome.
        CREATE TABLE alert_waits (
            rule TEXT NOT NULL,
            mention_id INTEGER NOT NULL REFERENCES mentions(id),
            since TEXT NOT NULL,
            until TEXT NOT NULL,
            resolved_at TEXT,
            outcome TEXT,
            PRIMARY KEY (rule, mention_id)
        );
        CREATE INDEX alert_waits_open ON alert_waits (resolved_at, until)
        """,
    )


@migrations()
def m060_survey_score(db: Database) -> None:
    """A survey's 0-10 score (NPS), for mentions brought in by ``monitor import``: it counts in
    the advocacy index as its own basis, ``survey``."""
    run_script(db, "ALTER TABLE mentions ADD COLUMN score INTEGER")


@migrations()
def m080_embeddings_themes(db: Database) -> None:
    """Each classification's sentence vector (``monitor.vectors``: int8, 384 bytes for the
    shipped model; NULL where the engine gives none), and the themes ``monitor topics`` found,
    with their centroids, so a theme that persists keeps its id from one run to the next."""
    run_script(
        db,
        """
        ALTER TABLE classifications ADD COLUMN embedding BLOB;
        CREATE TABLE themes (
            id INTEGER PRIMARY KEY,
            brand TEXT NOT NULL,
            model TEXT NOT NULL,
            label TEXT NOT NULL,
            centroid BLOB NOT NULL,
            size INTEGER NOT NULL,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL
        );
        CREATE INDEX themes_brand_model ON themes (brand, model)
        """,
    )


@migrations()
def m090_governance(db: Database) -> None:
    """Data governance: the figures of mentions deleted by retention or an erasure (so the
    overview's history stays whole), the record that an erasure happened (without the data),
    and the store's own small settings (the erasure hash's salt)."""
    run_script(
        db,
        """
        -- Per brand, source, signal, basis and day: what advocacy_weekly counted of mentions that
        -- are gone. rebuild_weekly adds these to the live mentions' counts.
        CREATE TABLE retained_daily (
            brand TEXT NOT NULL,
            day TEXT NOT NULL,
            source TEXT NOT NULL,
            signal TEXT NOT NULL,
            basis TEXT NOT NULL,
            mentions INTEGER NOT NULL,
            classified INTEGER NOT NULL,
            promoters INTEGER NOT NULL,
            passives INTEGER NOT NULL,
            detractors INTEGER NOT NULL,
            positive INTEGER NOT NULL,
            neutral INTEGER NOT NULL,
            negative INTEGER NOT NULL,
            PRIMARY KEY (brand, day, source, signal, basis)
        ) WITHOUT ROWID;
        -- One row per `monitor forget`: when, a salted hash of the handle (never the handle), the
        -- source it was limited to, and how many rows of each table went.
        CREATE TABLE erasures (
            id INTEGER PRIMARY KEY,
            erased_at TEXT NOT NULL,
            subject_hash TEXT NOT NULL,
            source TEXT,
            authors INTEGER NOT NULL,
            mentions INTEGER NOT NULL,
            rows TEXT NOT NULL DEFAULT '{}'
        );
        -- One row per retention pass that deleted something (or a dry run's would-be counts).
        CREATE TABLE retention_runs (
            id INTEGER PRIMARY KEY,
            ran_at TEXT NOT NULL,
            dry_run INTEGER NOT NULL,
            mentions INTEGER NOT NULL,
            rows TEXT NOT NULL DEFAULT '{}'
        );
        CREATE TABLE governance_state (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL
        );
        CREATE INDEX mentions_source_key_created ON mentions (source_key, created_at);
        CREATE INDEX mentions_duplicate_of ON mentions (duplicate_of);
        CREATE INDEX alert_holds_mention ON alert_holds (mention_id);
        CREATE INDEX alert_waits_mention ON alert_waits (mention_id)
        """,
    )



@migrations()
def m100_inbox(db: Database) -> None:
    """The response desk: mentions that need an answer (one item per mention), its notes, and
    every change of an item with who made it and when. An item goes with its mention (retention,
    an erasure): ON DELETE CASCADE. The assignee is a user name, not a reference: a user
    disabled later keeps their assignments, visibly."""
    run_script(
        db,
        """
        CREATE TABLE inbox_items (
            id INTEGER PRIMARY KEY,
            mention_id INTEGER NOT NULL UNIQUE REFERENCES mentions(id) ON DELETE CASCADE,
            brand TEXT NOT NULL,
            priority TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'new',
            assignee TEXT,
            rule TEXT,
            entered_at TEXT NOT NULL,
            entered_by TEXT,
            mention_at TEXT NOT NULL,
            due_at TEXT NOT NULL,
            first_response_at TEXT,
            responded_by TEXT,
            closed_at TEXT,
            dismiss_reason TEXT,
            breach_alerted_at TEXT,
            updated_at TEXT NOT NULL,
            version INTEGER NOT NULL DEFAULT 1
        );
        CREATE INDEX inbox_items_state ON inbox_items (state, priority, due_at);
        CREATE INDEX inbox_items_brand_entered ON inbox_items (brand, entered_at);
        CREATE TABLE inbox_notes (
            id INTEGER PRIMARY KEY,
            item_id INTEGER NOT NULL REFERENCES inbox_items(id) ON DELETE CASCADE,
            author TEXT NOT NULL,
            text TEXT NOT NULL,
            created_at TEXT NOT NULL
        );
        CREATE INDEX inbox_notes_item ON inbox_notes (item_id);
        CREATE TABLE inbox_events (
            id INTEGER PRIMARY KEY,
            item_id INTEGER NOT NULL REFERENCES inbox_items(id) ON DELETE CASCADE,
            at TEXT NOT NULL,
            actor TEXT,
            action TEXT NOT NULL,
            from_state TEXT,
            to_state TEXT,
            assignee TEXT,
            detail TEXT
        );
        CREATE INDEX inbox_events_item ON inbox_events (item_id)
        """,
    )


@migrations()
def m110_relevance(db: Database) -> None:
    """Relevance (``monitor.relevance``): each classification's score of being about its
    mention's brand (NULL: not scored, relevant) and whether it fell under the brand's
    threshold (``off_topic``: kept, left out of figures, themes and alerts)."""
    run_script(
        db,
        """
        ALTER TABLE classifications ADD COLUMN relevance REAL;
        ALTER TABLE classifications ADD COLUMN off_topic INTEGER NOT NULL DEFAULT 0
        """,
    )


@migrations()
def m120_roles_audit(db: Database) -> None:
    """Roles (``monitor.roles``): every user has one; users there before roles existed become
    admins (nobody loses what they could do), later ones are members unless given another.
    The audit log (``store.audit``): who changed what, when; inbox changes stay in
    ``inbox_events`` and the audit log reads them from there."""
    run_script(
        db,
        """
        ALTER TABLE users ADD COLUMN role TEXT NOT NULL DEFAULT 'member'
            CHECK (role IN ('admin', 'member', 'viewer'));
        UPDATE users SET role = 'admin';
        CREATE TABLE audit_log (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            action TEXT NOT NULL,
            target_type TEXT,
            target_id TEXT,
            detail TEXT
        );
        CREATE INDEX audit_log_at ON audit_log (at);
        CREATE INDEX audit_log_actor ON audit_log (actor, at);
        CREATE INDEX audit_log_action ON audit_log (action, at);
        CREATE INDEX inbox_events_at ON inbox_events (at)
        """,
    )


PROGRAMME_STATUSES = ("identified", "contacted", "joined", "rewarded", "declined", "do_not_contact")
CODE_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"  # no 0/o, 1/l/i: read aloud or typed without mistakes
CODE_LENGTH = 8


@migrations()
def m130_programme(db: Database) -> None:
    """The advocate programme (``store.programme``): per person and brand a status with its
    history, a reward log, a referral code, and referrals imported from CSV files (rows that
    match no code, or cannot be read, kept as unmatched with the problem).

    The programme status is the one source of truth of the old marks: each person and brand
    with marks gets the status of the strongest (do_not_contact, else rewarded, else
    contacted) with the marks as history, and ``author_marks`` becomes a read-only view
    derived from the status (contacted: contacted, joined, rewarded or declined)."""
    import secrets

    run_script(
        db,
        """
        CREATE TABLE programme_members (
            person_id INTEGER NOT NULL REFERENCES authors(id),
            brand TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('identified', 'contacted', 'joined', 'rewarded', 'declined',
                                                   'do_not_contact')),
            code TEXT NOT NULL UNIQUE,
            note TEXT,
            changed_by TEXT NOT NULL,
            changed_at TEXT NOT NULL,
            created_at TEXT NOT NULL,
            PRIMARY KEY (person_id, brand)
        );
        CREATE INDEX programme_members_brand ON programme_members (brand, status);
        CREATE TABLE programme_events (
            id INTEGER PRIMARY KEY,
            person_id INTEGER NOT NULL,
            brand TEXT NOT NULL,
            at TEXT NOT NULL,
            actor TEXT NOT NULL,
            from_status TEXT,
            to_status TEXT NOT NULL,
            note TEXT
        );
        CREATE INDEX programme_events_person ON programme_events (person_id, brand, id);
        CREATE TABLE programme_rewards (
            id INTEGER PRIMARY KEY,
            person_id INTEGER NOT NULL,
            brand TEXT NOT NULL,
            what TEXT NOT NULL,
            value REAL NOT NULL,
            currency TEXT,
            rewarded_at TEXT NOT NULL,
            recorded_by TEXT NOT NULL,
            recorded_at TEXT NOT NULL,
            note TEXT
        );
        CREATE INDEX programme_rewards_person ON programme_rewards (person_id, brand);
        CREATE TABLE referral_imports (
            id INTEGER PRIMARY KEY,
            file_name TEXT NOT NULL,
            file_hash TEXT NOT NULL,
            imported_at TEXT NOT NULL,
            imported_by TEXT NOT NULL,
            rows INTEGER NOT NULL DEFAULT 0,
            matched INTEGER NOT NULL DEFAULT 0,
            unmatched INTEGER NOT NULL DEFAULT 0,
            already INTEGER NOT NULL DEFAULT 0
        );
        -- One row per referral line ever imported, matched to a code's person and brand or
        -- kept unmatched with its problem (unknown code, bad date or value) and raw text.
        -- row_key (code, date, value and the how-many-th such line of its file) makes a
        -- second import of the same lines add nothing.
        CREATE TABLE referrals (
            id INTEGER PRIMARY KEY,
            row_key TEXT NOT NULL UNIQUE,
            import_id INTEGER NOT NULL REFERENCES referral_imports(id),
            line INTEGER NOT NULL,
            code TEXT,
            person_id INTEGER,
            brand TEXT,
            referred_at TEXT,
            value REAL,
            currency TEXT,
            status TEXT NOT NULL CHECK (status IN ('matched', 'unmatched')),
            problem TEXT,
            raw TEXT
        );
        CREATE INDEX referrals_person ON referrals (person_id, brand);
        CREATE INDEX referrals_brand_at ON referrals (brand, referred_at)
        """,
    )
    marks: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for row in db.query("SELECT * FROM author_marks ORDER BY set_at, mark"):
        marks.setdefault((row["author_id"], row["brand"]), []).append(row)
    for (person, brand), rows in marks.items():
        kinds = {r["mark"] for r in rows}
        status = next(s for s in ("do_not_contact", "rewarded", "contacted") if s in kinds)
        last = next(r for r in rows if r["mark"] == status)
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
        db.execute("INSERT INTO programme_members (person_id, brand, status, code, note, changed_by, changed_at, "
                   "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                   [person, brand, status, code, last["note"], last["set_by"], last["set_at"], rows[0]["set_at"]])
        for r in rows:
            db.execute("INSERT INTO programme_events (person_id, brand, at, actor, from_status, to_status, note) "
                       "VALUES (?, ?, ?, ?, NULL, ?, ?)",
                       [person, brand, r["set_at"], r["set_by"], r["mark"],
                        "mark " + r["mark"] + (f": {r['note']}" if r["note"] else "")])
    run_script(
        db,
        """
        DROP TABLE author_marks;
        CREATE VIEW author_marks (author_id, brand, mark, note, set_by, set_at) AS
            SELECT person_id, brand, 'contacted', note, changed_by, changed_at FROM programme_members
                WHERE status IN ('contacted', 'joined', 'rewarded', 'declined')
            UNION ALL
            SELECT person_id, brand, 'rewarded', note, changed_by, changed_at FROM programme_members
                WHERE status = 'rewarded'
            UNION ALL
            SELECT person_id, brand, 'do_not_contact', note, changed_by, changed_at FROM programme_members
                WHERE status = 'do_not_contact'
        """,
    )


@migrations()
def m140_handoff(db: Database) -> None:
    """The hand-off (``monitor.handoff``): API tokens per user (only a hash of each is kept;
    ``prefix`` is its first characters, to tell tokens apart in a list), and the flags
    (advocate, detractor) already announced per person and brand, so an event goes out when a
    person newly becomes flagged, never again on the next refresh. The flags standing at the
    upgrade count as announced: only what changes afterwards is an event."""
    run_script(
        db,
        """
        CREATE TABLE api_tokens (
            id INTEGER PRIMARY KEY,
            user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
            name TEXT NOT NULL DEFAULT '',
            token_hash TEXT NOT NULL UNIQUE,
            prefix TEXT NOT NULL,
            scope TEXT NOT NULL CHECK (scope IN ('read', 'read-write')),
            created_at TEXT NOT NULL,
            created_by TEXT,
            expires_at TEXT,
            last_used_at TEXT,
            revoked_at TEXT,
            revoked_by TEXT
        );
        CREATE INDEX api_tokens_user ON api_tokens (user_id);
        CREATE TABLE handoff_flags (
            brand TEXT NOT NULL,
            person_id INTEGER NOT NULL,
            flag TEXT NOT NULL,
            flagged_at TEXT NOT NULL,
            PRIMARY KEY (brand, person_id, flag)
        ) WITHOUT ROWID;
        INSERT INTO handoff_flags (brand, person_id, flag, flagged_at)
            SELECT brand, person_id, flag, updated_at FROM author_stats WHERE flag IN ('advocate', 'detractor')
        """,
    )


@migrations()
def m150_workers(db: Database) -> None:
    """Several workers on one database (``monitor.workers``): each running daemon's row and
    heartbeat; leases (one holder at a time: a source's collection, the advocate refresh, the
    windowed rules...), free once their ``expires_at`` has passed; claims of single items
    (``kind`` 'classify': a mention being classified) with the same expiry; and a claim on
    each delivery being sent. A worker renews what it holds with its heartbeat, so what a dead
    worker held is free one lease later. Times are the database's clock, as ISO text."""
    run_script(
        db,
        """
        CREATE TABLE workers (
            id TEXT PRIMARY KEY,
            host TEXT NOT NULL,
            pid INTEGER NOT NULL,
            config_hash TEXT NOT NULL,
            started_at TEXT NOT NULL,
            heartbeat_at TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            stopped_at TEXT
        );
        CREATE TABLE leases (
            name TEXT PRIMARY KEY,
            holder TEXT NOT NULL,
            acquired_at TEXT NOT NULL,
            expires_at TEXT NOT NULL
        );
        CREATE TABLE work_claims (
            kind TEXT NOT NULL,
            item_id INTEGER NOT NULL,
            holder TEXT NOT NULL,
            expires_at TEXT NOT NULL,
            PRIMARY KEY (kind, item_id)
        );
        CREATE INDEX work_claims_holder ON work_claims (holder);
        ALTER TABLE deliveries ADD COLUMN claimed_by TEXT;
        ALTER TABLE deliveries ADD COLUMN claim_until TEXT;
        """,
    )
