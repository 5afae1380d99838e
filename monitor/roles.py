"""Who may do what: the one permission table (the web routes, the JSON API and the templates
all ask ``can``; nothing else decides).

Three roles, each able to do everything the one before it can:

==========  ====================================================================
``viewer``  read every page and the JSON API; their own read-only API tokens
``member``  + change inbox items (assign, respond, close, dismiss, re-open, bulk, add by
            hand), inbox notes, author marks, label corrections, author links, the
            advocate programme, CSV and CRM exports, their own read-write API tokens
``admin``   + manage users (add, role, disable, enable), every user's API tokens,
            the audit log page
==========  ====================================================================

A permission is a short name (``PERMISSIONS``); asking about one that is not in the table is
a programming error (KeyError), so a typo fails in the tests instead of letting everyone in.
An API token never exceeds its owner: a request made with one has the owner's role, and a
read-only token only ``read``.
"""

from __future__ import annotations

ROLES = ("viewer", "member", "admin")  # least first: each may do what the ones before it may
DEFAULT_ROLE = "member"

# permission -> the least role that has it
PERMISSIONS: dict[str, str] = {
    "read": "viewer",             # every page, the JSON API's GETs
    "token.own": "viewer",        # one's own API tokens (a viewer's are read-only)
    "inbox.change": "member",     # assign, unassign, respond, close, dismiss, reopen, bulk, add a mention
    "inbox.note": "member",       # internal notes on an inbox item
    "mark": "member",             # contacted / rewarded / do not contact
    "correct": "member",          # label corrections
    "link": "member",             # author links (same person) and unlinks
    "programme": "member",        # advocate programme status, rewards, referral imports
    "export": "member",           # CSV and CRM exports
    "token.write": "member",      # read-write API tokens (one's own)
    "token.any": "admin",         # every user's API tokens
    "user.manage": "admin",       # add users, change roles, disable, enable
    "audit.read": "admin",        # the audit log
}


def rank(role: str | None) -> int:
    """0 viewer, 1 member, 2 admin; -1 for no or an unknown role (may do nothing)."""
    return ROLES.index(role) if role in ROLES else -1


def role_needed(permission: str) -> str:
    """The least role that has ``permission`` (KeyError for an unknown permission)."""
    return PERMISSIONS[permission]


def can(role: str | None, permission: str) -> bool:
    """Whether a user of ``role`` has ``permission`` (KeyError for an unknown permission)."""
    return rank(role) >= rank(PERMISSIONS[permission])


def at_least(role: str | None, needed: str) -> bool:
    """Whether ``role`` is ``needed`` or above (ValueError for an unknown ``needed``)."""
    if needed not in ROLES:
        raise ValueError(f"unknown role {needed!r} (one of {', '.join(ROLES)})")
    return rank(role) >= rank(needed)


def refusal(role: str | None, permission: str) -> str:
    """The words a refused person reads: which role it needs, which they have."""
    return (f"this needs the {role_needed(permission)} role (you are {'a ' + role if role in ROLES else 'no user'}); "
            "an admin can change roles")
