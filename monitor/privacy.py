"""Redaction of contact details in stored text (``privacy.redact_contacts``): e-mail
addresses become ``[email]`` and phone numbers ``[phone]`` before a mention's title and text
are stored (``Store.clean_text``), so neither the database, the page, the exports nor the
alerts hold them.

Phone numbers are recognised by shape only, in the forms people write them: international
(``+44 20 7946 0958``, ``+1-202-555-0143``), with an area code in parentheses (``(555)
123-4567``), North American (``555-123-4567``, ``1-800-555-0199``, ``555.123.4567``) and
national with a trunk 0 (``020 7946 0958``, ``07700 900123``). Digits without separators,
prices, dates, times, version numbers and IP addresses are left alone: a bare run of
digits is as likely an order number as a phone number, and wrongly masked text would
mislead the classifier and the reader.
"""

from __future__ import annotations

import re

EMAIL = "[email]"
PHONE = "[phone]"

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?)*\.[A-Za-z]{2,24}\b")
_SEP = r"[ \-.\u00a0]"
_PHONE = re.compile(
    r"(?<![\w.,/:$€£#+-])(?:"
    rf"\+\d{{1,3}}{_SEP}?(?:\(\d{{1,4}}\){_SEP}?)?\d{{1,4}}(?:{_SEP}?\d{{2,4}}){{1,4}}"  # +44 20 7946 0958
    rf"|\(\d{{2,5}}\){_SEP}?\d{{3,4}}[ \-]?\d{{3,4}}"  # (555) 123-4567
    r"|(?:1[ \-])?\d{3}-\d{3}-\d{4}|\d{3} \d{3} \d{4}|\d{3}\.\d{3}\.\d{4}"  # 555-123-4567, 1-800-555-0199
    r"|0\d{2,4}[ \-]\d{3,4}(?:[ \-]?\d{3,4})?"  # 020 7946 0958, 07700 900123
    r")(?![\w/:%]|[.,-]\d)"
)


def _phone(match: re.Match[str]) -> str:
    digits = sum(c.isdigit() for c in match.group(0))
    return PHONE if 7 <= digits <= 15 else match.group(0)


def redact_contacts(text: str) -> str:
    """``text`` with e-mail addresses and phone numbers replaced by ``[email]`` and ``[phone]``."""
    if "@" in text:
        text = _EMAIL.sub(EMAIL, text)
    return _PHONE.sub(_phone, text)
