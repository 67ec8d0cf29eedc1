"""The HTML body of one feed item (RSS description, Atom content, JSON content_html): the post, its
context (repost, thread, reply), media and quote, with the words around them in the feed's language.

Pure functions, like feedapp.render.feeds, whose builders call content_html.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Callable

from markupsafe import Markup

from feedapp.textclean import clean, scrub

from .post import profile_url, permalink, quote_visible, quoted_html, scaled, smallest_mp4, status_url, text_html

_MEDIA_FIELDS = ("key", "type", "url", "preview_url", "width", "height", "alt_text", "duration_ms", "variants")
Images = Callable[[str, "str | None"], "str | None"]  # (kind, stored X URL) → the URL an item writes


@dataclass(frozen=True)
class Labels:
    """The words a feed puts around posts, in the feed's language (the view fills them through Flask-Babel)."""

    reposted_by: str = "Reposted by"
    replying_to: str = "Replying to"
    watch_video: str = "Watch video"
    quoting: str = "Quoting"
    view_post: str = "View post"
    quote_unavailable: str = "Quoted post not available"
    thread: str = "Thread"  # title label of a thread's first post: "Thread 1/3: …"
    continued: str = "Continued"  # title label of a later part: "Continued 2/3: …"
    continues: str = "Continues a thread"  # a later part's body line, linking to the thread's first post
    reply: str = "Re:"
    repost: str = "RT"
    photo: str = "Photo"
    video: str = "Video"
    post: str = "Post"
    pinned: str = "Pinned"  # category of a post pinned on the feed's page
    shout_out: str = "Shout-out"  # category of a recognition post
    must_read: str = "Must read"  # category of an active must-read post (feedapp.mustread)


def content_html(post, staff: bool, labels: Labels, links: Mapping[int, str], images: Images) -> str:
    parts = []
    # Every piece of user text sits in its own <bdi> or dir="auto" element (HTML: unicode-bidi:
    # isolate), so no direction it sets reaches the markup around it in a feed reader.
    if post.repost_of_id:
        names = [clean(name) for name in (post.reposted_by or (post.source.username,))]
        by = Markup(", ").join(Markup('<a href="{}"><bdi>@{}</bdi></a>').format(profile_url(n), n) for n in names)
        parts.append(Markup("<p>{} {}</p>").format(labels.reposted_by, by))
    heads_thread = _in_thread(post) and post.thread_position == 1
    if _in_thread(post) and not heads_thread:
        # A later part is its own item, saying where its thread starts (that item, or the post on x.com).
        head = _link(post.thread_head, links) if post.thread_head is not None else \
            status_url(post.author_username, post.thread_id)
        parts.append(Markup('<p>{}/{} · <a href="{}">{}</a></p>').format(
            post.thread_position, post.thread_total, head, labels.continues))
    elif _reply_to_other(post) and post.reply_to_username:
        to = clean(post.reply_to_username)
        parts.append(Markup('<p>{} <a href="{}"><bdi>@{}</bdi></a></p>').format(labels.replying_to, profile_url(to), to))
        if post.reply_parent is not None:
            parts.append(_parent_html(post.reply_parent, links))
    if heads_thread:
        parts.append(Markup('<p><a href="{}">1/{}</a></p>').format(_link(post, links), post.thread_total))
    parts += _body_html(post, staff, labels, links, images)
    if heads_thread:
        # The parts known when this item is built, in order (readers take an item again when it changes).
        for part in post.thread_parts:
            parts.append(Markup('<hr><p><a href="{}">{}/{}</a></p>').format(
                _link(part, links), part.thread_position, part.thread_total))
            parts += _body_html(part, staff, labels, links, images)
    return _clean(str(Markup("\n").join(parts)))


def _body_html(post, staff: bool, labels: Labels, links: Mapping[int, str], images: Images) -> list[Markup]:
    """A post's text, media and quote."""
    parts = []
    if post.text:
        parts.append(Markup('<p dir="auto">{}</p>').format(text_html(post)))
    parts += [_media_html(media, _link(post, links), labels, images) for media in post.media]
    if post.quoted:
        parts.append(_quote_html(post, staff, labels, images))
    return parts


def _parent_html(parent, links: Mapping[int, str]) -> Markup:
    """The post a reply answers (queries set reply_parent only when the reader may see it)."""
    username = clean(parent.author_username or "")
    return Markup('<blockquote><p><bdi>{}</bdi> <a href="{}"><bdi>@{}</bdi></a></p><p dir="auto">{}</p>'
                  '</blockquote>').format(clean(parent.author_name or username), _link(parent, links), username,
                                          text_html(parent))


def _quote_html(post, staff: bool, labels: Labels, images: Images) -> Markup:
    if not quote_visible(post, staff):
        # Never the text of a staff-only or protected account outside staff feeds, not even its
        # author: decided by the query from the account's current state (post.quote_hidden).
        return Markup("<p>{}</p>").format(labels.quote_unavailable)
    quoted = post.quoted
    author = quoted.get("author") or {}
    username = clean(author.get("username") or "")
    url = status_url(username, quoted.get("id"))
    media = Markup("").join(_media_html(_quoted_media(m), url, labels, images) for m in quoted.get("media") or [])
    # "Quoting Name @name": the name links to the quoted author's profile, "View post" to the quoted post.
    return Markup('<blockquote><p>{} <a href="{}"><bdi>{}</bdi> <bdi>@{}</bdi></a></p><p dir="auto">{}</p>{}'
                  '<p><a href="{}">{}</a></p></blockquote>').format(
        labels.quoting, profile_url(username), clean(author.get("name") or username), username,
        quoted_html(quoted), media, url, labels.view_post)


def _media_html(media, post_url: str, labels: Labels, images: Images) -> Markup:
    width, height = scaled(media.width, media.height)
    if media.type == "photo":
        src = images("photo", media.url)
        return Markup("<p>{}</p>").format(_img(src, media.alt_text, width, height)) if src else Markup("")
    poster = images("photo", media.preview_url)
    image = _img(poster, media.alt_text or labels.video, width, height) if poster else Markup("")
    variant = smallest_mp4(media)
    watch = variant["url"] if variant else post_url
    return Markup('<p><a href="{}">{}</a><br><a href="{}">{}</a></p>').format(post_url, image, watch,
                                                                             labels.watch_video)


def _img(src: str, alt: str | None, width: int | None, height: int | None) -> Markup:
    dims = Markup(' width="{}" height="{}"').format(width, height) if width and height else Markup("")
    return Markup('<img src="{}" alt="{}"{}>').format(src, clean(alt or ""), dims)


def _quoted_media(data: dict) -> SimpleNamespace:
    """A quoted post's media dict with the attributes of a Media row."""
    return SimpleNamespace(**{**dict.fromkeys(_MEDIA_FIELDS), **data})


def _link(post, links: Mapping[int, str]) -> str:
    """Where an item sends its reader: the caller's page for the post (staff-only ones), else x.com."""
    return links.get(post.id) or permalink(post)


def _in_thread(post) -> bool:
    """Whether the post is in a thread of at least two posts the reader may see."""
    return bool(post.thread_position) and (post.thread_total or 0) > 1


def _reply_to_other(post) -> bool:
    """A reply to another account's post: an account's reply to itself is a thread, never "Re:"."""
    self_reply = bool(post.reply_to_user_id) and post.reply_to_user_id == post.author_id
    return bool(post.reply_to_id) and post.thread_id is None and not self_reply


def _clean(text: str | None) -> str:
    """Markup and URLs: without the characters XML forbids (feedapp.textclean.scrub)."""
    return scrub(text or "")
