"""RSS 2.0, Atom 1.0, JSON Feed 1.1 and OPML 2.0 builders: posts in, bytes out.

Pure functions: no request, app or database access. The same posts always give
the same bytes, because every date comes from the posts, never from the clock.
Every string goes through feedapp.textclean: scrub() (characters XML forbids) on
everything, clean() (scrub plus balanced bidi controls) on plain-text values, so a
post stored before normalization cleaned it still cannot break or flip a feed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from types import SimpleNamespace

from feedgen.feed import FeedGenerator
from lxml import etree
from markupsafe import Markup

from feedapp.textclean import clean, scrub

from .post import (
    guid,
    permalink,
    profile_url,
    quote_visible,
    quoted_html,
    safe_url,
    scaled,
    small_photo,
    smallest_mp4,
    status_url,
    text_html,
    title,
)

JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
GENERATOR = "feedapp"
# An empty feed has no newest post; the Unix epoch keeps its bytes (and the
# caller's Last-Modified) stable instead of changing on every request.
EMPTY_FEED_DATE = datetime(1970, 1, 1, tzinfo=timezone.utc)
_PHOTO_TYPES = {"jpg": "image/jpeg", "jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp", "gif": "image/gif"}
_MEDIA_FIELDS = ("key", "type", "url", "preview_url", "width", "height", "alt_text", "duration_ms", "variants")
_VIDEO_TYPES = ("video", "animated_gif")
_JSON_HTML_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})
# X's codes for posts without a language: undetermined, mentions/cashtags/hashtags/media only,
# very short text, no linguistic content (X API docs, "lang" field).
_NO_LANGUAGE = {"und", "qam", "qct", "qht", "qme", "qst", "zxx", "art"}


@dataclass(frozen=True)
class FeedInfo:
    """What a feed says about itself; every URL absolute, chosen by the caller."""

    title: str
    subtitle: str
    home_url: str
    self_url: str
    feed_id: str
    ttl_minutes: int
    icon_url: str | None = None
    language: str | None = None


def rss(info: FeedInfo, posts, *, staff: bool = False) -> bytes:
    """The posts as an RSS 2.0 document with atom:link rel=self, dc:creator and media:content."""
    return _generator(info, posts, staff, "application/rss+xml").rss_str()


def atom(info: FeedInfo, posts, *, staff: bool = False) -> bytes:
    """The posts as an Atom 1.0 (RFC 4287) document."""
    return _generator(info, posts, staff, "application/atom+xml").atom_str()


def json_feed(info: FeedInfo, posts, *, staff: bool = False) -> bytes:
    """The posts as a JSON Feed 1.1 document, UTF-8."""
    feed = {"version": JSON_FEED_VERSION, "title": clean(info.title), "home_page_url": info.home_url,
            "feed_url": info.self_url, "description": clean(info.subtitle)}
    if info.icon_url:
        feed["icon"] = info.icon_url
    if info.language:
        feed["language"] = info.language
    feed["authors"] = [{"name": clean(info.title), "url": info.home_url}]
    feed["items"] = [_json_item(post, staff) for post in posts]
    text = json.dumps(_clean_tree(feed), ensure_ascii=False)
    # "<", ">" and "&" only occur inside JSON strings, so \u escapes are lossless; like Go's
    # encoding/json, they keep a sniffed or embedded document from ever holding live markup.
    return text.translate(_JSON_HTML_ESCAPES).encode("utf-8")


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


def _generator(info: FeedInfo, posts, staff: bool, self_type: str) -> FeedGenerator:
    fg = FeedGenerator()
    fg.load_extension("dc", atom=False, rss=True)  # Atom has its own <author>
    fg.load_extension("media")
    fg.id(_clean(info.feed_id))
    fg.title(clean(info.title))
    # RSS 2.0 requires a non-empty channel <description>; feedgen maps it to atom:subtitle.
    fg.subtitle(clean(info.subtitle or info.title))
    # feedgen copies the *last* link's href into RSS <channel><link>, so rel=self goes first.
    fg.link(href=_clean(info.self_url), rel="self", type=self_type)
    fg.link(href=_clean(info.home_url), rel="alternate", type="text/html")
    if info.language:
        fg.language(_clean(info.language))
    if info.icon_url:
        fg.icon(_clean(info.icon_url))  # atom:icon (RFC 4287 §4.2.5: square)
        # RSS 2.0 <image>: title and link should match the channel's; also sets atom:logo.
        fg.image(_clean(info.icon_url), title=clean(info.title), link=_clean(info.home_url))
    fg.ttl(info.ttl_minutes)
    fg.generator(GENERATOR)  # replaces feedgen's default name, version and uri
    # feedgen defaults atom:updated and lastBuildDate to now; the newest post keeps output stable.
    fg.updated(max((_utc(p.created_at) for p in posts), default=EMPTY_FEED_DATE))
    for post in posts:
        _add_entry(fg, post, staff)
    return fg


def _add_entry(fg: FeedGenerator, post, staff: bool) -> None:
    fe = fg.add_entry(order="append")  # feedgen prepends by default, reversing newest-first
    fe.guid(_clean(guid(post)), permalink=False)  # also atom:id; stable across builds and hosts
    fe.title(title(post))  # clean: plain text
    # Atom entry links lose rel/type in feedgen 1.0; a bare link is rel="alternate" (RFC 4287 §4.2.7.2).
    fe.link(href=_clean(permalink(post)))
    # type="html" escapes the markup (Atom content type="html", RSS <description>) and never
    # uses CDATA, so a "]]>" in a post cannot end a section early.
    fe.content(_content_html(post, staff), type="html")
    fe.published(_utc(post.created_at))  # RSS <pubDate> and atom:published
    fe.updated(_utc(post.created_at))
    author = _author_label(post)
    fe.author(name=author, uri=profile_url(post.author_username))  # Atom only: RSS <author> needs an email
    fe.dc.dc_creator(author)
    for media in post.media:
        content = _media_content(media)
        if content:
            # group=None puts media:content straight under the item: feedgen's default group
            # would bundle different photos, but Media RSS keeps <media:group> for alternates of one.
            fe.media.content(group=None, **content)
    # No RSS <enclosure>: RSS 2.0 makes its length (bytes) required and the byte size of an
    # X photo or video is unknown; a made-up length is wrong data, media:content needs none.


def _media_content(media) -> dict | None:
    if media.type == "photo":
        url = small_photo(media.url)
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


def _content_html(post, staff: bool) -> str:
    parts = []
    # Every piece of user text sits in its own <bdi> or dir="auto" element (HTML: unicode-bidi:
    # isolate), so no direction it sets reaches the markup around it in a feed reader.
    if post.repost_of_id:
        by = clean(post.source.username)
        parts.append(Markup('<p>Reposted by <a href="{}"><bdi>@{}</bdi></a></p>').format(profile_url(by), by))
    if post.reply_to_id and post.reply_to_username:
        to = clean(post.reply_to_username)
        parts.append(Markup('<p>Replying to <a href="{}"><bdi>@{}</bdi></a></p>').format(profile_url(to), to))
    if post.text:
        parts.append(Markup('<p dir="auto">{}</p>').format(text_html(post)))
    parts += [_media_html(media, permalink(post)) for media in post.media]
    if post.quoted:
        parts.append(_quote_html(post, staff))
    return _clean(str(Markup("\n").join(parts)))


def _quote_html(post, staff: bool) -> Markup:
    if not quote_visible(post, staff):
        # Never the text of a staff-only or protected account outside staff feeds, not even its
        # author: decided by the query from the account's current state (post.quote_hidden).
        return Markup("<p>Quoted post not available</p>")
    quoted = post.quoted
    author = quoted.get("author") or {}
    username = clean(author.get("username") or "")
    url = status_url(username, quoted.get("id"))
    media = Markup("").join(_media_html(_quoted_media(m), url) for m in quoted.get("media") or [])
    return Markup('<blockquote><p><bdi>{}</bdi> <a href="{}"><bdi>@{}</bdi></a></p><p dir="auto">{}</p>{}'
                  '</blockquote>').format(clean(author.get("name") or username), url, username,
                                          quoted_html(quoted), media)


def _media_html(media, post_url: str) -> Markup:
    width, height = scaled(media.width, media.height)
    if media.type == "photo":
        src = small_photo(media.url)
        return Markup("<p>{}</p>").format(_img(src, media.alt_text, width, height)) if src else Markup("")
    poster = small_photo(media.preview_url)
    image = _img(poster, media.alt_text or "Video", width, height) if poster else Markup("")
    variant = smallest_mp4(media)
    watch = variant["url"] if variant else post_url
    return Markup('<p><a href="{}">{}</a><br><a href="{}">Watch video</a></p>').format(post_url, image, watch)


def _img(src: str, alt: str | None, width: int | None, height: int | None) -> Markup:
    dims = Markup(' width="{}" height="{}"').format(width, height) if width and height else Markup("")
    return Markup('<img src="{}" alt="{}"{}>').format(src, clean(alt or ""), dims)


def _quoted_media(data: dict) -> SimpleNamespace:
    """A quoted post's media dict with the attributes of a Media row."""
    return SimpleNamespace(**{**dict.fromkeys(_MEDIA_FIELDS), **data})


