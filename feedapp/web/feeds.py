"""RSS 2.0, Atom 1.0 and JSON Feed 1.1 of the public posts, and the OPML list of them."""

from __future__ import annotations

import math
import uuid

from flask import Blueprint, abort, current_app, url_for
from flask_babel import force_locale, gettext

from feedapp import accounts, mustread
from feedapp.db import get_session
from feedapp.models import utcnow
from feedapp.queries import pinned_ids, posts_for_feed
from feedapp.render import feeds as render
from feedapp.render import jsonfeed

from . import media
from .http import cached_response, content_max_age
from .branding import icon_url, site_name
from .scope import base_url, get_office_or_404
from .state import OfficeInfo, content_state
from .variant import variant

bp = Blueprint("feeds", __name__)

FORMATS = {
    "rss": (render.rss, "application/rss+xml; charset=utf-8"),
    "atom": (render.atom, "application/atom+xml; charset=utf-8"),
    "json": (jsonfeed.json_feed, "application/feed+json; charset=utf-8"),
}
FEED_ICON = "icon-512"  # the logo's when one is set; JSON Feed 1.1: icon 512×512; RFC 4287 §4.2.5: atom:icon square


@bp.get("/feed.<fmt>")
def show_company_feed(fmt: str):
    """The public company-wide feed."""
    return _feed(fmt, None)


@bp.get("/offices/<slug>/feed.<fmt>")
def show_office_feed(slug: str, fmt: str):
    """The public feed of one office: company-wide plus that office."""
    return _feed(fmt, get_office_or_404(slug))


@bp.get("/offices/<slug>/local/feed.<fmt>")
def show_office_local_feed(slug: str, fmt: str):
    """The public feed of one office's own posts only: with the company feed, no post twice."""
    return _feed(fmt, get_office_or_404(slug), company=False)


@bp.get("/private/<token>/feed.<fmt>")
def show_private_feed(token: str, fmt: str):
    """A user's own feed with staff-only posts: the secret token stands in for signing in."""
    user = accounts.user_for_feed_token(get_session(), token)
    if user is None:
        abort(404)  # the same answer as any unknown URL: a wrong token reveals nothing
    return _feed(fmt, content_state().by_id.get(user.office_id), reader=user.id, token=token)


@bp.get("/feeds.opml")
def show_opml():
    """The public feeds that do not overlap (company-wide, and each office's own), for import into an RSS reader."""
    root = base_url()
    site = site_name()

    def build() -> bytes:
        # Not the combined office feeds: a reader importing those beside the company feed would
        # show each company-wide post once per feed (rss2email mailed one post four times).
        entries = [(gettext("%(site)s: company-wide posts", site=site),
                    root + url_for("feeds.show_company_feed", fmt="rss"), root + url_for("pages.show_feed"))]
        for office in content_state().offices:
            entries.append((gettext("%(site)s: %(office)s only", site=site, office=office.name),
                            root + url_for("feeds.show_office_local_feed", slug=office.slug, fmt="rss"),
                            root + url_for("pages.show_office", slug=office.slug)))
        return render.opml(gettext("%(site)s feeds", site=site), entries)

    # The list shows no post: only offices and settings (the site scope) change it.
    return cached_response(variant(page=False, company=False), build, content_type="text/x-opml; charset=utf-8",
                           cache_control=_public_max_age())


