"""Post text and its link spans to escaped HTML: the only markup is what we build."""

from __future__ import annotations

from markupsafe import Markup, escape

from feedapp.textclean import Cleaner

SAFE_SCHEMES = ("https://", "http://")


def post_html(text: str, links: list[dict]) -> Markup:
    """Clean and escape text, turn link spans into anchors and line breaks into <br>."""
    # Posts stored before normalization cleaned text may still hold forbidden or unbalanced
    # bidi characters: clean the pieces in order, after splitting at the stored offsets.
    cleaner = Cleaner()
    out: list[str] = []
    pos = 0
    for link in sorted(links or [], key=lambda l: l["start"]):
        start, end, href = link["start"], link["end"], link.get("href", "")
        if start < pos or end > len(text) or start >= end or not href.startswith(SAFE_SCHEMES):
            continue  # overlapping, out of range or unsafe: leave it as plain text
        out.append(_plain(cleaner.feed(text[pos:start])))
        display = cleaner.feed(text[start:end])
        if display:
            rel = ' rel="nofollow noopener noreferrer"' if link.get("kind") == "url" else ""
            out.append(f'<a href="{escape(href)}"{rel}>{escape(display)}</a>')
        pos = end
    out.append(_plain(cleaner.feed(text[pos:]) + cleaner.close()))
    return Markup("".join(out))


def _plain(segment: str) -> str:
    return str(escape(segment)).replace("\r\n", "\n").replace("\n", "<br>\n")
