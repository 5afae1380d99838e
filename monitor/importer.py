"""Feedback from other channels (survey verbatims with their 0-10 score, support tickets,
exports from other tools) as CSV or JSONL -> Mentions of one named source of a brand.

A file is read whole and checked before anything is stored: ``read_file`` returns the
mentions and the bad rows (skipped, each with its line number), or raises ``ImportFileError``
when the file fails as a whole (too large, undecodable bytes, a mapped column missing,
broken CSV quoting), naming the line or column. Strings are cleaned by ``Mention`` itself.

Each row gets a stable id: the ``--id`` column, else a hash of the row's content, so
importing the same file again stores nothing new.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from monitor.errors import MonitorError
from monitor.records import Author, Mention, bounded_int

SOURCE_TYPE = "import"
MAX_BYTES = 2 * 1024**3  # a larger file is refused before it is read
FIELDS = ("text", "author", "date", "url", "score", "id")


class ImportFileError(MonitorError):
    """The file fails as a whole: nothing of it is stored."""


@dataclass(frozen=True)
class Mapping:
    """Which column (CSV header, JSONL key) holds each field; only ``text`` is required."""

    text: str = "text"
    author: str | None = None
    date: str | None = None
    url: str | None = None
    score: str | None = None
    id: str | None = None

    def columns(self) -> dict[str, str]:
        return {f: c for f in FIELDS if (c := getattr(self, f)) is not None}


@dataclass
class ImportResult:
    mentions: list[Mention] = field(default_factory=list)
    bad: list[tuple[int, str]] = field(default_factory=list)  # (line, why)
    rows: int = 0


def detect_format(path: Path, fmt: str | None) -> str:
    if fmt:
        return fmt
    return "jsonl" if path.suffix.lower() in (".jsonl", ".ndjson") else "csv"


def _lines(fh: BinaryIO, encoding: str, progress: Callable[[int], None]) -> Iterator[tuple[int, str]]:
    """(line number, decoded line with its ending); a BOM on the first line is dropped."""
    for n, raw in enumerate(fh, start=1):
        progress(len(raw))
        if n == 1 and raw.startswith(b"\xef\xbb\xbf") and encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
            raw = raw[3:]
        try:
            yield n, raw.decode(encoding)
        except UnicodeDecodeError as exc:
            raise ImportFileError(f"line {n}: bytes not valid {encoding} at column {exc.start + 1} "
                                  f"(mixed encodings? try --encoding); nothing imported") from None


def _parse_date(value: Any) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    text = str(value).strip()
    if not text:
        raise ValueError("missing date")
    try:
        if text.isdigit():
            return datetime.fromtimestamp(int(text), UTC)
        parsed = datetime.fromisoformat(text)
    except (ValueError, OverflowError, OSError):
        raise ValueError(f"bad date {text[:40]!r} (ISO 8601 or Unix seconds)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _parse_score(value: Any) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    number: Any = value
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            raise ValueError(f"bad score {value.strip()[:20]!r} (0-10)") from None
    score = bounded_int(number, 0, 10)
    if score is None:
        raise ValueError(f"score out of range: {str(value).strip()[:20]} (0-10)")
    return score


def _mention(row: dict[str, Any], mapping: Mapping, *, brand: str, name: str, kind: str,
             now: datetime) -> Mention:
    """One row -> a Mention; ValueError names what is wrong with the row."""
    text = row.get(mapping.text)
    if text is None or not str(text).strip():
        raise ValueError(f"missing text (column {mapping.text!r})")
    if mapping.id is not None:
        key = row.get(mapping.id)
        if key is None or not str(key).strip():
            raise ValueError(f"missing id (column {mapping.id!r})")
        native = str(key).strip()
    else:
        content = json.dumps(row, sort_keys=True, ensure_ascii=True, default=str)
        native = "sha256:" + hashlib.sha256(content.encode()).hexdigest()[:32]
    extra: dict[str, Any] = {}
    if mapping.date is not None:
        created = _parse_date(row.get(mapping.date) if row.get(mapping.date) is not None else "")
    else:
        created, extra["created_at_estimated"] = now, True
    score = _parse_score(row.get(mapping.score)) if mapping.score is not None else None
    handle = row.get(mapping.author) if mapping.author is not None else None
    url = row.get(mapping.url) if mapping.url is not None else None
    return Mention(
        source=SOURCE_TYPE, native_id=f"{name}:{native}", brand=brand, text=str(text), created_at=created,
        url=str(url).strip() or None if url is not None else None,
        author=Author(source=SOURCE_TYPE, handle=str(handle).strip()) if handle is not None and str(handle).strip()
        else None,
        kind=kind, score=score, extra=extra,
    )


def _csv_rows(lines: Iterator[tuple[int, str]], mapping: Mapping, delimiter: str
              ) -> Iterator[tuple[int, dict[str, Any]]]:
    current = [0]

    def text_lines() -> Iterator[str]:
        for n, line in lines:
            current[0] = n
            yield line

    reader = csv.reader(text_lines(), delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise ImportFileError("the file is empty: no header line; nothing imported")
        header = [h.strip() for h in header]
        missing = [c for c in mapping.columns().values() if c not in header]
        if missing:
            hint = ""
            if len(header) == 1 and any(d in header[0] for d in ";\t|,"):
                hint = " (one column only: wrong delimiter? try --delimiter)"
            shown = ", ".join(repr(h[:40]) for h in header[:12])
            raise ImportFileError(f"line 1: column {missing[0]!r} not in the header ({shown}){hint}; "
                                  "nothing imported")
        for values in reader:
            start = current[0] - sum(v.count("\n") for v in values)  # a quoted field may span lines
            if not any(v.strip() for v in values):
                continue
            yield start, dict(zip(header, values, strict=False))
    except csv.Error as exc:
        raise ImportFileError(f"line {current[0]}: not readable as CSV ({exc}); nothing imported") from None


def _jsonl_rows(lines: Iterator[tuple[int, str]], bad: list[tuple[int, str]]
                ) -> Iterator[tuple[int, dict[str, Any]]]:
    for n, line in lines:
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            bad.append((n, "not valid JSON"))
            continue
        if not isinstance(obj, dict):
            bad.append((n, "not a JSON object"))
            continue
        yield n, obj


def read_file(path: Path, mapping: Mapping, *, brand: str, name: str, fmt: str | None = None, kind: str = "survey",
              delimiter: str = ",", encoding: str = "utf-8", now: datetime | None = None,
              max_bytes: int = MAX_BYTES, progress: Callable[[int], None] | None = None) -> ImportResult:
    """Every row of the file, checked: mentions to store and bad rows (skipped). Raises
    ImportFileError when the file fails as a whole. ``progress`` gets the bytes read."""
    progress = progress or (lambda n: None)
    size = os.stat(path).st_size
    if size > max_bytes:
        raise ImportFileError(f"{path.name}: {size:,} bytes, over the limit of {max_bytes:,}; "
                              "split the file; nothing imported")
    now = now or datetime.now(UTC)
    jsonl = detect_format(path, fmt) == "jsonl"
    out = ImportResult()
    seen_keys: set[str] = set()
    with open(path, "rb") as fh:
        lines = _lines(fh, encoding, progress)
        rows = _jsonl_rows(lines, out.bad) if jsonl else _csv_rows(lines, mapping, delimiter)
        for n, row in rows:
            out.rows += 1
            seen_keys.update(row)
            try:
                out.mentions.append(_mention(row, mapping, brand=brand, name=name, kind=kind, now=now))
            except (ValueError, TypeError) as exc:
                out.bad.append((n, str(exc)))
    if jsonl and out.rows:
        missing = [c for c in mapping.columns().values() if c not in seen_keys]
        if missing:
            raise ImportFileError(f"key {missing[0]!r} is in no line of the file; nothing imported")
    out.bad.sort()
    return out