def _json_item(post, staff: bool) -> dict:
    # JSON Feed 1.1: id is a string, unique and stable; content_html or content_text required.
    item = {"id": guid(post), "url": permalink(post), "title": title(post),
            "content_html": _content_html(post, staff)}
    if post.text:
        item["content_text"] = clean(post.text)
    item["date_published"] = _rfc3339(post.created_at)
    author = {"name": _author_label(post), "url": profile_url(post.author_username)}
    if safe_url(post.author_avatar):
        author["avatar"] = post.author_avatar
    item["authors"] = [author]
    if _language(post.lang):
        item["language"] = post.lang
    image = _first_image(post.media)
    if image:
        item["image"] = image
    attachments = [_attachment(m) for m in post.media if m.type in _VIDEO_TYPES and smallest_mp4(m)]
    if attachments:
        item["attachments"] = attachments
    return item


def _attachment(media) -> dict:
    attachment = {"url": smallest_mp4(media)["url"], "mime_type": "video/mp4"}
    if media.duration_ms:
        attachment["duration_in_seconds"] = media.duration_ms // 1000
    return attachment


def _first_image(media_list) -> str | None:
    """The first photo (small variant), else the first video poster."""
    photos = [small_photo(m.url) for m in media_list if m.type == "photo"]
    posters = [small_photo(m.preview_url) for m in media_list if m.type in _VIDEO_TYPES]
    return next((url for url in photos + posters if url), None)


def _language(lang: str | None) -> bool:
    """Whether X's lang names a real language (not one of its no-language codes)."""
    return bool(lang) and lang not in _NO_LANGUAGE


def _rfc3339(value: datetime) -> str:
    return _utc(value).isoformat().replace("+00:00", "Z")


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


def _clean(text: str | None) -> str:
    """Markup and URLs: without the characters XML forbids (feedapp.textclean.scrub)."""
    return scrub(text or "")


def _clean_tree(value):
    """Strip XML-invalid characters from every string of a JSON document (a last safety net)."""
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, dict):
        return {key: _clean_tree(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clean_tree(item) for item in value]
    return value
