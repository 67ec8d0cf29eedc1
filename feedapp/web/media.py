"""`/media/…`: avatars and photos from our own origin, so readers' phones never contact X.

A media URL is minted only by the server, for a reader it is shown to:

    /media/<kind>/<audience>/<signature>/<upstream, base64url>

kind is "avatar" or "photo" (the size it is resized to); audience says who may load it: "p"
anyone (the URL appeared on a public page or feed), "s" signed-in staff (it appeared on a page
rendered for staff), "f<user id>-<token hash prefix>" the holder of that private-feed link (RSS
readers carry no cookie), "k<screen id>-<token hash prefix>" a staff-only break-room screen (signage
players carry no cookie either; removing the screen ends its images too). The signature is an HMAC,
with the secret key, of all three, so nobody can point the route at a URL of their choosing or widen an audience (no open proxy), and the
upstream must still be on feedapp.media's allow-list of X media hosts. Anything refused, forged or
unknown gets the same 404; a media host that fails gets 502.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
from pathlib import Path

from flask import Blueprint, Flask, Response, abort, current_app, request, url_for
from flask_login import current_user

from feedapp import media
from feedapp.db import get_session
from feedapp.models import FeedToken, User
from feedapp.render import page as page_render
from feedapp.render import post as post_render

bp = Blueprint("media", __name__)
log = logging.getLogger(__name__)

YEAR = 31536000
AUDIENCE_RE = re.compile(r"^(p|s|[fk][0-9]{1,12}-[0-9a-f]{16})$")
SIGNATURE_RE = re.compile(r"^[A-Za-z0-9_-]{22}$")  # ASCII only: compare_digest refuses other text
AVATAR_SIZE_RE = re.compile(r"_(normal|bigger|mini|400x400)(\.[A-Za-z]+)$")  # X's profile image sizes


def init_app(app: Flask) -> None:
    """The disk cache under the instance folder (nothing is created until an image is asked for)."""
    app.extensions["feedapp.media"] = media.MediaCache(
        Path(app.instance_path) / "media",
        cap_bytes=app.config["FEEDAPP_MEDIA_CACHE_MB"] * 1024 * 1024,
        # Tests only (never a setting): origins of loopback servers standing in for X's media host.
        extra_origins=tuple(app.config.get("MEDIA_TEST_ORIGINS", ())),
    )


@bp.get("/media/<kind>/<audience>/<signature>/<encoded>")
def show_media(kind: str, audience: str, signature: str, encoded: str):
    """One resized image, for the audience its URL was minted for."""
    upstream = _decode(encoded)
    if (kind not in media.SIZES or not AUDIENCE_RE.match(audience) or not SIGNATURE_RE.match(signature)
            or upstream is None
            or not hmac.compare_digest(signature, sign(kind, audience, upstream))):
        abort(404)
    if not _may_see(audience):
        abort(404)  # the same answer as a forged URL: nothing says the image exists
    try:
        cached, body = _load(kind, upstream)
    except media.Refused as exc:
        log.info("media refused kind=%s reason=%s", kind, exc)
        abort(404)
    except (media.UpstreamFailed, OSError) as exc:
        log.warning("media failed kind=%s reason=%s", kind, exc)
        abort(502)
    scope = "public" if audience == "p" else "private"
    response = Response(body, mimetype=cached.content_type)
    # The URL names its content (upstream X URLs never change content): cached for good.
    response.headers["Cache-Control"] = f"{scope}, max-age={YEAR}, immutable"
    response.set_etag(cached.etag)
    if audience == "s":
        response.vary.add("Cookie")
    return response.make_conditional(request)


def _load(kind: str, upstream: str) -> tuple[media.Cached, bytes]:
    cache = current_app.extensions["feedapp.media"]
    try:
        cached = cache.get(kind, upstream)
        return cached, cached.path.read_bytes()
    except FileNotFoundError:  # evicted between the two lines (another process at its cap): once more
        cached = cache.get(kind, upstream)
        return cached, cached.path.read_bytes()


def _may_see(audience: str) -> bool:
    if audience == "p":
        return True  # never looks at current_user: the answer stays public
    if audience == "s":
        return current_user.is_authenticated
    if audience[0] == "k":
        return _screen_may_see(audience)
    user_id, _, prefix = audience[1:].partition("-")
    row = get_session().get(FeedToken, int(user_id))
    if row is None or not hmac.compare_digest(row.token_hash[:16], prefix):
        return False  # a new feed link (or none) ends the old one's images too
    user = get_session().get(User, int(user_id))
    return user is not None and user.active


def _screen_may_see(audience: str) -> bool:
    from feedapp.models import Screen

    screen_id, _, prefix = audience[1:].partition("-")
    screen = get_session().get(Screen, int(screen_id)) if int(screen_id) < 2**31 else None
    return screen is not None and hmac.compare_digest(screen.token_hash[:16], prefix)


def screen_audience(screen) -> str:
    """The audience of a staff-only screen's images: that screen, while it exists."""
    return f"k{screen.id}-{screen.token_hash[:16]}"


def sign(kind: str, audience: str, upstream: str) -> str:
    """The URL's signature: HMAC-SHA256 with the secret key, 128 bits, base64url."""
    digest = hmac.new(current_app.config["SECRET_KEY"].encode(), f"media\n{kind}\n{audience}\n{upstream}".encode(),
                      hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")


def _decode(encoded: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()
    except (binascii.Error, ValueError):
        return None


def media_path(kind: str, upstream: str, audience: str) -> str:
    """Our path for an upstream image URL, for audience."""
    encoded = base64.urlsafe_b64encode(upstream.encode()).decode().rstrip("=")
    return url_for("media.show_media", kind=kind, audience=audience,
                   signature=sign(kind, audience, upstream), encoded=encoded)


def feed_audience(user_id: int, token: str) -> str:
    """The audience of a private feed's images: that user's current feed link."""
    from feedapp.accounts import hash_secret
    return f"f{user_id}-{hash_secret(token)[:16]}"


def mapper(audience: str | None, root: str = ""):
    """A function (kind, upstream URL) → the URL readers load: ours (root + path) when the proxy is on, else X's.

    audience None means "the current page's reader": staff when signed in. The demo's bundled
    images have no other home, so they always go through the route.
    """
    on = current_app.config["FEEDAPP_MEDIA_PROXY"]

    def url(kind: str, upstream: str | None) -> str | None:
        if not upstream:
            return None
        if not media.allowed(upstream, current_app.extensions["feedapp.media"].extra_origins):
            return None  # X sends its media on its own hosts only: anything else is not shown (nor allowed by the CSP)
        if not (on or media.is_demo(upstream)):
            return upstream
        if kind == "avatar":
            upstream = AVATAR_SIZE_RE.sub(r"_200x200\2", upstream)  # X's size nearest above our 80 px
        who = audience or ("s" if current_user.is_authenticated else "p")
        return root + media_path(kind, upstream, who)

    return url


def page_photo(url: str | None) -> str | None:
    """Template helper: a photo or video poster as the page's reader loads it."""
    return mapper(None)("photo", post_render.small_photo(url))


def page_avatar(url: str | None) -> str | None:
    """Template helper: a profile image as the page's reader loads it."""
    if not post_render.safe_url(url):
        return None
    if not current_app.config["FEEDAPP_MEDIA_PROXY"] and not media.is_demo(url):
        return post_render.avatar(url)
    return mapper(None)("avatar", url)


def page_preview_image(post) -> str | None:
    """Template helper: og:image of a public post's page, absolute (link-preview bots fetch it on their own)."""
    from .scope import base_url
    return mapper("p", base_url())("photo", page_render.preview_image(post))
