"""`/screen/TOKEN`: a break-room screen's page, its posts as JSON, its RSS for signage tickers, its QR codes; and
`/screen/sw.js`, the service worker that keeps a screen's last posts for a reload while the server is down.

The token in the URL stands in for signing in (signage players have no account, often no
cookies). An unknown token and a removed screen's get the same 404 as any unknown URL. Every
answer is private (the URL is a secret) and the page alone may be framed (allow_framing).
"""

from __future__ import annotations

import hashlib
import json
import math
from functools import lru_cache

import qrcode
import qrcode.image.svg
from flask import Blueprint, Response, abort, current_app, render_template, request, url_for
from flask_babel import force_locale, gettext
from markupsafe import Markup

from feedapp import screens
from feedapp.assets import asset_url
from feedapp.db import get_session
from feedapp.models import Office, Screen, utcnow
from feedapp.render import post as post_render
from feedapp.render.page import page_id
from feedapp.render.screen_feed import ScreenFeed, screen_rss

from . import lang_attr, media
from .branding import brand_file_url, icon_url, site_name
from .pwa import WORKER_CSP
from .scope import base_url
from .security import allow_framing
from .state import OfficeInfo, content_state

bp = Blueprint("screens", __name__)

TOKEN_MAX = 100  # tokens are 43 characters; a longer path segment is no token
TEXT_MAX = (600, 280)  # characters shown at most without / with a photo; the page cuts further if they overflow
GONE = '{"gone":true}'  # posts.json of no screen (static/screen.js: removed)
PRIVATE = "private, no-cache"  # the URL is a secret: no shared cache keeps any of it; revalidated every time
# Inside <script type="application/json"> only "</script" or "<!--" could end the element early or change how it is
# parsed (HTML, "script data" states): with no "<", ">" or "&" left there is nothing to parse but text. U+2028 and
# U+2029 are escaped too, for any reader that takes the JSON for JavaScript. All are plain JSON escapes.
SCRIPT_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026",
                  0x2028: "\\u2028", 0x2029: "\\u2029"}


def _screen_or_none(token: str) -> Screen | None:
    """The screen of this token, its last fetch noted (at most once a minute), or None (unknown or removed)."""
    if len(token) > TOKEN_MAX:
        return None
    session = get_session()
    screen = screens.screen_for_token(session, token)
    if screen is not None and screens.touch(session, screen):
        session.commit()
    return screen


def _screen_or_404(token: str) -> Screen:
    """The screen of this token, or the plain 404."""
    screen = _screen_or_none(token)
    if screen is None:
        abort(404)  # the same answer as any unknown URL: a wrong or revoked token reveals nothing
    return screen


def _office(screen: Screen) -> OfficeInfo | None:
    return content_state().by_id.get(screen.office_id) if screen.office_id else None


def _language(office: OfficeInfo | None) -> str:
    """The screen's language: its office's, else the site's default (a wall has no Accept-Language of its own)."""
    return (office.language if office else None) or current_app.config.get("BABEL_DEFAULT_LOCALE", "en")


def _time_zone(screen: Screen) -> str | None:
    """The clock's time zone: the office's, else FEEDAPP_TIME_ZONE (the one quiet hours use); None: the player's own.

    Players are often left on UTC. FEEDAPP_TIME_ZONE at UTC (its default) says nothing: the player's clock then.
    """
    office = get_session().get(Office, screen.office_id) if screen.office_id else None
    if office is not None and office.time_zone:
        return office.time_zone
    site = (current_app.config.get("FEEDAPP_TIME_ZONE") or "").strip()
    return site if site and site.upper() != "UTC" else None


def asset_version() -> str:
    """Names the page's script and stylesheet: a deploy that changes either changes it, and open screens reload once."""
    return hashlib.sha256(f"{asset_url('screen.js')}\n{asset_url('screen.css')}".encode()).hexdigest()[:12]


def _etag(screen: Screen, office: OfficeInfo | None) -> str:
    """The JSON's validator, from what it shows, without reading a post: a 304 costs the token lookup only."""
    validators = content_state().validators(office.slug if office else None, screen.staff_only)
    config = current_app.config
    parts = (screen.id, screen.office_id, screen.staff_only, validators.versions, asset_version(),
             config["FEEDAPP_SCREEN_SECONDS"], config["FEEDAPP_SCREEN_REFRESH"], _language(office), base_url())
    return hashlib.sha256(repr(parts).encode()).hexdigest()[:32]


