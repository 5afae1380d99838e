from __future__ import annotations

import textwrap
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.records import Classification, LabelScore
from monitor.store import Store
from tests.pg_support import BACKEND, _postgresql_backend, pg_server, pg_url  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_MODEL = ROOT / "monitor" / "models" / "advocacy-minilm"  # bundled with the package


class KeywordClassifier:
    """A fake Classifier for tests of the stages around the model: negative when the text
    says 'avoid' or 'terrible', detractor when it says 'avoid', promoter on 'recommend'."""

    name = "keyword-fake@1"

    def __init__(self) -> None:
        self.calls = 0

    def classify(self, texts: Sequence[str]) -> list[Classification]:
        self.calls += 1
        out = []
        for t in texts:
            low = t.lower()
            if "avoid" in low or "terrible" in low:
                s = LabelScore("negative", {"negative": 0.9, "neutral": 0.05, "positive": 0.05})
            elif "recommend" in low or "love" in low:
                s = LabelScore("positive", {"negative": 0.05, "neutral": 0.05, "positive": 0.9})
            else:
                s = LabelScore("neutral", {"negative": 0.1, "neutral": 0.8, "positive": 0.1})
            if "avoid" in low:
                a = LabelScore("detractor", {"promoter": 0.05, "detractor": 0.9, "none": 0.05})
            elif "recommend" in low:
                a = LabelScore("promoter", {"promoter": 0.9, "detractor": 0.05, "none": 0.05})
            else:
                a = LabelScore("none", {"promoter": 0.1, "detractor": 0.1, "none": 0.8})
            out.append(Classification(s, a, self.name))
        return out


@pytest.fixture
def store(tmp_path, request):
    """A fresh store: a SQLite file, or with MONITOR_TEST_BACKEND=postgresql a fresh PostgreSQL
    database (tests/pg_support.py)."""
    s = Store(request.getfixturevalue("pg_url") if BACKEND == "postgresql" else tmp_path / "test.db")
    yield s
    s.close()


@pytest.fixture
def fixed_now():
    return lambda: datetime(2026, 11, 22, 12, 0, tzinfo=UTC)


def write_config(path: Path, body: str) -> Path:
    path.write_text(textwrap.dedent(body))
    return path
