"""The feed pages: `/`, `/offices/SLUG`, and the office picker."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_login import current_user

from feedapp.db import get_session
from feedapp.models import utcnow
from feedapp.queries import pinned_posts, posts_for_feed
from feedapp.render.page import fold_threads

from .http import cached_response
from .scope import OFFICE_COOKIE, chosen_office, cursor, get_office_or_404
from .state import content_state
from .variant import variant

bp = Blueprint("pages", __name__)
PAGE_SIZE = 20
PAGE_MAX_AGE = 60
OFFICE_COOKIE_AGE = 400 * 24 * 3600  # browsers cap cookie lifetimes at 400 days


@bp.get("/")
def show_feed():
    """Company-wide posts plus the reader's office (staff: their own; others: the one they chose)."""
    office = None
    if current_user.is_authenticated:
        office = content_state().by_id.get(current_user.office_id)
    return _feed_page(office or chosen_office())


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


def _feed_page(office):
    before = cursor()
    staff = current_user.is_authenticated

    def build() -> bytes:
        session = get_session()
        office_id = office.id if office else None
        posts = posts_for_feed(session, office_id, staff=staff, before=before, limit=PAGE_SIZE + 1)
        older = posts[PAGE_SIZE - 1].id if len(posts) > PAGE_SIZE else None
        # Pins head the first page and are not repeated below it; later pages keep date order.
        pinned = [] if before else pinned_posts(session, office_id, staff=staff, now=utcnow())
        shown = {p.id for p in pinned}
        # A thread's later parts show under its first post when both are on this page (never twice).
        html = render_template("feed.html", pinned=pinned,
                               posts=fold_threads([p for p in posts[:PAGE_SIZE] if p.id not in shown]),
                               office=office, older=older, before=before, staff=staff, reach="view")
        return html.encode()

    response = cached_response(
        variant(query={"before": before}, office=office.slug if office else None),
        build,
        content_type="text/html; charset=utf-8",
        # Signed-in pages name the reader and hold staff-only posts: per user, never in shared caches.
        cache_control="private, no-cache" if staff else f"public, max-age={PAGE_MAX_AGE}",
        # The office, language and session cookies and Accept-Language all change the body.
        vary=("Cookie", "Accept-Language"),
    )
    response.headers["X-Feedapp-Offline"] = "page"  # the service worker keeps feed pages for offline reading
    return response
