"""The feed pages: `/`, `/offices/SLUG`, and the office picker."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, url_for

from feedapp.db import get_session
from feedapp.queries import posts_for_feed

from .http import cached_response
from .state import content_state
from .scope import OFFICE_COOKIE, chosen_office, cursor, get_office_or_404

bp = Blueprint("pages", __name__)
PAGE_SIZE = 20
PAGE_MAX_AGE = 60
OFFICE_COOKIE_AGE = 400 * 24 * 3600  # browsers cap cookie lifetimes at 400 days


@bp.get("/")
def show_feed():
    """Company-wide posts plus the reader's chosen office."""
    office = chosen_office()
    # The body depends on the office cookie, so caches must key on it.
    return _feed_page(office, vary=("Cookie",))


@bp.get("/offices/<slug>")
def show_office(slug: str):
    """Company-wide posts plus one office's: a link to share."""
    return _feed_page(get_office_or_404(slug))


@bp.get("/offices")
def list_offices():
    """Pick the office whose posts `/` shows besides the company-wide ones."""
    current = chosen_office()
    return render_template("offices.html", offices=content_state().offices, current=current)


@bp.post("/offices")
def choose_office():
    """Remember the chosen office in a cookie, then show the feed."""
    slug = request.form.get("office", "")
    response = redirect(url_for("pages.show_feed"), code=303)
    if slug:
        office = get_office_or_404(slug)
        response.set_cookie(OFFICE_COOKIE, office.slug, max_age=OFFICE_COOKIE_AGE, httponly=True,
                            samesite="Lax", secure=current_app.config["SESSION_COOKIE_SECURE"])
    else:
        response.delete_cookie(OFFICE_COOKIE)
    return response


def _feed_page(office, vary: tuple[str, ...] = ()):
    before = cursor()

    def build() -> bytes:
        session = get_session()
        posts = posts_for_feed(session, office.id if office else None, before=before, limit=PAGE_SIZE + 1)
        older = posts[PAGE_SIZE - 1].id if len(posts) > PAGE_SIZE else None
        html = render_template("feed.html", posts=posts[:PAGE_SIZE], office=office, older=older,
                               before=before, staff=False)
        return html.encode()

    return cached_response(
        ("page", office.slug if office else "", before),
        build,
        content_type="text/html; charset=utf-8",
        cache_control=f"public, max-age={PAGE_MAX_AGE}",
        vary=vary,
    )
