"""JSON Feed 1.1 (https://jsonfeed.org/version/1.1): posts in, bytes out.

Pure, like feedapp.render.feeds, whose item parts (titles, bodies, links, images) it shares,
so an item reads the same in every format.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime

from feedapp.textclean import clean

from .feeds import (_VIDEO_TYPES, FeedInfo, Images, Labels, _author_label, _clean, _content_html, _images,
                    _language, _link, _media_content, _utc, categories, item_title)
from .post import guid, profile_url, readable_text

JSON_FEED_VERSION = "https://jsonfeed.org/version/1.1"
_JSON_HTML_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def json_feed(info: FeedInfo, posts, *, staff: bool = False, links: Mapping[int, str] | None = None) -> bytes:
    """The posts as a JSON Feed 1.1 document, UTF-8."""
    feed = {"version": JSON_FEED_VERSION, "title": clean(info.title), "home_page_url": info.home_url,
            "feed_url": info.self_url, "description": clean(info.subtitle)}
    if info.icon_url:
        feed["icon"] = info.icon_url
    if _language(info.language):
        feed["language"] = info.language
    feed["authors"] = [{"name": clean(info.title), "url": info.home_url}]
    feed["items"] = [_json_item(post, staff, info.labels, links or {}, _images(info)) for post in posts]
    text = json.dumps(_clean_tree(feed), ensure_ascii=False)
    # "<", ">" and "&" only occur inside JSON strings, so \u escapes are lossless; like Go's
    # encoding/json, they keep a sniffed or embedded document from ever holding live markup.
    return text.translate(_JSON_HTML_ESCAPES).encode("utf-8")


def _json_item(post, staff: bool, labels: Labels, links: Mapping[int, str], images: Images) -> dict:
    # JSON Feed 1.1: id is a string, unique and stable; content_html or content_text required.
    item = {"id": guid(post), "url": _link(post, links), "title": item_title(post, labels, staff),
            "content_html": _content_html(post, staff, labels, links, images)}
    if post.text:
        # Plain text: links as their readable expanded URLs, never X's truncated display text.
        item["content_text"] = readable_text(post.text, post.links)
    item["date_published"] = _rfc3339(post.created_at)
    author = {"name": _author_label(post), "url": profile_url(post.author_username)}
    avatar = images("avatar", post.author_avatar)
    if avatar:
        author["avatar"] = avatar
    item["authors"] = [author]
    item["author"] = author  # JSON Feed 1.0's single author, for readers older than 1.1's authors
    if _language(post.lang):
        item["language"] = post.lang
    tags = categories(post, labels)
    if tags:
        item["tags"] = tags
    image = _first_image(post.media, images)
    if image:
        item["image"] = image
    attachments = [attachment for attachment in (_attachment(m, images) for m in post.media) if attachment]
    if attachments:
        item["attachments"] = attachments
    return item


def _attachment(media, images: Images) -> dict | None:
    """A JSON Feed attachment: a photo (small variant) or a video (smallest mp4)."""
    content = _media_content(media, images)
    if not content or not content.get("type"):
        return None
    attachment = {"url": content["url"], "mime_type": content["type"]}
    if media.type in _VIDEO_TYPES and media.duration_ms:
        attachment["duration_in_seconds"] = media.duration_ms // 1000
    return attachment


def _first_image(media_list, images: Images) -> str | None:
    """The first photo (small variant), else the first video poster."""
    photos = [images("photo", m.url) for m in media_list if m.type == "photo"]
    posters = [images("photo", m.preview_url) for m in media_list if m.type in _VIDEO_TYPES]
    return next((url for url in photos + posters if url), None)


def _rfc3339(value: datetime) -> str:
    return _utc(value).isoformat().replace("+00:00", "Z")


def _clean_tree(value):
    """Strip XML-invalid characters from every string of a JSON document (a last safety net)."""
    if isinstance(value, str):
        return _clean(value)
    if isinstance(value, dict):
        return {key: _clean_tree(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clean_tree(item) for item in value]
    return value
