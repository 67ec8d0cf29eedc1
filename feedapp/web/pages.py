"""The feed pages (`/`, `/offices/SLUG`); issue #3 grows these into the full mobile feed."""

from __future__ import annotations

from flask import Blueprint, abort, render_template, request

from feedapp.db import get_session
from feedapp.queries import all_offices, office_by_slug, posts_for_feed
from feedapp.render.text import post_html

bp = Blueprint("pages", __name__)
PAGE_SIZE = 30


@bp.app_template_filter("post_html")
def _post_html(post):
    return post_html(post.text, post.links)


@bp.get("/")
def show_feed():
    """Company-wide public posts."""
    return _render(None)


@bp.get("/offices/<slug>")
def show_office(slug: str):
    """Company-wide plus one office's public posts."""
    office = office_by_slug(get_session(), slug)
    if office is None:
        abort(404)
    return _render(office)


def _render(office):
    before = request.args.get("before", type=int)
    posts = posts_for_feed(get_session(), office.id if office else None, before=before, limit=PAGE_SIZE)
    older = posts[-1].id if len(posts) == PAGE_SIZE else None
    return render_template("feed.html", posts=posts, office=office, offices=all_offices(get_session()), older=older)
