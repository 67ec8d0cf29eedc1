"""RSS 2.0, Atom 1.0 and JSON Feed 1.1 of the public posts, and the OPML list of them."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, url_for

from feedapp import accounts
from feedapp.db import get_session
from feedapp.queries import posts_for_feed
from feedapp.render import feeds as render

from feedapp.assets import asset_url

from .http import cached_response
from .scope import base_url, get_office_or_404
from .state import content_state
from .variant import variant

bp = Blueprint("feeds", __name__)

FORMATS = {
    "rss": (render.rss, "application/rss+xml; charset=utf-8"),
    "atom": (render.atom, "application/atom+xml; charset=utf-8"),
    "json": (render.json_feed, "application/feed+json; charset=utf-8"),
}
COMPANY = "Company feed"


@bp.get("/feed.<fmt>")
def show_company_feed(fmt: str):
    """The public company-wide feed."""
    return _feed(fmt, None)


@bp.get("/offices/<slug>/feed.<fmt>")
def show_office_feed(slug: str, fmt: str):
    """The public feed of one office: company-wide plus that office."""
    return _feed(fmt, get_office_or_404(slug))


@bp.get("/private/<token>/feed.<fmt>")
def show_private_feed(token: str, fmt: str):
    """A user's own feed with staff-only posts: the secret token stands in for signing in."""
    user = accounts.user_for_feed_token(get_session(), token)
    if user is None:
        abort(404)  # the same answer as any unknown URL: a wrong token reveals nothing
    return _feed(fmt, content_state().by_id.get(user.office_id), reader=user.id, token=token)


@bp.get("/feeds.opml")
def show_opml():
    """Every public feed, for import into an RSS reader."""
    root = base_url()

    def build() -> bytes:
        entries = [(COMPANY, root + url_for("feeds.show_company_feed", fmt="rss"), root + url_for("pages.show_feed"))]
        for office in content_state().offices:
            entries.append((office.name, root + url_for("feeds.show_office_feed", slug=office.slug, fmt="rss"),
                            root + url_for("pages.show_office", slug=office.slug)))
        return render.opml("Staff feeds", entries)

    return cached_response(variant(page=False), build, content_type="text/x-opml; charset=utf-8",
                           cache_control=_public_max_age())


def _feed(fmt: str, office, reader: int | None = None, token: str | None = None):
    if fmt not in FORMATS:
        abort(404)
    builder, content_type = FORMATS[fmt]
    root = base_url()
    interval = current_app.config["FEEDAPP_POLL_INTERVAL"]

    def build() -> bytes:
        posts = posts_for_feed(get_session(), office.id if office else None, staff=reader is not None,
                               limit=current_app.config["FEEDAPP_FEED_ITEMS"])
        if token:
            home = root + url_for("pages.show_feed")
            self_url = root + url_for("feeds.show_private_feed", token=token, fmt=fmt)
        elif office:
            home = root + url_for("pages.show_office", slug=office.slug)
            self_url = root + url_for("feeds.show_office_feed", slug=office.slug, fmt=fmt)
        else:
            home, self_url = root + url_for("pages.show_feed"), root + url_for("feeds.show_company_feed", fmt=fmt)
        info = render.FeedInfo(
            title=("Staff · " if token else "") + (f"{office.name} · {COMPANY}" if office else COMPANY),
            subtitle=f"Company-wide posts and {office.name}" if office else "Company-wide posts",
            home_url=home,
            self_url=self_url,
            feed_id=home,
            ttl_minutes=max(1, interval // 60),  # RSS <ttl> matches Cache-Control max-age
            icon_url=root + asset_url("icons/icon-192.png"),
            language=None,
        )
        return builder(info, posts, staff=reader is not None)

    cache_control = _public_max_age()
    if reader is not None:
        cache_control = cache_control.replace("public", "private")  # never in a shared cache
    return cached_response(variant(page=False, office=office.slug if office else None, reader=reader, token=token),
                           build, content_type=content_type, cache_control=cache_control)


def _public_max_age() -> str:
    # A feed changes at most once per poll cycle.
    return f"public, max-age={current_app.config['FEEDAPP_POLL_INTERVAL']}"