@bp.get("/screen/sw.js")
def show_screen_worker():
    """The screens' service worker (templates/screen_sw.js), from /screen/ so its scope is the screens' pages only."""
    assets = [asset_url("screen.css"), asset_url("screen.js"), icon_url("icon-192")]
    assets += [url for url in (brand_file_url("logo-header"),) if url]
    digest = current_app.extensions.get("feedapp.screen_sw_source")
    if digest is None:  # the template read once per process, not at every update check
        source = current_app.jinja_env.loader.get_source(current_app.jinja_env, "screen_sw.js")[0]
        digest = current_app.extensions["feedapp.screen_sw_source"] = hashlib.sha256(source.encode()).hexdigest()
    # Changes with any file it keeps or the worker itself: the new worker then replaces the old, and its files.
    version = hashlib.sha256(("\n".join(assets) + digest).encode()).hexdigest()[:12]
    body = render_template("screen_sw.js", version=version, assets=assets)
    # As /sw.js: re-checked on every visit (SW spec, "update"), a 304 while unchanged; its own CSP governs its fetch().
    response = Response(body, mimetype="text/javascript",
                        headers={"Cache-Control": "no-cache", "Content-Security-Policy": WORKER_CSP})
    response.add_etag()
    return response.make_conditional(request)


@bp.get("/screen/<token>")
def show_screen(token: str):
    """The page a signage player opens: one post at a time, full screen, refreshing itself."""
    screen = _screen_or_404(token)
    office = _office(screen)
    etag = _etag(screen, office)
    with force_locale(_language(office)):
        body = render_template("screen.html", data=Markup(script_json(_data(screen, token))),
                               etag=etag, version=asset_version(), language=_language(office), site=site_name(),
                               time_zone=_time_zone(screen),
                               logo=brand_file_url("logo-header"), header_size=content_state().branding.header_size,
                               token=token)
    # no-store: no HTTP cache keeps a page of posts (perhaps staff-only) under a secret URL; the screen's own service
    # worker keeps one copy, per screen, and drops it when the screen is removed (templates/screen_sw.js).
    allow_framing()
    return Response(body, mimetype="text/html", headers={"Cache-Control": "no-store"})


@bp.get("/screen/<token>/posts.json")
def show_screen_posts(token: str):
    """The screen's posts and rotation as JSON, with an ETag: the page asks every FEEDAPP_SCREEN_REFRESH seconds."""
    screen = _screen_or_none(token)
    if screen is None:
        # The same for a wrong and a revoked token, but the app's own: the page clears itself only on this
        # answer, not on a proxy's or portal's 404 page (an outage, during which it keeps its posts).
        return Response(GONE, status=404, mimetype="application/json", headers={"Cache-Control": "no-store"})
    office = _office(screen)
    etag = _etag(screen, office)
    if etag in request.if_none_match:
        return Response(status=304, headers={"ETag": f'"{etag}"', "Cache-Control": PRIVATE})
    with force_locale(_language(office)):
        data = _data(screen, token)
    response = Response(script_json(data), mimetype="application/json")
    response.headers.update({"ETag": f'"{etag}"', "Cache-Control": PRIVATE})
    return response


@bp.get("/screen/<token>/feed.rss")
def show_screen_feed(token: str):
    """The screen's posts as RSS 2.0 for players that only read feeds: plain text, one image enclosure each."""
    screen = _screen_or_404(token)
    office = _office(screen)
    etag = _etag(screen, office)
    if etag in request.if_none_match:
        return Response(status=304, headers={"ETag": f'"{etag}"', "Cache-Control": PRIVATE})
    root = base_url()
    playlist = screens.screen_posts(get_session(), screen, utcnow())
    images = _images(screen, root)
    with force_locale(_language(office)):
        feed = ScreenFeed(
            title=f"{site_name()} · {office.name}" if office else site_name(),
            link=root + url_for("pages.show_office", slug=office.slug) if office else root + url_for("pages.show_feed"),
            description=gettext("Posts for the break-room screen %(name)s", name=screen.name),
            language=_language(office),
            ttl_minutes=max(1, math.ceil(current_app.config["FEEDAPP_SCREEN_REFRESH"] / 60)),
            self_url=root + url_for("screens.show_screen_feed", token=token),
            pinned_label=gettext("Pinned"),
            must_read_label=gettext("Must read"),
        )
        body = screen_rss(feed, playlist.posts, pinned=playlist.pinned,
                          page_url=lambda post: root + url_for("posts.show_post", post_id=page_id(post)),
                          image_url=lambda post: images(_photo(post)))
    response = Response(body, mimetype="application/rss+xml")
    response.headers.update({"ETag": f'"{etag}"', "Cache-Control": PRIVATE})
    return response