def _feed(fmt: str, office: OfficeInfo | None, reader: int | None = None, token: str | None = None,
          company: bool = True):
    if fmt not in FORMATS:
        abort(404)
    builder, content_type = FORMATS[fmt]
    root = base_url()
    staff = reader is not None

    def build() -> bytes:
        session = get_session()
        office_id = office.id if office else None
        posts = posts_for_feed(session, office_id, staff=staff, company=company,
                               limit=current_app.config["FEEDAPP_FEED_ITEMS"])
        # Feeds keep date order; a post pinned on the feed's page is marked with a category.
        now = utcnow()
        pinned = pinned_ids(session, office_id, company=company, now=now)
        # Active must-reads come first, whatever their age, with their own category (feedapp.mustread).
        must = mustread.active_must_reads(session, office_id, staff=staff, now=now, company=company)
        if must:
            first = {p.id for p in must}
            posts = (must + [p for p in posts if p.id not in first])[:current_app.config["FEEDAPP_FEED_ITEMS"]]
        for post in posts:
            post.pinned = post.id in pinned
        if token:
            home = root + url_for("pages.show_feed")
            self_url = root + url_for("feeds.show_private_feed", token=token, fmt=fmt)
            scope = f"private:{reader}"
        elif office:
            home = root + url_for("pages.show_office", slug=office.slug)
            endpoint = "feeds.show_office_feed" if company else "feeds.show_office_local_feed"
            self_url = root + url_for(endpoint, slug=office.slug, fmt=fmt)
            scope = f"office:{office.id}" if company else f"office-local:{office.id}"
        else:
            home, self_url = root + url_for("pages.show_feed"), root + url_for("feeds.show_company_feed", fmt=fmt)
            scope = "company"
        language = (office.language if office else None) or current_app.config.get("BABEL_DEFAULT_LOCALE", "en")
        with force_locale(language):  # labels and titles in the feed's language, whoever asks
            title, subtitle = _titles(office, company, staff)
            info = render.FeedInfo(
                title=title,
                subtitle=subtitle,
                home_url=home,
                self_url=self_url,
                feed_id=feed_id(scope),
                # RSS 2.0 <ttl> in minutes, never shorter than Cache-Control max-age (rounded up).
                ttl_minutes=max(1, math.ceil(content_max_age(current_app.config) / 60)),
                icon_url=root + icon_url(FEED_ICON),
                language=language,
                labels=feed_labels(),
                # Absolute: readers fetch images on their own. Private feeds' images carry its audience.
                media_url=media.mapper(media.feed_audience(reader, token) if token else "p", root),
            )
        return builder(info, posts, staff=staff, links=_own_pages(posts, root) if staff else None)

    cache_control = _public_max_age()
    if staff:
        cache_control = cache_control.replace("public", "private")  # never in a shared cache
    return cached_response(variant(page=False, office=office.slug if office else None, reader=reader, token=token,
                                   company=company),
                           build, content_type=content_type, cache_control=cache_control)


def feed_id(scope: str) -> str:
    """The feed's RFC 4287 atom:id: a UUID from the installation's identity and the feed's scope.

    Unique per feed (company, an office, an office's own posts, one reader's private feed) and
    the same whatever host the feed is fetched through, so a reader never takes it for another.
    """
    try:
        namespace = uuid.UUID(content_state().installation_id)
    except ValueError:  # never after `db upgrade` (migration 0007 mints it); still a valid, host-free id
        namespace = uuid.NAMESPACE_URL
    return uuid.uuid5(namespace, f"feed:{scope}").urn


def feed_labels() -> render.Labels:
    """The words around posts in the current locale (the view sets the feed's language with force_locale)."""
    return render.Labels(
        reposted_by=gettext("Reposted by"),
        replying_to=gettext("Replying to"),
        watch_video=gettext("Watch video"),
        quoting=gettext("Quoting"),
        view_post=gettext("View post"),
        quote_unavailable=gettext("Quoted post not available"),
        thread=gettext("Thread"),
        continued=gettext("Continued"),
        continues=gettext("Continues a thread"),
        reply=gettext("Re:"),
        repost=gettext("RT"),
        photo=gettext("Photo"),
        video=gettext("Video"),
        post=gettext("Post"),
        pinned=gettext("Pinned"),
        shout_out=gettext("Shout-out"),
        must_read=gettext("Must read"),
    )


def _titles(office: OfficeInfo | None, company: bool, staff: bool) -> tuple[str, str]:
    """The feed's title (the site's name: the console's, else FEEDAPP_SITE_NAME) and description, in the current locale."""
    site = site_name()
    if office is None:
        title, subtitle = site, gettext("Company-wide posts")
    elif company:
        title, subtitle = f"{site} · {office.name}", gettext("Company-wide posts and %(office)s", office=office.name)
    else:
        title = f"{site} · " + gettext("%(office)s only", office=office.name)
        subtitle = gettext("Posts of %(office)s only, without the company-wide posts", office=office.name)
    if staff:
        title += " · " + gettext("staff")
        subtitle += " · " + gettext("with staff-only posts")
    return title, subtitle


def _own_pages(posts, root: str) -> dict[int, str]:
    """Our /posts/ID page for each staff-only post an item shows (staff cannot open it on x.com unless they follow)."""
    links = {}
    for post in posts:
        shown = [post, *post.thread_parts, post.thread_head, post.reply_parent]
        for one in shown:
            if one is not None and (one.source.is_staff_only or one.author_hidden):
                links[one.id] = root + url_for("posts.show_post", post_id=one.id)
    return links


def _public_max_age() -> str:
    # A feed changes at most once per poll cycle, or within seconds when the filtered stream delivers.
    return f"public, max-age={content_max_age(current_app.config)}"
