"""The web page's mention search (store.advocacy.search_mentions) on both backends: newest
first with its filters, a user's correction winning over the model, off-topic left out, and
every page the same as the plain reading of the rows, also where PostgreSQL reads it window by
window (more mentions than its first windows, ties in the time, a rare match, no match)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from monitor.records import Classification, FetchResult, LabelScore, Mention

MODEL = "m@1"
N = 3_000
T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def filled(store):
    # a time shared by three mentions now and then: the order falls back to the id
    page = [Mention("reddit" if i % 3 else "hackernews", f"n{i}", "Acme" if i % 5 else "Globex",
                    f"post {i}" + (" needle" if i % 997 == 0 else ""),
                    T0 + timedelta(minutes=i - i % 3 * (i % 11 == 0)))
            for i in range(N)]
    ids = store.save_batch("Acme:reddit", "q", FetchResult(page, None, True))
    labels = ("promoter", "none", "detractor", "none", "promoter", "none", "detractor")
    results = []
    for k, mid in enumerate(ids):
        results.append((mid, Classification(LabelScore("neutral", {"neutral": 1.0}),
                                            LabelScore(labels[k % 7], {labels[k % 7]: 0.9}), MODEL,
                                            off_topic=k % 13 == 0)))
    store.save_classifications(results)
    for mid in ids[::101]:  # corrections win over the model
        store.accounts.add_correction(mid, "advocacy", "detractor", "ann")
    return store


def expected(store, *, brand=None, advocacy=None, q=None, source=None):
    rows = store.query("SELECT m.id, m.brand, m.source, m.text, m.created_at, c.advocacy, c.off_topic, "
                       "(SELECT label FROM corrections k WHERE k.mention_id = m.id AND k.field = 'advocacy' "
                       "ORDER BY k.id DESC LIMIT 1) AS fixed FROM mentions m "
                       "LEFT JOIN classifications c ON c.mention_id = m.id AND c.model = ?", [MODEL])
    out = [r for r in rows if not r["off_topic"]
           and (brand is None or r["brand"] == brand) and (source is None or r["source"] == source)
           and (advocacy is None or (r["fixed"] or r["advocacy"]) == advocacy)
           and (q is None or q in r["text"])]
    return [r["id"] for r in sorted(out, key=lambda r: (r["created_at"], r["id"]), reverse=True)]


@pytest.mark.parametrize("filters", [{"brand": "Acme", "advocacy": "detractor"}, {}, {"q": "needle"},
                                     {"q": "nowhere"}, {"source": "hackernews", "advocacy": "promoter"}])
def test_every_page_is_the_plain_reading(filled, filters):
    want = expected(filled, **filters)
    for offset in (0, 50, 1_950, 2_400):
        got = filled.advocacy.search_mentions(MODEL, limit=50, offset=offset, **filters)
        assert [r["id"] for r in got] == want[offset:offset + 50], (filters, offset)
