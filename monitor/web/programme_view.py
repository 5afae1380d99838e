"""What the author page shows of the advocate programme (read only; pages.py renders it, the
forms are in web/programme.py)."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from monitor import programme as prog
from monitor.store.programme import STATUSES


def programmes(request: Request) -> dict:
    return prog.programmes_of(request.app.state.settings.brands)


def author_programme(request: Request, person_id: int, brands: list[str]) -> dict[str, Any]:
    """The programme part of an author page: per brand (those the person has figures for, and
    those they are in the programme of) the status, history, rewards, referrals and link."""
    reader = request.app.state.reader
    configured = programmes(request)
    members = {m["brand"]: m for m in reader.programme.members_of(person_id)}
    out = []
    for brand in sorted({*brands, *members}):
        m = members.get(brand)
        p = configured.get(brand)
        out.append({
            "brand": brand, "member": m, "status": m["status"] if m else None, "configured": p is not None,
            "currency": p.currency if p else "",
            "link": prog.referral_link(p, m["code"]) if p and m and m["status"] != "do_not_contact" else None,
            "events": reader.programme.events(person_id, brand)[:50],
            "rewards": reader.programme.rewards(person_id, brand),
            "referrals": reader.programme.referrals(person_id, brand)[:200],
        })
    return {"brands": {b["brand"]: b for b in out}, "statuses": STATUSES,
            "message": request.query_params.get("done", "")[:300],
            "error": request.query_params.get("error", "")[:300]}
