"""Synthetic themes for the topics tests: mentions whose sentence vectors lie around a few
random directions (one per theme), with texts that name each theme's words."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np

from monitor.records import Classification, FetchResult, LabelScore, Mention
from monitor.store import Store
from monitor.vectors import pack

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MODEL = "vec-fake@1"
DIM = 384
THEMES = {
    "battery": ("battery drains overnight", "negative", "detractor"),
    "support": ("support team answered quickly", "positive", "promoter"),
    "shipping": ("shipping delivery took weeks", "negative", "none"),
}


def directions(seed: int = 7) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {name: rng.normal(size=DIM).astype(np.float32) for name in THEMES}


def classification(sentiment: str, advocacy: str, embedding: bytes | None) -> Classification:
    return Classification(LabelScore(sentiment, {sentiment: 0.9}), LabelScore(advocacy, {advocacy: 0.9}), MODEL,
                          embedding=embedding)


def add_themes(store: Store, counts: dict[str, int], *, brand: str = "Acme", days: tuple[int, int] = (1, 20),
               seed: int = 1, start_id: int = 0, noise: float = 0.6, same_text: bool = False,
               now: datetime = NOW, extra: str = "") -> list[int]:
    """``counts[theme]`` mentions of each theme, created ``days`` ago (spread), classified
    with a vector near the theme's direction."""
    rng = np.random.default_rng(seed)
    dirs = directions()
    mentions, labels = [], []
    n = start_id
    for name, count in counts.items():
        words, sentiment, advocacy = THEMES[name]
        for j in range(count):
            n += 1
            ago = days[0] + (days[1] - days[0]) * (j / max(count - 1, 1))
            text = f"{brand} {words}" if same_text else f"{brand} {words}, note {rng.integers(1_000_000)} {name}{extra}"
            mentions.append(Mention("demo", f"m{n}", brand, text, now - timedelta(days=ago), url=f"https://x.test/{n}"))
            vec = dirs[name] + noise * rng.normal(size=DIM).astype(np.float32) * np.abs(dirs[name]).mean()
            labels.append((sentiment, advocacy, vec))
    ids = store.save_batch("demo", "q", FetchResult(mentions, None))
    blobs = pack(np.stack([v for _s, _a, v in labels]))
    store.save_classifications([(i, classification(s, a, b)) for i, (s, a, _v), b in zip(ids, labels, blobs,
                                                                                       strict=True)])
    return ids


def without_vector(c: Classification) -> Classification:
    return replace(c, embedding=None)
