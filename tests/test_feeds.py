"""Feed hardening (feedparser ReDoS, hostile XML), Google presets, canonical URLs."""

from __future__ import annotations

import feedparser
import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.collect._common import canonical_url, strip_html, unwrap_redirect
from monitor.collect.feeds import AUTHOR_CAP, harden_feed
from monitor.errors import MalformedResponseError

REDOS_AUTHOR = "a@" + "a." * 20_000 + "!"


def _rss(author_xml: str) -> bytes:
    return (f'<?xml version="1.0"?><rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"><channel>'
            f"<title>t</title><item><title>Acme</title>{author_xml}<description>acme</description></item>"
            f"</channel></rss>").encode()


@pytest.mark.parametrize("author_xml", [
    f"<author>{REDOS_AUTHOR}</author>",
    f"<dc:creator>{REDOS_AUTHOR}</dc:creator>",
    f"<dc:creator><![CDATA[{REDOS_AUTHOR}]]></dc:creator>",
    f"<managingEditor>{REDOS_AUTHOR}</managingEditor>",
])
def test_author_fields_are_capped_before_feedparser(author_xml):
    safe = harden_feed(_rss(author_xml))
    parsed = feedparser.parse(safe)
    assert parsed.entries[0].title == "Acme"
    assert len(parsed.entries[0].get("author", "")) <= AUTHOR_CAP


def test_author_cap_also_applies_to_feeds_that_are_not_well_formed():
    broken = _rss(f"<author>{REDOS_AUTHOR}</author>").replace(b"</channel>", b"")  # unclosed
    safe = harden_feed(broken)
    assert REDOS_AUTHOR.encode() not in safe
    assert b"a@" + b"a." * 100 in safe


@pytest.mark.parametrize("doc", [
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;">]>'
    b"<rss><channel><title>&b;</title></channel></rss>",
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><rss><channel><title>&x;</title></channel></rss>',
    b'<?xml version="1.0"?><!DOCTYPE r [<!eNtItY % p SYSTEM "http://10.0.0.1/x.dtd"> %p;]><rss/>',
])
def test_hostile_xml_is_refused(doc):
    with pytest.raises(MalformedResponseError):
        harden_feed(doc)


@pytest.mark.parametrize("doctype", [
    b'<!DOCTYPE rss PUBLIC "-//Netscape Communications//DTD RSS 0.91//EN" '
    b'"http://my.netscape.com/publish/formats/rss-0.91.dtd">',
    b'<!DOCTYPE rss SYSTEM "http://169.254.169.254/x.dtd">',
])
def test_doctype_without_declarations_is_dropped_not_refused(doctype):
    doc = (b'<?xml version="1.0"?>' + doctype + b'<rss version="0.91"><channel><title>t</title><item>'
           b"<title>Acme</title><link>https://a.example/</link></item></channel></rss>")
    safe = harden_feed(doc)
    assert b"DOCTYPE" not in safe and b"169.254" not in safe  # never fetched, and gone before feedparser
    assert feedparser.parse(safe).entries[0].title == "Acme"


def test_unterminated_cdata_is_refused():
    with pytest.raises(MalformedResponseError):
        harden_feed(b"<rss><channel><item><title><![CDATA[acme" + b"x" * 1000 + b"</title></item>")


# ----------------------------------------------------------------------------- text and links


def test_google_alert_links_are_unwrapped_and_highlights_stripped():
    link = ("https://www.google.com/url?rct=j&sa=t&url=https://techcrunch.example.com/2026/11/20/acme/"
            "%3Futm_source%3Dfeed&ct=ga&cd=CAIy&usg=AOvVaw0")
    assert unwrap_redirect(link) == "https://techcrunch.example.com/2026/11/20/acme/?utm_source=feed"
    assert unwrap_redirect("https://www.google.com/url?q=https://example.org/x&sa=U") == "https://example.org/x"
    assert unwrap_redirect("https://evil.example/url?q=https://example.org/x") == "https://evil.example/url?q=https://example.org/x"
    assert unwrap_redirect("https://www.google.com/url?q=javascript:alert(1)").startswith("https://www.google.com")
    assert strip_html("&lt;b&gt;Acme&lt;/b&gt; raises $40M") == "Acme raises $40M"
    assert strip_html("<b>Acme</b> &amp; co<script>steal()</script><style>p{}</style>") == "Acme & co"


@pytest.mark.parametrize(("url", "expected"), [
    ("https://www.acme.example.com/blog/series-b/?utm_source=hn&ref_src=twsrc", "https://acme.example.com/blog/series-b"),
    ("http://acme.example.com:80/blog/series-b?fbclid=IwAR0&utm_campaign=x#comments", "https://acme.example.com/blog/series-b"),
    ("https://Acme.Example.com/a?b=2&a=1&gclid=z", "https://acme.example.com/a?a=1&b=2"),
    ("https://acme.example.com:8443/a/", "https://acme.example.com:8443/a"),
    ("https://acme.example.com", "https://acme.example.com/"),
    ("javascript:alert(1)", None),
    ("ftp://acme.example.com/x", None),
    ("https://www.google.com/url?rct=j&url=https://acme.example.com/blog/series-b%3Futm_medium%3Demail",
     "https://acme.example.com/blog/series-b"),
    ("https://[::1", None),
    (None, None),
])
def test_canonical_url(url, expected):
    assert canonical_url(url) == expected


@given(st.text(max_size=200))
def test_canonical_url_never_raises_and_is_idempotent(text):
    first = canonical_url(text)
    if first is not None:
        assert first.startswith("https://")
        assert canonical_url(first) == first


@given(st.text(max_size=500))
def test_strip_html_leaves_no_tags(text):
    out = strip_html(text)
    assert "<script" not in out.lower()
    assert not any(tag in out for tag in ("<b>", "<img", "<a "))
