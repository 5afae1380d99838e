"""Settings of the response desk (``inbox:`` in config.yaml; re-exported by config.py): the
response time each priority allows (SLA), where ``sla_breach`` alerts go, and the reply
templates, whose ``{variables}`` are checked when the file is read."""

from __future__ import annotations

from datetime import timedelta
from string import Formatter
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator

from monitor.settings_types import Duration, Strict

Priority = Literal["critical", "high", "normal", "low"]
PRIORITIES: tuple[str, ...] = ("critical", "high", "normal", "low")  # most urgent first

# What a reply template may name: the mention's author, brand, source and stance, and the
# author's history with the brand before this mention (see monitor.inbox.draft_variables).
TEMPLATE_VARIABLES = ("author", "brand", "source", "stance", "history", "earlier_mentions", "earlier_promoter",
                      "earlier_detractor")


def template_fields(text: str) -> list[str]:
    """The variables a template names, in order. A format spec or conversion ({author!r},
    {author:>9}), an attribute or index ({author.x}, {author[0]}) or a stray brace is an error."""
    out = []
    try:
        parts = list(Formatter().parse(text))
    except ValueError as exc:
        raise ValueError(f"{exc} (write {{{{ and }}}} for a literal brace)") from None
    for _literal, field, spec, conversion in parts:
        if field is None:
            continue
        if spec or conversion:
            raise ValueError(f"{{{field}}}: a variable takes no format or conversion")
        if field not in TEMPLATE_VARIABLES:
            raise ValueError(f"unknown variable {{{field}}} (known: {', '.join(TEMPLATE_VARIABLES)})")
        out.append(field)
    return out


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


class ReplyTemplate(Strict):
    """A reply draft. The first template whose ``stance`` and ``returning`` fit the mention is
    offered; a person edits it and sends it on the platform (never posted by monitor)."""

    name: str = Field(min_length=1, max_length=60, pattern=r"^[A-Za-z0-9_.-]+$")
    text: str = Field(min_length=1, max_length=5000)
    stance: Annotated[list[Literal["promoter", "detractor", "none"]], BeforeValidator(_as_list)] = []  # any: []
    returning: bool | None = None  # true: only authors with earlier mentions of the brand; false: first-timers
    brands: list[str] = []

    @field_validator("text")
    @classmethod
    def _variables(cls, v: str) -> str:
        template_fields(v)
        return v


class Sla(Strict):
    """How long an item of each priority may wait for its first response, from entering the inbox."""

    critical: Duration = timedelta(hours=1)
    high: Duration = timedelta(hours=4)
    normal: Duration = timedelta(hours=24)
    low: Duration = timedelta(hours=72)


DEFAULT_TEMPLATES = [
    ReplyTemplate(name="detractor", stance=["detractor"],
                  text="Hi {author}, thank you for telling us, and sorry that {brand} let you down. "
                       "We would like to put this right: could you tell us a bit more?"),
    ReplyTemplate(name="returning-promoter", stance=["promoter"], returning=True,
                  text="Thanks again, {author}! It means a lot that you keep recommending {brand}."),
    ReplyTemplate(name="promoter", stance=["promoter"],
                  text="Thank you, {author}! We are glad {brand} works for you."),
    ReplyTemplate(name="question", text="Hi {author}, thanks for asking. "),
]


class InboxSettings(Strict):
    """The response desk: mentions that need an answer (``route: inbox`` on an alert rule, or
    added by hand), their SLA per priority, and reply templates."""

    sla: Sla = Sla()
    # where `sla_breach` alerts go; empty: every configured alert channel
    channels: list[str] = []
    severity: Literal["info", "warning", "critical"] = "warning"
    templates: list[ReplyTemplate] = Field(default_factory=lambda: list(DEFAULT_TEMPLATES))

    @field_validator("templates")
    @classmethod
    def _unique(cls, v: list[ReplyTemplate]) -> list[ReplyTemplate]:
        names = [t.name for t in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate template names: {', '.join(dup)}")
        return v

    def sla_for(self, priority: str) -> timedelta:
        return getattr(self.sla, priority) if priority in PRIORITIES else self.sla.normal
