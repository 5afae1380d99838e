"""The one CSV writer: every CSV the monitor writes (web exports, ``--format csv`` on the
CLI, ``monitor model predict``) goes through here, so every one is safe to open in a
spreadsheet. A test fails on any other ``csv.writer`` / ``csv.DictWriter`` in the package.

Formula injection: a cell whose text starts with ``= + - @`` (or their full-width forms),
also behind leading whitespace, line breaks or invisible characters (a spreadsheet trims
those before it parses), or that starts with a tab or carriage return, is run as a formula
by Excel, LibreOffice and Google Sheets. Such a text gets a leading apostrophe: shown as
text, never evaluated. Numbers stay numbers (a negative score is no formula).

The prefix is reversible, so the corrections export stays evaluation data: a text that
already starts with apostrophes in front of a formula start gets one more, and
``restore`` (applied by the CSV readers of evaluation and fine-tuning) takes exactly one
off wherever ``neutralise`` put one on.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, Any

FORMULA_STARTS = frozenset("=+-@\uff1d\uff0b\uff0d\uff20")  # and the full-width = + - @
CONTROL_STARTS = ("\t", "\r")
QUOTE = "'"


def _skippable(ch: str) -> bool:
    """Characters a spreadsheet may drop before a formula: whitespace (any Unicode space,
    line and paragraph separators), control and format (zero-width) characters."""
    return ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf", "Zs", "Zl", "Zp")


def is_formula(text: str) -> bool:
    """Would a spreadsheet read this text as a formula (or a cell-splitting control)?"""
    if text.startswith(CONTROL_STARTS):
        return True
    for ch in text:
        if not _skippable(ch):
            return ch in FORMULA_STARTS
    return False


def neutralise(value: Any) -> Any:
    """The value, with a leading apostrophe when it is a text a spreadsheet would run
    (or such a text already behind apostrophes, so that ``restore`` can undo it)."""
    if isinstance(value, str) and is_formula(value.lstrip(QUOTE)):
        return QUOTE + value
    return value


def restore(text: str) -> str:
    """The text ``neutralise`` was given: one apostrophe off where it put one on."""
    if text.startswith(QUOTE) and is_formula(text.lstrip(QUOTE)):
        return text[1:]
    return text


class SafeWriter:
    """``csv.DictWriter``'s shape (rows are mappings, columns fixed at the start; missing
    keys are empty cells, extra keys ignored), every cell through ``neutralise``."""

    def __init__(self, stream: IO[str], columns: Sequence[str], *, header: bool = True,
                 lineterminator: str = "\r\n") -> None:
        self.columns = list(columns)
        self._writer = csv.writer(stream, lineterminator=lineterminator)
        if header:
            self._writer.writerow([neutralise(c) for c in self.columns])

    def writerow(self, row: Mapping[str, Any]) -> None:
        self._writer.writerow([neutralise(row.get(c)) for c in self.columns])

    def writerows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        for row in rows:
            self.writerow(row)


def write(stream: IO[str], rows: Iterable[Mapping[str, Any]], columns: Sequence[str], **kwargs: Any) -> None:
    """A header and ``rows`` as CSV on ``stream``."""
    SafeWriter(stream, columns, **kwargs).writerows(rows)


def to_text(rows: Iterable[Mapping[str, Any]], columns: Sequence[str], **kwargs: Any) -> str:
    """A header and ``rows`` as one CSV text (for a download)."""
    buf = io.StringIO()
    write(buf, rows, columns, **kwargs)
    return buf.getvalue()
