"""RSS 2.0, Atom 1.0, JSON Feed 1.1 and OPML 2.0 builders: posts in, bytes out.

Pure functions: no request, app or database access. The same posts always give
the same bytes, because every date comes from the posts, never from the clock.
Every string goes through feedapp.textclean: scrub() (characters XML forbids) on
everything, clean() (scrub plus balanced bidi controls) on plain-text values, so a
post stored before normalization cleaned it still cannot break or flip a feed.
The words around posts come in a Labels value, already in the feed's language.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable

from feedgen.feed import FeedGenerator
from lxml import etree
from markupsafe import escape

from feedapp.textclean import clean

from .feed_items import Images, Labels, _clean, _in_thread, _link, _reply_to_other
from .feed_items import content_html as _content_html
from .post import (
    TITLE_MAX,
    cut,
    first_line,
    guid,
    profile_url,
    quote_visible,
    safe_url,
    scaled,
    small_photo,
    smallest_mp4,
)

GENERATOR = "feedapp"
# An empty feed has no newest post; a fixed date keeps its bytes stable instead of changing on
# every request. Not the Unix epoch, which validators flag as implausible (before 1990): the
# first post ever on X (2006-03-21), which no post in a feed can predate.
EMPTY_FEED_DATE = datetime(2006, 3, 21, 20, 50, 14, tzinfo=timezone.utc)
_PHOTO_TYPES = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif"}
_VIDEO_TYPES = ("video", "animated_gif")
# X's codes for posts without a language: undetermined, mentions/cashtags/hashtags/media only,
# very short text, no linguistic content (X API docs, "lang" field).
_NO_LANGUAGE = {"und", "qam", "qct", "qht", "qme", "qst", "zxx", "art"}
_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*$")  # BCP 47, as xml:lang and RSS <language> take it
_AVATAR_SIZE = re.compile(r"_(normal|bigger|mini|200x200)(\.[A-Za-z]+)$")  # X's profile image sizes
ATOM = "http://www.w3.org/2005/Atom"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_MARKUP_CHARACTERS = re.compile("[<&]")
MIN_TITLE_TEXT = 40  # a title's label never squeezes its text below this
# A thread part's own numbering at the start of its text ("2/3: …", "2/3 …"), said once by the label.
_OWN_NUMBERING = re.compile(r"^\d+\s*/\s*\d+\s*[:.)\-–—]?\s+")


@dataclass(frozen=True)
class FeedInfo:
    """What a feed says about itself; every URL absolute, chosen by the caller."""

    title: str
    subtitle: str
    home_url: str
    self_url: str
    feed_id: str  # RFC 4287 atom:id: unique to this feed and never made from the request's host
    ttl_minutes: int
    icon_url: str | None = None
    language: str | None = None  # BCP 47 tag of the labels: RSS <language>, Atom xml:lang, JSON language
    labels: Labels = field(default_factory=Labels)
    # Where readers fetch images: (kind "photo" | "avatar", X's URL of the size feeds use) → absolute URL.
    # The view passes its own /media/ route; None keeps X's URL (see x_media_url).
    media_url: Callable[[str, str], str | None] | None = None


def rss(info: FeedInfo, posts, *, staff: bool = False, links: Mapping[int, str] | None = None) -> bytes:
    """The posts as an RSS 2.0 document with atom:link rel=self, dc:creator, media:content and enclosures."""
    return _generator(info, posts, staff, links or {}, "rss").rss_str()


def atom(info: FeedInfo, posts, *, staff: bool = False, links: Mapping[int, str] | None = None) -> bytes:
    """The posts as an Atom 1.0 (RFC 4287) document."""
    root = etree.fromstring(_generator(info, posts, staff, links or {}, "atom").atom_str())
    # feedgen 1.0 drops the rel and type of entry links and has no entry xml:lang: both are added here.
    for entry, post in zip(root.iterfind(f"{{{ATOM}}}entry"), posts):
        title = entry.find(f"{{{ATOM}}}title")
        if title is not None and _MARKUP_CHARACTERS.search(title.text or ""):
            # A post quoting markup ("</b>", "&amp;"): said as escaped HTML (RFC 4287 §3.1.1.2), which
            # every reader shows as the same text, rather than as type="text", which some readers
            # still take for markup (the W3C validator warns about exactly that).
            title.set("type", "html")
            title.text = str(escape(title.text))
        if _language(post.lang):
            entry.set(XML_LANG, post.lang)  # RFC 4287 §2: xml:lang on any element; the post's own language
        enclosure = _enclosure(post, _images(info))
        if enclosure:
            # RFC 4287 §4.2.7.2: rel="enclosure", a potentially large related resource (length optional).
            etree.SubElement(entry, f"{{{ATOM}}}link", rel="enclosure", type=enclosure[1], href=enclosure[0])
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def opml(title: str, feeds: list[tuple[str, str, str]]) -> bytes:
    """An OPML 2.0 subscription list of (title, xml_url, html_url) for RSS reader import."""
    root = etree.Element("opml", version="2.0")
    head = etree.SubElement(root, "head")
    etree.SubElement(head, "title").text = clean(title)
    # No dateCreated: the list depends on configuration only, so its bytes should too.
    body = etree.SubElement(root, "body")
    for name, xml_url, html_url in feeds:
        # OPML 2.0 spec: every outline needs text; type="rss" ones need xmlUrl.
        etree.SubElement(body, "outline", type="rss", text=clean(name), title=clean(name),
                         xmlUrl=_clean(xml_url), htmlUrl=_clean(html_url))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def categories(post, labels: Labels) -> list[str]:
    """The categories a post carries in feeds: an active must-read, pinned on the feed's page, a shout-out."""
    return [label for on, label in ((getattr(post, "must_read", False), labels.must_read),
                                    (getattr(post, "pinned", False), labels.pinned),
                                    (post.highlighted, labels.shout_out)) if on]


