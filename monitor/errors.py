"""Every error the project raises on purpose.

    MonitorError                 base: the CLI turns it into a clean message, no traceback
    ├── ConfigError              config.yaml is missing, malformed or invalid (exit code 2)
    ├── StoreError               the database path is missing, unwritable or corrupt (or the server refuses)
    │   ├── StoreUnavailable     the database server cannot be reached now (down, restarting): `monitor run` waits
    │   └── ConstraintError      (store._pg) PostgreSQL refused a write: a unique, foreign key or check constraint
    ├── SourceError              a source could not be fetched this time (retry later)
    │   ├── SourceAuthError      credentials were refused: retrying will not help
    │   ├── MalformedResponseError  the response could not be parsed
    │   │   └── ApiChangedError  the response's shape changed (envelope, RPC, positions): health alerts at once
    │   ├── CursorError          a stored cursor is unreadable (reset to the query's start)
    │   ├── BlockedAddressError  a user-configured URL resolves to a forbidden address (SSRF guard)
    │   └── RequestStopped       (http_client) the process is stopping: a request cut short or not started
    ├── ModelError               a classifier model is missing, corrupt or cannot be loaded
    │   └── FinetuneRefusedError  (classify.finetune) too few or one-sided corrections, or no better
    ├── ImportFileError          (importer) a `monitor import` file fails as a whole: nothing stored
    ├── InputFileError           (classify.evaluation) a labelled or corrections file is unreadable (exit 2)
    ├── AccountError             (store.accounts) a user change refused: no such user or role, the last admin
    ├── InboxError               (store.inbox) an inbox change that cannot be made (no such item, wrong state)
    │   └── InboxConflictError   (store.inbox) the item changed since it was seen: nothing changed
    ├── ProgrammeError           (store.programme) a programme change refused: no such person, do not contact
    │   └── ProgrammeConflictError  (store.programme) the status changed since it was seen: nothing changed
    ├── ReferralFileError        (programme) a referral CSV unreadable as a whole (no header, not text)
    ├── TokenError               (tokens) an API token cannot be created: no such user, a scope above the role
    └── DeliveryError            an alert channel failed to deliver (retryable unless .permanent)

A class marked (module) is defined there, beside the code that raises it. Private classes
(a leading _) never leave their module and are not drawn. tests/test_docs.py compares this
tree with the real classes.
"""

from __future__ import annotations


class MonitorError(Exception):
    """Base class; ``exit_code`` is used by the CLI."""

    exit_code = 1


class ConfigError(MonitorError):
    exit_code = 2

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]


class StoreError(MonitorError):
    pass


class StoreUnavailable(StoreError):
    """The database server cannot be reached now (down, restarting, the network): worth
    waiting for, unlike a wrong password or a database that does not exist."""


class SourceError(MonitorError):
    """``status``/``detail``: the HTTP status and the start of the error body, when any."""

    def __init__(self, message: str, retry_after: float | None = None, *, status: int | None = None,
                 detail: str | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status
        self.detail = detail


class SourceAuthError(SourceError):
    pass


class MalformedResponseError(SourceError):
    pass


class ApiChangedError(MalformedResponseError):
    """The response is whole but no longer has the shape the source reads (a wrapper gone, a
    method renamed, every item's fields moved): the pipeline marks the run ``api changed``."""


class CursorError(SourceError):
    """Raised by ``fetch`` before any request; the pipeline resets the cursor and reports it."""


class ModelError(MonitorError):
    pass


class DeliveryError(MonitorError):
    def __init__(self, message: str, *, permanent: bool = False, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = retry_after


class BlockedAddressError(SourceError):
    pass
