"""The records are where values from outside enter: whatever a source hands them, what
comes out is something the store can hold (reach in int64, times in range, strings free of
lone surrogates), and the one time parser of the sources is total."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.collect._common import parse_time, time_or_none
from monitor.records import INT64_MAX, INT64_MIN, OUT_OF_RANGE, TIME_MAX, TIME_MIN, Author, FetchResult, Mention
from monitor.store import Store
from monitor.textutil import safe_text

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SURROGATES = st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF) | st.sampled_from("a <\x00\r"),
                     max_size=20)


def mention(**kw) -> Mention:
    return Mention(**{"source": "bluesky", "native_id": "at://x/1", "brand": "Acme", "text": "acme",
                      "created_at": NOW, **kw})


@pytest.mark.parametrize("reach", [2**63, 10**20, -(2**63) - 1, float("inf"), float("nan"), 1e20, True, "12"])
def test_a_reach_the_store_cannot_hold_is_unknown_and_marked(reach, tmp_path):
    m = mention(author=Author(source="bluesky", handle="jane", reach=reach, reach_kind="followers"))
    assert m.author.reach is None and m.author.reach_kind is None
    if reach is not True and reach != "12":
        assert m.extra[OUT_OF_RANGE] == ["author.reach"]
    store = Store(tmp_path / "m.db", now=lambda: NOW)
    store.save_batch("Acme:bluesky", "acme", FetchResult([m], None))  # raised OverflowError before
    assert store.query("SELECT reach FROM authors") == [{"reach": None}]
    assert json.loads(store.query("SELECT extra FROM mentions")[0]["extra"]).get(OUT_OF_RANGE) == \
        m.extra.get(OUT_OF_RANGE)


@pytest.mark.parametrize("reach", [0, 2**63 - 1, INT64_MIN, 7.0])
def test_a_reach_in_range_is_kept(reach):
    author = Author(source="hackernews", handle="pg", reach=reach, reach_kind="karma")
    assert author.reach == int(reach) and author.reach_kind == "karma" and author.out_of_range == ()


@given(text=SURROGATES, lang=SURROGATES, handle=SURROGATES, extra=SURROGATES)
def test_every_string_is_cleaned_once_here(text, lang, handle, extra):
    m = mention(text=text, title=text, lang=lang, url=text, matched_term=text, native_id=text or "x",
                author=Author(source="bluesky", handle=handle, display_name=handle), extra={extra: [extra, 2**70]})
    for value in (m.text, m.title, m.lang, m.url, m.native_id, m.matched_term, m.author.handle,
                  m.author.display_name, json.dumps(m.extra, ensure_ascii=False)):
        if value is not None:
            value.encode("utf-8")  # raises on a lone surrogate
            assert "\x00" not in value


def test_cleaning_twice_changes_nothing():
    long = "x" * 200_000
    m = mention(text=long)
    assert len(m.text) <= 100_000 and m.text.endswith("[truncated]")
    again = mention(text=m.text)
    assert again.text == m.text and safe_text(m.text) == m.text


@pytest.mark.parametrize("when", [datetime(1899, 12, 31, tzinfo=UTC), TIME_MAX, datetime(9999, 12, 31, tzinfo=UTC),
                                  datetime.max.replace(tzinfo=timezone(timedelta(hours=-23)))])
def test_a_time_out_of_range_cannot_be_built(when):
    with pytest.raises(ValueError):
        mention(created_at=when)


def test_times_are_aware_utc():
    assert mention(created_at=datetime(2026, 1, 1)).created_at.tzinfo is UTC
    local = datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    assert mention(created_at=local).created_at == datetime(2026, 1, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize("rating", [0, 6, 2**63, True, 4.5])
def test_a_rating_out_of_range_cannot_be_built(rating):
    with pytest.raises(ValueError):
        mention(rating=rating)


# ------------------------------------------------------------------------------ time parsing


@pytest.mark.parametrize("value", [2**62, 2**63, 10**20, 1e17, -1e17, float("nan"), float("inf"), True, None, [1],
                                   {"t": 1}, "9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00+23:59", "+10000-01-01",
                                   "2026-13-45", "", "x" * 10_000, "2026-11-20T12:00:00\ud800Z"])
def test_parse_time_raises_value_error_only(value):
    with pytest.raises(ValueError):
        parse_time(value)
    assert time_or_none(value) is None


@given(st.one_of(st.integers(min_value=-(2**80), max_value=2**80), st.floats(), st.text(max_size=40), st.booleans(),
                 st.none(), st.datetimes().map(lambda d: d.isoformat())))
def test_parse_time_is_total(value):
    try:
        found = parse_time(value)
    except ValueError:
        return
    assert found.tzinfo is UTC and TIME_MIN <= found < TIME_MAX


def test_parse_time_reads_what_the_sources_send():
    assert parse_time(1795256102) == datetime.fromtimestamp(1795256102, UTC)
    assert parse_time(1795256102.5).microsecond == 500_000
    assert parse_time("2026-11-20T10:00:00.123Z") == datetime(2026, 11, 20, 10, 0, 0, 123000, tzinfo=UTC)
    assert parse_time("2026-11-20T12:00:00+02:00") == datetime(2026, 11, 20, 10, tzinfo=UTC)
    assert INT64_MAX == 2**63 - 1