@bp.get("/screen/<token>/qr/<xid:post_id>.svg")
def show_screen_qr(token: str, post_id: int):
    """A QR code of the post's page (/posts/ID, absolute), for phones held up to the screen."""
    _screen_or_404(token)
    svg = _qr_svg(base_url() + url_for("posts.show_post", post_id=post_id))
    # The URL names its content (the base URL aside, which a deploy seldom changes): a day in the player's cache.
    return Response(svg, mimetype="image/svg+xml", headers={"Cache-Control": "private, max-age=86400"})


def script_json(data) -> str:
    """data as compact JSON in raw UTF-8, safe inside a script element.

    Raw UTF-8: \\u escapes cost twice the bytes for CJK, three times for accents and emoji.
    """
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).translate(SCRIPT_ESCAPES)


@lru_cache(maxsize=512)
def _qr_svg(data: str) -> bytes:
    """A QR code as SVG paths, black on white, with the quiet zone of four modules the standard asks for."""
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathFillImage, box_size=10, border=4,
                        error_correction=qrcode.constants.ERROR_CORRECT_M)
    return image.to_string()


def _photo(post) -> str | None:
    """The post's first photo, or a video's poster, as X's larger (1200 px) variant."""
    for item in post.media:
        url = item.url if item.type == "photo" else item.preview_url
        if post_render.safe_url(url):
            match = post_render.PHOTO_RE.match(url)
            return f"https://pbs.twimg.com/media/{match[1]}?format={match[2]}&name=medium" if match else url
    return None


def _images(screen: Screen, root: str = ""):
    """(upstream URL) → the image URL the screen loads: public media, or this screen's own when staff-only."""
    mapped = media.mapper(media.screen_audience(screen) if screen.staff_only else "p", root)
    return lambda url: mapped("screen", url) if url else None


def _data(screen: Screen, token: str) -> dict:
    """What the page rotates through: the posts, their order and timing, and the asset version."""
    config = current_app.config
    base = float(config["FEEDAPP_SCREEN_SECONDS"])
    playlist = screens.screen_posts(get_session(), screen, utcnow())
    root = base_url()
    images = _images(screen)
    items = []
    for i, post in enumerate(playlist.posts):
        image = images(_photo(post))
        text = post_render.readable_text(post.text or "", post.links).strip()
        if post.repost_of_id:
            text = text.removeprefix(f"RT @{post.author_username}:").strip()
        shown, more = screens.cut_at_sentence(text, TEXT_MAX[1] if image else TEXT_MAX[0])
        items.append({
            "id": str(page_id(post)),  # a string: X ids exceed the integers JavaScript numbers hold exactly (2**53)
            "url": root + url_for("posts.show_post", post_id=page_id(post)),
            "qr": url_for("screens.show_screen_qr", token=token, post_id=page_id(post)),
            "author": post.author_name or post.author_username,
            "handle": post.author_username,
            "at": (post.original_created_at or post.created_at).isoformat(),
            "text": shown,
            "more": more,
            "lang": lang_attr(post.lang),
            "image": image,
            "video": any(m.type in ("video", "animated_gif") for m in post.media),
            "pinned": i < playlist.pinned,
            # The mark above the author: must-read posts say so, other heads of the rotation are pinned.
            "label": gettext("Must read") if getattr(post, "must_read", False) else
            gettext("Pinned") if i < playlist.pinned else "",
            "seconds": screens.seconds_for(text, base),
        })
    return {"v": asset_version(), "refresh": float(config["FEEDAPP_SCREEN_REFRESH"]), "posts": items,
            "order": playlist.order}