def item_title(post, labels: Labels | None = None, staff: bool = False, limit: int = TITLE_MAX) -> str:
    """An item's plain-text title: a short label (repost, thread, continuation, reply), the first line, the quote.

    The first line is readable text (links as expanded URLs, never X's "example.com/people/holiday…"),
    cut at a word boundary so that the whole title stays near `limit` characters.
    """
    labels = labels or Labels()
    prefix = suffix = ""
    if post.repost_of_id:
        prefix = f"{labels.repost} @{post.author_username}: "
    elif _in_thread(post):
        word = labels.thread if post.thread_position == 1 else labels.continued
        prefix = f"{word} {post.thread_position}/{post.thread_total}: "
    elif _reply_to_other(post):
        prefix = f"{labels.reply} "
    if quote_visible(post, staff):
        # Only where the reader may see the quote: a hidden quote's author is named nowhere.
        suffix = f" · {labels.quoting} @{(post.quoted.get('author') or {}).get('username') or ''}"
    text = first_line(post)
    if _in_thread(post):
        text = _OWN_NUMBERING.sub("", text)
    text = cut(text or _media_word(post, labels), max(limit - len(prefix) - len(suffix), MIN_TITLE_TEXT))
    # clean() again after the cut, which can separate a bidi override from its closer.
    return clean(prefix + text + suffix)


def _generator(info: FeedInfo, posts, staff: bool, links: Mapping[int, str], fmt: str) -> FeedGenerator:
    fg = FeedGenerator()
    fg.load_extension("dc", atom=False, rss=True)  # Atom has its own <author>
    fg.load_extension("media")
    fg.id(_clean(info.feed_id))
    fg.title(clean(info.title))
    # RSS 2.0 requires a non-empty channel <description>; feedgen maps it to atom:subtitle.
    fg.subtitle(clean(info.subtitle or info.title))
    # feedgen copies the *last* link's href into RSS <channel><link>, so rel=self goes first.
    fg.link(href=_clean(info.self_url), rel="self", type=f"application/{fmt}+xml")
    fg.link(href=_clean(info.home_url), rel="alternate", type="text/html")
    if _language(info.language):
        fg.language(_clean(info.language))  # RSS <language>; xml:lang on Atom's <feed>
    if info.icon_url:
        fg.icon(_clean(info.icon_url))  # atom:icon (RFC 4287 §4.2.5: square)
        # RSS 2.0 <image>: title and link should match the channel's; also sets atom:logo.
        fg.image(_clean(info.icon_url), title=clean(info.title), link=_clean(info.home_url))
    fg.ttl(info.ttl_minutes)
    fg.generator(GENERATOR)  # replaces feedgen's default name, version and uri
    # feedgen defaults atom:updated and lastBuildDate to now; the newest post keeps output stable.
    fg.updated(max((_utc(p.created_at) for p in posts), default=EMPTY_FEED_DATE))
    for post in posts:
        _add_entry(fg, post, staff, info.labels, links, fmt, _images(info))
    return fg


