"""What the HTML pages need around a post: folded threads, reply labels, link previews.

Pure functions over feedapp.models.Post as feedapp.queries returns it (with the context
feedapp.post_context adds: thread_parts, thread_head, reply_parent, reposted_by).
"""

from __future__ import annotations

from datetime import datetime

from babel.lists import format_list
from markupsafe import Markup, escape

from feedapp.textclean import clean

from .post import cut, readable_text, small_photo

SUMMARY_MAX = 200  # Open Graph descriptions: messaging apps show about two lines


def fold_threads(posts: list) -> list:
    """The cards of a feed page: a later part whose first post is on the page shows only inside that post's thread."""
    shown = {post.id for post in posts}
    return [post for post in posts if post.thread_id not in shown]


def page_id(post) -> int:
    """The id of the post's own page: a repost's page is its original's."""
    return post.canonical_id or post.id


def reply_to(post) -> str | None:
    """The username a post answers, unless it answers its own author (a thread part, never "Replying to" itself)."""
    if not post.reply_to_username or post.is_thread_part:
        return None
    if post.reply_to_user_id and post.reply_to_user_id == post.author_id:
        return None  # a reply to itself whose thread the store did not name (an older row)
    if post.reply_to_username.lower() == (post.author_username or "").lower():
        return None
    return post.reply_to_username


def handle_list(usernames, locale: str) -> Markup:
    """"@a, @b and @c" in the reader's language, each name escaped and isolated (<bdi>)."""
    names = [str(Markup("@<bdi>{}</bdi>").format(name)) for name in usernames]
    # The joining words come from CLDR's list patterns (babel's data, e.g. "and", "et"), never from X;
    # escaping them keeps even a pattern with "&" well-formed.
    placeholders = [f"\x00{i}\x00" for i in range(len(names))]
    joined = str(escape(format_list(placeholders, locale=locale))) if names else ""
    for placeholder, name in zip(placeholders, names):
        joined = joined.replace(placeholder, name)
    return Markup(joined)


def quoted_time(quoted: dict) -> datetime | None:
    """When the quoted post was written (stored as ISO 8601), or None."""
    raw = (quoted or {}).get("created_at")
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw)
    except (TypeError, ValueError):
        return None


def summary(post, limit: int = SUMMARY_MAX) -> str:
    """The post's text as one plain line for a link preview, links written out in full, cut at a word."""
    # X shows links shortened ("example.com/people/holiday…"): a preview gets the readable whole address.
    return clean(cut(" ".join(readable_text(post.text or "", post.links).split()), limit))


def preview_image(post) -> str | None:
    """The first photo (or video poster) of a post, for og:image; None without one."""
    for media in post.media:
        url = small_photo(media.url if media.type == "photo" else media.preview_url)
        if url:
            return url
    return None
