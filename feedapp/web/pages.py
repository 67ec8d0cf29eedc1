"""The feed pages: `/`, `/offices/SLUG`, and the office picker."""

from __future__ import annotations

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from flask_login import current_user

from feedapp import mustread
from feedapp import survey as surveys
from feedapp.db import get_session
from feedapp.models import utcnow
from feedapp.queries import pinned_posts, posts_for_feed
from feedapp.render.page import fold_threads

from .http import cached_response, content_max_age
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
    office_id = office.id if office else None
    now = utcnow()
    # Signed in: read before the cache, as which must-reads they acknowledged is part of their page's variant
    # (anonymous readers acknowledge nothing: their 304s stay free of queries).
    signed_in = mustread.reader_state(get_session(), office_id, reader=current_user, now=now) if staff else None
    must = signed_in or mustread.ReaderState()

    def build() -> bytes:
        session = get_session()
        state = signed_in or mustread.reader_state(session, office_id, reader=None, now=now)
        posts = posts_for_feed(session, office_id, staff=staff, before=before, limit=PAGE_SIZE + 1)
        older = posts[PAGE_SIZE - 1].id if len(posts) > PAGE_SIZE else None
        # Must-reads the reader has not acknowledged head the first page, then pins; neither is repeated below.
        heading = [] if before else [p for p in mustread.active_must_reads(session, office_id, staff=staff, now=now,
                                                                            ids=list(state.ids)) if p.id not in state.acked]
        shown = {p.id for p in heading}
        pinned = [] if before else [p for p in pinned_posts(session, office_id, staff=staff, now=now) if p.id not in shown]
        shown |= {p.id for p in pinned}
        # A thread's later parts show under its first post when both are on this page (never twice).
        posts = fold_threads([p for p in posts[:PAGE_SIZE] if p.id not in shown])
        state.flag([*heading, *pinned, *posts])
        # The survey card heads the first page; a signed-in reader's page is theirs alone (Variant.viewer),
        # so it may leave out what they answered (their other browsers hide it by cookie until rebuilt).
        responder = surveys.user_responder(current_user.id) if staff else None
        open_surveys = [] if before else surveys.surveys_for_reader(session, office_id, responder)
        html = render_template("feed.html", must_read=heading, pinned=pinned, posts=posts,
                               office=office, older=older, before=before, staff=staff, surveys=open_surveys,
                               reach="view")
        return html.encode()

    response = cached_response(
        variant(query={"before": before}, office=office.slug if office else None, acked=tuple(must.acked)),
        build,
        content_type="text/html; charset=utf-8",
        # Signed-in pages name the reader and hold staff-only posts: per user, never in shared caches.
        cache_control="private, no-cache" if staff else
        f"public, max-age={min(PAGE_MAX_AGE, content_max_age(current_app.config))}",
        # The office, language and session cookies and Accept-Language all change the body.
        vary=("Cookie", "Accept-Language"),
        fresh=bool(must.asked),  # its "Got it" forms carry this session's CSRF token
    )
    response.headers["X-Feedapp-Offline"] = "page"  # the service worker keeps feed pages for offline reading
    return response
