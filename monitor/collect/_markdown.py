"""Markdown text (Reddit with ``raw_json=1``, GitHub issues: not HTML-escaped) -> the text as
typed. Kept apart from _common.py: its code-block pattern scans to a closing fence (linear,
possessive fences), which the HTML cleaners' no-unbounded-scan rule does not allow."""

from __future__ import annotations

import re

from monitor.collect._common import drop_html_tags, tidy_text

# Markdown code, kept verbatim: fenced blocks (to the closing fence or the end), indented blocks,
# `inline` and ``inline`` spans (one line each; possessive fences: the scan stays linear).
_MD_CODE = re.compile(r"^ {0,3}(`{3,}+|~{3,}+)[^\n]*\n.*?(?:^ {0,3}\1[`~]*[ \t]*$|\Z)"
                      r"|(?:^(?: {4}|\t)[^\n]*(?:\n|\Z))+|(`{1,2})[^`\n]+\2", re.MULTILINE | re.DOTALL)


def markdown_text(value: str | None) -> str:
    """Markdown (Reddit with ``raw_json=1``, GitHub: not HTML-escaped) -> the text as typed. ``<...>`` is
    kept ("'config': <praw.Config object at 0x7f...>"); outside code, HTML element tags and
    script/style blocks are dropped and character references decoded (markdown renders them);
    code is kept verbatim. Whitespace as ``tidy_text``: blanks at line ends and runs of blank
    lines go, indentation stays."""
    if not value:
        return ""
    out, pos = [], 0
    for code in _MD_CODE.finditer(value):
        out += [drop_html_tags(value[pos:code.start()], entities=True), code.group()]
        pos = code.end()
    out.append(drop_html_tags(value[pos:], entities=True))
    return tidy_text("".join(out))
