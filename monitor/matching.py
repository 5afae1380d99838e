"""Brand queries: include/exclude terms, quoted phrases, whole-word matching by default."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from monitor.config import Terms
from monitor.settings_types import term_phrase


def _pattern(term: str, whole_word: bool) -> str:
    words = [re.escape(w) for w in term_phrase(term).split()]  # never empty: the Term type requires a word
    body = r"\s+".join(words)
    if whole_word:
        return rf"(?<!\w){body}(?!\w)"
    return body


@dataclass(frozen=True)
class Matcher:
    """``match(text)`` returns the first include term found (for display), or None when
    no include term is found or an exclude term is."""

    terms: Terms
    _include: list[tuple[str, re.Pattern[str]]] = field(init=False, repr=False, compare=False)
    _exclude: list[re.Pattern[str]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        flags = 0 if self.terms.case_sensitive else re.IGNORECASE
        object.__setattr__(
            self, "_include", [(t, re.compile(_pattern(t, self.terms.whole_word), flags)) for t in self.terms.include]
        )
        object.__setattr__(
            self, "_exclude", [re.compile(_pattern(t, self.terms.whole_word), flags) for t in self.terms.exclude]
        )

    def match(self, *texts: str | None) -> str | None:
        joined = "\n".join(t for t in texts if t)
        if any(p.search(joined) for p in self._exclude):
            return None
        for term, pattern in self._include:
            if pattern.search(joined):
                return term_phrase(term)
        return None

    def match_mention(self, title: str | None, text: str | None, kind: str | None = None) -> str | None:
        """Like ``match``, but a comment's title is its parent story's: a comment counts
        only when its own text names the brand."""
        return self.match(text) if kind == "comment" else self.match(title, text)

    def queries(self) -> list[str]:
        """The API search strings: one per include term (quoted phrases kept quoted)."""
        return list(self.terms.include)
