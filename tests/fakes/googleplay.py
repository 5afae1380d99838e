"""The batchexecute wire format of Google Play's reviews RPC, for tests: a payload wrapped the
way the web store answers (``)]}'``, a ``wrb.fr`` row for ``oCPfdb`` holding the payload as JSON
text, then the ``di`` and ``af.httprm`` rows), and unwrapped again."""

from __future__ import annotations

import json
from typing import Any

PREFIX = ")]}'\n\n"


def wrap(payload: Any, rpc: str = "oCPfdb") -> bytes:
    inner = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    rows = [["wrb.fr", rpc, inner, None, None, None, "generic"], ["di", 71],
            ["af.httprm", 70, "-4203874541226531957", 12]]
    return (PREFIX + json.dumps(rows, separators=(",", ":"))).encode()  # ASCII: a lone surrogate travels escaped


def unwrap(body: bytes) -> Any:
    text = body.decode()
    assert text.startswith(PREFIX)
    rows = json.loads(text[len(PREFIX):])
    return json.loads(rows[0][2])


def rewrap(body: bytes, payload: Any) -> bytes:
    """``body`` with its payload replaced, the rest of the answer as it was."""
    text = body.decode()
    rows = json.loads(text[len(PREFIX):])
    rows[0][2] = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return (PREFIX + json.dumps(rows, separators=(",", ":"))).encode()  # ASCII: a lone surrogate travels escaped
