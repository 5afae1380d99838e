"""CRM-ready exports of advocates and detractors: files the HubSpot and Salesforce contact
imports take as they are.

* ``hubspot``: headers named like HubSpot's default contact properties (First Name, Last
  Name, Email, Website URL, Lifecycle Stage), which its import maps by themselves, then our
  fields as ``Monitor ...`` columns (map them to custom properties, or leave them out).
* ``salesforce-lead`` / ``salesforce-contact``: the Lead / Contact field API names the Data
  Import Wizard and Data Loader map by themselves (FirstName, LastName, Company, Email,
  Website, LeadSource, Description), then our fields as ``Monitor_..._c`` custom field API
  names. A Lead needs a Company: we know none, so it is ``[not provided]``.

What we do not know stays empty: nobody's e-mail (HubSpot de-duplicates contacts by e-mail,
so re-importing this file adds contacts again unless ``Monitor Person ID`` is made a unique
property). A person without a display name gets the handle as last name. Every cell goes
through ``csvsafe`` (a handle like ``=HYPERLINK(...)`` stays text). People marked do not
contact are not exported."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from monitor.store import Store

FORMATS = ("hubspot", "salesforce-lead", "salesforce-contact")
NOT_PROVIDED = "[not provided]"  # a Lead's required Company when it is unknown
DO_NOT_CONTACT = "do_not_contact"  # the programme status whose people no export hands on

_OURS = ("person_id", "platform", "handle", "profile_url", "brand", "flag", "score", "mentions", "reach",
         "last_mention", "programme_status")
HUBSPOT = {"First Name": "first", "Last Name": "last", "Email": "email", "Website URL": "profile_url",
           "Lifecycle Stage": "lifecycle",
           **{"Monitor " + k.replace("_", " ").title().replace("Id", "ID").replace("Url", "URL"): k for k in _OURS}}
_SF_OURS = {"Monitor_" + k.title().replace("Id", "ID").replace("Url", "URL") + "__c": k for k in _OURS}
SALESFORCE_LEAD = {"FirstName": "first", "LastName": "last", "Company": "company", "Email": "email",
                   "Website": "profile_url", "LeadSource": "lead_source", "Description": "description", **_SF_OURS}
SALESFORCE_CONTACT = {"FirstName": "first", "LastName": "last", "Email": "email", "LeadSource": "lead_source",
                      "Description": "description", **_SF_OURS}
COLUMNS: dict[str, dict[str, str]] = {"hubspot": HUBSPOT, "salesforce-lead": SALESFORCE_LEAD,
                                      "salesforce-contact": SALESFORCE_CONTACT}


def split_name(display_name: str | None, handle: str) -> tuple[str, str]:
    """(first, last): a display name split at its last space; none: ("", handle)."""
    name = " ".join((display_name or "").split())
    if not name:
        return "", handle
    first, _, last = name.rpartition(" ")
    return (first, last) if first else ("", name)


def fields(row: Mapping[str, Any], kind: str, profile: Mapping[str, Any] | None, status: str | None) -> dict[str, Any]:
    """Our fields of one listed person (``Views.authors`` row) by neutral name."""
    profile = profile or {}
    first, last = split_name(profile.get("display_name"), row["handle"])
    score = row["advocate_score"] if kind == "advocate" else row["detractor_score"]
    last_at = (row.get("last_at") or "")[:10]
    return {
        "first": first, "last": last, "email": "", "company": NOT_PROVIDED, "lead_source": "Web",
        "lifecycle": "evangelist" if kind == "advocate" and row.get("flag") == "advocate" else "",
        # a person listed unflagged (the export takes the page's ranking) is not called a detractor
        "description": (f"{row['flag'] + ' of' if row.get('flag') else 'not flagged for'} {row['brand']} on "
                        f"{row['source']} (@{row['handle']}), {kind} score {score:.0f}, "
                        f"last mention {last_at or 'unknown'}"),
        "person_id": row["person_id"], "platform": row["source"], "handle": row["handle"],
        "profile_url": profile.get("url") or "", "brand": row["brand"], "flag": row.get("flag") or "",
        "score": round(float(score), 1), "mentions": row["mentions"], "reach": row.get("reach"),
        "last_mention": row.get("last_at") or "", "programme_status": status or "",
    }


def programme_status(store: Store) -> Callable[[int, str], str | None]:
    """Each person's advocate-programme status per brand (``store.programme``; None: not in
    the programme)."""
    def status(person_id: int, brand: str) -> str | None:
        member = store.programme.member(person_id, brand)
        return str(member["status"]) if member else None
    return status


def rows(listed: Iterable[Mapping[str, Any]], kind: str, fmt: str, profiles: Mapping[int, Mapping[str, Any]],
         status_of: Callable[[int, str], str | None] | None = None
         ) -> tuple[list[dict[str, Any]], list[str], int]:
    """(rows keyed by the format's headers, the headers, how many people were left out) for
    ``csvsafe``. People marked do not contact for the brand are left out: a CRM import is
    where outreach starts, and neither HubSpot's nor Salesforce's import would keep them
    from it."""
    if fmt not in COLUMNS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}")
    columns = COLUMNS[fmt]
    out, left_out = [], 0
    for r in listed:
        status = status_of(r["person_id"], r["brand"]) if status_of else None
        if status == DO_NOT_CONTACT:
            left_out += 1
            continue
        f = fields(r, kind, profiles.get(r["person_id"]), status)
        out.append({header: f[name] for header, name in columns.items()})
    return out, list(columns), left_out