def _add_entry(fg: FeedGenerator, post, staff: bool, labels: Labels, links: Mapping[int, str], fmt: str,
               images: Images) -> None:
    fe = fg.add_entry(order="append")  # feedgen prepends by default, reversing newest-first
    fe.guid(_clean(guid(post)), permalink=False)  # also atom:id; stable across builds and hosts
    fe.title(item_title(post, labels, staff))  # clean: plain text
    # Atom entry links lose rel/type in feedgen 1.0; a bare link is rel="alternate" (RFC 4287 §4.2.7.2).
    fe.link(href=_clean(_link(post, links)))
    # type="html" escapes the markup (Atom content type="html", RSS <description>) and never
    # uses CDATA, so a "]]>" in a post cannot end a section early.
    fe.content(_content_html(post, staff, labels, links, images), type="html")
    fe.published(_utc(post.created_at))  # RSS <pubDate> and atom:published
    fe.updated(_utc(post.created_at))
    author = _author_label(post)
    fe.author(name=author, uri=profile_url(post.author_username))  # Atom only: RSS <author> needs an email
    fe.dc.dc_creator(author)
    for term in categories(post, labels):
        fe.category(term=term)  # RSS <category>, Atom <category term>
    if fmt == "rss" and _language(post.lang):
        fe.dc.dc_language(post.lang)  # an RSS 2.0 item has no language of its own: Dublin Core's
    for media in post.media:
        content = _media_content(media, images)
        if content:
            # group=None puts media:content straight under the item: feedgen's default group
            # would bundle different photos, but Media RSS keeps <media:group> for alternates of one.
            fe.media.content(group=None, **content)
    enclosure = _enclosure(post, images) if fmt == "rss" else None
    if enclosure:
        # RSS 2.0: at most one <enclosure> per item, length in bytes required. X gives no size, and
        # length="0" is the RSS Advisory Board's advice for an unknown one. Signage players and
        # podcast-style readers show only enclosures. (Atom's link rel="enclosure": see atom().)
        fe.enclosure(url=_clean(enclosure[0]), length="0", type=enclosure[1])


def _enclosure(post, images: Images) -> tuple[str, str] | None:
    """(url, type) of the item's one enclosure: its first photo (small variant) or video (smallest mp4)."""
    for media in post.media:
        content = _media_content(media, images)
        if content and content.get("type"):
            return content["url"], content["type"]
    return None


def _media_content(media, images: Images) -> dict | None:
    if media.type == "photo":
        url = images("photo", media.url)
        if not url:
            return None
        width, height = scaled(media.width, media.height)
        dims = {"width": str(width), "height": str(height)} if width and height else {}
        kind = _PHOTO_TYPES.get((media.url or "").rsplit(".", 1)[-1].lower())
        return {"url": _clean(url), "medium": "image", **({"type": kind} if kind else {}), **dims}
    variant = smallest_mp4(media) if media.type in _VIDEO_TYPES else None
    if not variant:
        return None
    # No width/height: the stored ones are the video's, not this variant's (Media RSS: of the object).
    extra = {"duration": str(media.duration_ms // 1000)} if media.duration_ms else {}
    return {"url": _clean(variant["url"]), "type": "video/mp4", "medium": "video", **extra}


def x_media_url(kind: str, url: str | None) -> str | None:
    """X's own URL of the size feeds use: a photo's small variant, a profile image at 400×400."""
    return _avatar(url) if kind == "avatar" else small_photo(url)


def _images(info: FeedInfo) -> Images:
    """(kind, stored X URL) → the URL a feed writes: through info.media_url when given, else X's own."""
    mapped = info.media_url
    if mapped is None:
        return x_media_url

    def url(kind: str, stored: str | None) -> str | None:
        x_url = x_media_url(kind, stored)
        return mapped(kind, x_url) if x_url else None

    return url


def _avatar(url: str | None) -> str | None:
    """The profile image at X's 400×400 size, sharp in readers (not the 48 px _normal)."""
    if not safe_url(url):
        return None
    return _AVATAR_SIZE.sub(r"_400x400\2", url)



def _media_word(post, labels: Labels) -> str:
    kinds = {m.type for m in post.media}
    return labels.video if kinds & set(_VIDEO_TYPES) else labels.photo if kinds else labels.post


def _language(lang: str | None) -> bool:
    """Whether lang names a real language as a BCP 47 tag (not one of X's no-language codes)."""
    return bool(lang) and lang not in _NO_LANGUAGE and bool(_LANGUAGE_TAG.match(lang))


def _author_label(post) -> str:
    """"Display Name (@username)", or whichever half is known."""
    username, name = clean(post.author_username or ""), clean(post.author_name or "")
    if username and name:
        return f"{name} (@{username})"
    return name or (f"@{username}" if username else clean(post.source.username))


def _utc(value: datetime) -> datetime:
    # Stored datetimes are UTC (models.UTCDateTime); a naive one is read as UTC, not local time.
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)
