"""The demo's sample mentions: enough weeks and mentions for the advocacy index, several
sources, recurring authors, no repeated texts."""

from __future__ import annotations

from collections import Counter

from monitor.collect.demo import load_samples

WEEK = 168  # hours


def posts_hours() -> list[float]:
    return sorted(s["hours_ago"] for s in load_samples() if s.get("kind") != "review")


def test_samples_are_complete_and_unique():
    samples = load_samples()
    assert len(samples) >= 350
    for s in samples:
        assert s["source"] and s["author"] and s["text"].strip() and s["hours_ago"] >= 0, s
        if s.get("kind") == "review":
            assert s["rating"] in {1, 2, 3, 4, 5}, s
        if s.get("reach") is not None:
            assert s["reach_kind"] in {"karma", "followers"}, s
    texts = Counter(" ".join(s["text"].lower().split()) for s in samples)
    assert texts.most_common(1)[0][1] == 1, texts.most_common(3)


def test_every_week_of_the_samples_holds_enough_posts_for_the_index():
    """The index needs 30 classified mentions a week: every 7-day span of the samples (where
    the calendar weeks fall depends on the day the demo runs) holds at least 35 posts."""
    hours = posts_hours()
    assert hours[-1] >= 8 * WEEK  # about nine weeks
    spans = [sum(1 for h in hours if start <= h < start + WEEK) for start in range(0, int(hours[-1]) - WEEK + 1)]
    assert min(spans) >= 35


def test_samples_mix_sources_stars_and_recurring_authors():
    samples = load_samples()
    sources = Counter(s["source"] for s in samples)
    assert set(sources) >= {"hackernews", "reddit", "appstore", "mastodon", "bluesky", "google_news"}
    assert set(Counter(s["rating"] for s in samples if s.get("kind") == "review")) == {1, 2, 3, 4, 5}
    authors = Counter((s["source"], s["author"]) for s in samples)
    assert sum(n >= 5 for n in authors.values()) >= 10  # regulars, advocates and detractors over the weeks
    weeks = {a: {int(s["hours_ago"] // WEEK) for s in samples if (s["source"], s["author"]) == a}
             for a, n in authors.items() if n >= 5}
    assert sum(len(w) >= 5 for w in weeks.values()) >= 5  # posting over many weeks, not in one burst
    assert sum("bigco" in s["text"].lower() for s in samples) >= 20  # the competitor the demo also tracks
    assert any("@acme" in s["text"].lower() for s in samples)  # the brand's own handle
    assert sum(not s["text"].isascii() for s in samples) >= 8  # a few posts in other languages
    reach = {}
    for s in samples:  # one author, one reach
        if s.get("reach") is not None:
            assert reach.setdefault((s["source"], s["author"]), s["reach"]) == s["reach"], s
