"""What every surface needs from a stored post: safe text HTML, title, links, media variants.

Pure functions over feedapp.models.Post (or anything with the same attributes).
"""

from __future__ import annotations

import re
from urllib.parse import quote, urlsplit

from markupsafe import Markup

from feedapp.textclean import clean, scrub

from .text import post_html

TITLE_MAX = 100  # about 100 characters: what feed readers show of a title on one line
# pbs.twimg.com serves sized variants: name=small is at most 680 px wide (X media docs).
AVATAR_NORMAL_RE = re.compile(r"_normal(\.[A-Za-z]+)$")  # X profile image sizes: _normal, _bigger, _200x200
PHOTO_RE = re.compile(r"^https://pbs\.twimg\.com/media/([A-Za-z0-9_-]+)\.(jpg|png|webp)$")


def text_html(post) -> Markup:
    """The post's text as escaped HTML with its links."""
    return post_html(post.text, post.links)


def quoted_html(quoted: dict) -> Markup:
    """A quoted post's text as escaped HTML with its links."""
    return post_html(quoted.get("text") or "", quoted.get("links") or [])


def quote_visible(post, staff: bool) -> bool:
    """Whether this reader sees the quoted post: staff always, others only while its author is public; nobody
    once an editor hid it (post.quote_removed).

    post.quote_hidden is the decision queries.posts_for_feed made from the quoted account's
    current state (never the `protected` snapshot stored in post.quoted). A post that did not
    come through that query has None, and its quote stays hidden from public readers.
    """
    if not post.quoted or post.quote_removed:
        return False
    return staff or post.quote_hidden is False


def status_url(username: str, post_id) -> str:
    """The x.com page of a post."""
    return f"https://x.com/{_path_segment(username) or 'i'}/status/{post_id}"


def profile_url(username: str | None) -> str:
    """The x.com profile page of a username."""
    return f"https://x.com/{_path_segment(username) or 'i'}"


def _path_segment(username: str | None) -> str:
    # X usernames are [A-Za-z0-9_]; one stored before cleaning may hold anything, even a lone
    # surrogate (which quote() cannot encode): scrub, then percent-encode (RFC 3986 §2.1).
    return quote(scrub(username or ""), safe="")


def permalink(post) -> str:
    """Where to read, reply or thank on x.com: the original post for a repost."""
    return status_url(post.author_username, post.repost_of_id or post.id)


def guid(post) -> str:
    """A stable id for feed items: never changes between builds or hosts.

    The post's own X id (canonical_id: the original of a repost), so the one item a feed keeps of
    a post reached twice has the same id whichever copy it is (RSS 2.0 guid, RFC 4287 atom:id).
    """
    return f"https://x.com/i/status/{post.canonical_id or post.id}"


def title(post, limit: int = TITLE_MAX) -> str:
    """First line of clean text, cut at a word boundary, marked "RT @author:" or "Re:"."""
    # Plain text (RSS/Atom titles, JSON Feed): clean() again after the cut, which can separate
    # a bidi override from its closer; clean text is unchanged by it.
    return clean(_title(post, limit))


def _title(post, limit: int) -> str:
    first = first_line(post) or media_word(post)
    first = cut(first, limit)
    if post.repost_of_id:
        return f"RT @{post.author_username}: {first}"
    if post.reply_to_id and post.thread_id is None and not (post.reply_to_user_id and post.reply_to_user_id == post.author_id):
        return f"Re: {first}"
    return first


def readable_text(text: str, links: list[dict]) -> str:
    """Clean plain text with each link's readable expanded URL in place of X's display text.

    X shortens a link's display text ("example.com/people/holiday…"); where the text is plain
    (titles, JSON Feed content_text) nobody can follow the link, so the URL itself is shown,
    without its scheme: "example.com/people/holiday-schedule".
    """
    out, pos = [], 0
    for link in sorted(links or [], key=lambda l: l["start"]):
        start, end, href = link["start"], link["end"], link.get("href") or ""
        if link.get("kind") != "url" or start < pos or end > len(text) or start >= end or not safe_url(href):
            continue  # mentions and hashtags read as written; a bad span stays as it is
        out += [text[pos:start], readable_url(href)]
        pos = end
    out.append(text[pos:])
    return clean("".join(out))


def readable_url(url: str) -> str:
    """A URL as people write it: without its scheme, and without the lone "/" of an empty path."""
    bare = re.sub(r"^https?://", "", url, flags=re.IGNORECASE)
    return bare[:-1] if bare.count("/") == 1 and bare.endswith("/") else bare


def first_line(post) -> str:
    """The first non-blank line of the post's readable text (see readable_text)."""
    text = readable_text(post.text or "", post.links)
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def media_word(post) -> str:
    """"Video", "Photo" or "Post": what a post without text shows as its title."""
    kinds = {m.type for m in post.media}
    return "Video" if kinds & {"video", "animated_gif"} else "Photo" if kinds else "Post"


def cut(text: str, limit: int = TITLE_MAX) -> str:
    """text cut to at most limit characters at a word boundary, with "…" when cut."""
    if len(text) <= limit:
        return text
    limit = max(limit - 1, 1)  # room for the ellipsis
    window = text[:limit + 1]  # a space just after the limit ends a whole word
    head = window.rsplit(" ", 1)[0] if " " in window else text[:limit]
    return head.rstrip(" ,;:.-") + "…"


def small_photo(url: str | None) -> str | None:
    """The small (≤680 px) variant of a pbs.twimg.com photo; other URLs unchanged."""
    if not url:
        return None
    match = PHOTO_RE.match(url)
    if match:
        return f"https://pbs.twimg.com/media/{match[1]}?format={match[2]}&name=small"
    return url if safe_url(url) else None


def avatar(url: str | None) -> str | None:
    """A profile image sharp at 40 CSS px on 1.5x screens: X's _bigger size (73 px) for its _normal (48 px)."""
    if not safe_url(url):
        return None
    return AVATAR_NORMAL_RE.sub(r"_bigger\1", url)


AVATAR_HUES = 12  # colour classes .h0 to .h11 in static/feed.css (the CSP allows no inline style attribute)


def initials(name: str | None, username: str | None) -> str:
    """Letters standing in for an account's picture, first and last word: "Harbor & Pine News" -> "HN", "lyonhub" -> "L"."""
    words = [w for w in re.split(r"[\s_.\-]+", name or "") if w and w[0].isalnum()]
    if not words:
        words = [username or "?"]
    letters = words[0][0] + (words[-1][0] if len(words) > 1 else "")
    return letters.upper()


def avatar_hue(username: str | None) -> int:
    """A stable colour class for an account, the same on every page and every server (not Python's salted hash)."""
    value = 0
    for char in (username or "").lower():
        value = (value * 31 + ord(char)) % 1_000_003
    return value % AVATAR_HUES


def scaled(width: int | None, height: int | None, box: int = 680) -> tuple[int | None, int | None]:
    """Width and height of the small variant: X fits name=small inside a 680×680 box."""
    if not width or not height or max(width, height) <= box:
        return width, height
    ratio = box / max(width, height)
    return round(width * ratio), round(height * ratio)


def smallest_mp4(media) -> dict | None:
    """The lowest bit-rate mp4 variant of a video (variants are stored ascending)."""
    variants = [v for v in (media.variants or []) if safe_url(v.get("url"))]
    return variants[0] if variants else None


def safe_url(url: str | None) -> bool:
    """Only absolute http(s) URLs are ever put into an attribute."""
    if not url:
        return False
    parts = urlsplit(url)
    return parts.scheme in ("http", "https") and bool(parts.netloc)
