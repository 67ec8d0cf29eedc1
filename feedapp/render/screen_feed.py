"""RSS 2.0 for signage players that only read feeds (a break-room screen's /screen/TOKEN/feed.rss).

Pure: posts in, bytes out. Shaped for tickers and signage apps rather than feed readers:
plain-text descriptions (players print them as they are: no HTML), short titles, and one image
<enclosure> per item, the pinned and must-read posts first (the order the screen shows them in).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timezone
from email.utils import format_datetime
from urllib.parse import parse_qs, urlsplit

from lxml import etree

from feedapp.textclean import clean

from .feeds import ATOM, EMPTY_FEED_DATE, GENERATOR
from .post import cut, guid, readable_text

TITLE_MAX = 80  # a ticker line: the first ~80 characters, cut at a word
DESCRIPTION_MAX = 1000
IMAGE_TYPES = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif"}


@dataclass(frozen=True)
class ScreenFeed:
    """The channel: title, home page, description, language and how often to check (minutes)."""

    title: str
    link: str
    description: str
    language: str
    ttl_minutes: int
    self_url: str  # where the feed is served (RSS Advisory Board: identify it with atom:link rel="self")
    pinned_label: str = "Pinned"  # the category of pinned items, in the feed's language
    must_read_label: str = "Must read"  # the category of must-read items


def screen_rss(feed: ScreenFeed, posts, *, pinned: int, page_url: Callable, image_url: Callable) -> bytes:
    """RSS 2.0 bytes: posts in the given order (the first `pinned` marked so), each with at most one image.

    page_url(post) is the post's page (the item link); image_url(post) its image URL or None.
    """
    rss = etree.Element("rss", version="2.0", nsmap={"atom": ATOM})
    channel = etree.SubElement(rss, "channel")
    newest = max((p.created_at for p in posts), default=EMPTY_FEED_DATE)
    for name, value in (("title", clean(feed.title)), ("link", feed.link), ("description", clean(feed.description)),
                        ("language", feed.language), ("lastBuildDate", _date(newest)), ("generator", GENERATOR),
                        ("ttl", str(feed.ttl_minutes))):
        etree.SubElement(channel, name).text = value
    etree.SubElement(channel, f"{{{ATOM}}}link", href=feed.self_url, rel="self", type="application/rss+xml")
    for i, post in enumerate(posts):
        item = etree.SubElement(channel, "item")
        text = plain_text(post)
        etree.SubElement(item, "title").text = short_title(text) or post.author_username
        etree.SubElement(item, "link").text = page_url(post)
        etree.SubElement(item, "description").text = cut(text, DESCRIPTION_MAX)
        if getattr(post, "must_read", False):
            etree.SubElement(item, "category").text = feed.must_read_label
        elif i < pinned:
            etree.SubElement(item, "category").text = feed.pinned_label
        etree.SubElement(item, "guid", isPermaLink="false").text = guid(post)
        etree.SubElement(item, "pubDate").text = _date(post.created_at)
        image = image_url(post)
        if image:
            # RSS 2.0 requires length (bytes); the size is unknown until the image is fetched, and the
            # RSS Advisory Board's best practice for that case is length="0".
            etree.SubElement(item, "enclosure", url=image, length="0", type=image_type(image))
    return etree.tostring(rss, xml_declaration=True, encoding="utf-8")


def plain_text(post) -> str:
    """The post's text as one plain paragraph: links written out, no markup, no line breaks (tickers scroll one line)."""
    text = readable_text(post.text or "", post.links)
    if post.repost_of_id:
        text = text.removeprefix(f"RT @{post.author_username}:")
    return clean(" ".join(text.split()))


def short_title(text: str, limit: int = TITLE_MAX) -> str:
    """The first ~limit characters of the text, cut at a word boundary with "…"."""
    return clean(cut(text, limit))


def image_type(url: str) -> str:
    """The MIME type of an image URL: ours are JPEG; X's say theirs in ?format= or the extension."""
    parts = urlsplit(url)
    name = (parse_qs(parts.query).get("format") or [parts.path.rsplit(".", 1)[-1]])[0].lower()
    return IMAGE_TYPES.get(name, "image/jpeg")


def _date(value) -> str:
    value = value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    return format_datetime(value, usegmt=True)
