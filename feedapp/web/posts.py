"""A page for each post: `/posts/ID` (the X id), with its thread, parent, quote and reposters."""

from __future__ import annotations

from flask import Blueprint, abort, jsonify, render_template, request, url_for
from flask_login import current_user
from werkzeug.routing import BaseConverter, ValidationError

from feedapp import mustread
from feedapp.db import get_session
from feedapp.models import utcnow
from feedapp.queries import hidden_post_ids, post_with_thread

from .errors import SignInMayShow
from .http import cached_response
from .pages import PAGE_MAX_AGE
from .scope import MAX_ID, base_url
from .variant import EVERY_OFFICE, variant

bp = Blueprint("posts", __name__)

REMOVED_MAX = 500  # a worker keeps 20 pages and checks at every visit: older removals were dropped long ago


class XIdConverter(BaseConverter):
    """An X id in a path: ASCII digits without a leading zero, at most the largest id a BIGINT column holds.

    Anything else (letters, signs, "0123", "٣", a 30-digit number) does not match the route: a plain
    404, never a 500 from a value the database cannot bind.
    """

    regex = r"[1-9][0-9]{0,18}"

    def to_python(self, value: str) -> int:
        """The id as an int, or no match when it exceeds a BIGINT."""
        number = int(value)
        if number > MAX_ID:
            raise ValidationError()
        return number

    def to_url(self, value) -> str:
        """The id as digits (an int or a digit string)."""
        return str(int(value))


@bp.get("/posts/<xid:post_id>")
def show_post(post_id: int):
    """One post with its whole thread, its parent, quote and reposters; unknown and not-yours look the same."""
    staff = current_user.is_authenticated
    post = post_with_thread(get_session(), post_id, staff=staff)
    if post is None:
        # The same answer for an id we never stored and one this reader may not see: nothing
        # (status, body, headers) tells a public reader that a staff-only post exists. Either way an anonymous
        # reader is offered "Sign in" back to here: a staff-only notification tapped after the session ended.
        if staff:
            abort(404)
        raise SignInMayShow(url_for("posts.show_post", post_id=post_id))
    head = post.thread_head or post
    canonical_id = post.canonical_id or post.id  # a repost's page is its original's
    must = mustread.reader_state(get_session(), mustread.EVERY, reader=current_user if staff else None, now=utcnow())
    must.flag([head] if head is post else [head, post])

    def build() -> bytes:
        html = render_template(
            "post.html", post=post, head=head, staff=staff, reach="open",
            canonical=base_url() + url_for("posts.show_post", post_id=canonical_id),
            # Link previews (Open Graph) only for what anyone may read: never a staff-only post's text.
            public=not (post.source.is_staff_only or post.author_hidden),
        )
        return html.encode()

    response = cached_response(
        # The post may belong to any office: its ETag follows every office's scopes of this audience.
        variant(office=EVERY_OFFICE, acked=tuple(must.acked)),
        build,
        content_type="text/html; charset=utf-8",
        cache_control="private, no-cache" if staff else f"public, max-age={PAGE_MAX_AGE}",
        vary=("Cookie", "Accept-Language"),
        fresh=bool(must.asked),  # a "Got it" form carries this session's CSRF token
    )
    # A post opened from a shared link can be read again offline, like the feed pages (templates/sw.js).
    response.headers["X-Feedapp-Offline"] = "page"
    return response


@bp.get("/removed.json")
def list_removed():
    """Ids of the posts most recently hidden by editors, for the service worker to drop from saved pages.

    Public readers get the ids of public posts only. Only numbers: no text of a hidden post ever leaves.
    """
    staff = current_user.is_authenticated
    ids = hidden_post_ids(get_session(), staff=staff, limit=REMOVED_MAX)
    response = jsonify({"ids": [str(i) for i in ids]})  # strings: X ids exceed JavaScript's exact integers
    response.headers["Cache-Control"] = "private, no-cache"
    response.headers["Vary"] = "Cookie"
    response.add_etag()
    return response.make_conditional(request)
