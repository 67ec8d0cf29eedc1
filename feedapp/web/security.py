"""Security headers on every response, CSRF protection on every form, and no shared copy of a reader's page."""

from __future__ import annotations

import re
from urllib.parse import unquote_to_bytes, urlsplit

from flask import Flask, Response, abort, current_app, g, request
from flask_babel import gettext
from flask_wtf.csrf import CSRFProtect

from feedapp.media import X_MEDIA_HOSTS

csrf = CSRFProtect()

# Pages name X's image hosts only with FEEDAPP_MEDIA_PROXY off.
X_IMAGE_SOURCES = " ".join(f"https://{host}" for host in X_MEDIA_HOSTS)


def content_security_policy(media_proxy: bool, frame_ancestors: str = "'none'") -> str:
    """The pages' CSP: no inline script or style; images only from the sources the pages name in this mode.

    frame_ancestors: who may frame the response ('none': nobody; only break-room screens allow it).
    """
    return "; ".join((
        "default-src 'self'",
        # With the media proxy on, every avatar, photo and video poster is our own /media/ URL.
        "img-src 'self'" if media_proxy else f"img-src 'self' {X_IMAGE_SOURCES}",
        # Videos are never proxied: <video><source src> names video.twimg.com in both modes (preload=none,
        # so nothing is fetched until the reader presses play).
        "media-src https://video.twimg.com",
        "script-src 'self'",
        "style-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        f"frame-ancestors {frame_ancestors}",
    ))


def init_app(app: Flask) -> None:
    """Turn on CSRF checks, the form encoding check and the headers below."""
    # Once per app, not per request: the policy follows FEEDAPP_MEDIA_PROXY, read at start.
    app.extensions["feedapp.csp"] = content_security_policy(app.config["FEEDAPP_MEDIA_PROXY"])
    app.extensions["feedapp.csp_framed"] = content_security_policy(
        app.config["FEEDAPP_MEDIA_PROXY"], _frame_ancestors(app.config["FEEDAPP_SCREEN_FRAME_ANCESTORS"]))
    app.before_request(_refuse_bad_encoding)
    csrf.init_app(app)
    app.after_request(_headers)
    app.after_request(_private_for_signed_in)
    app.after_request(_relative_routing_redirect)


def _frame_ancestors(value: str) -> str:
    """FEEDAPP_SCREEN_FRAME_ANCESTORS checked: one CSP source list (no ";" or "," that would start another directive or policy)."""
    value = " ".join(str(value or "").split())
    if not value or re.search(r"[;,\x00-\x1f\x7f]", value):
        raise RuntimeError(f"FEEDAPP_SCREEN_FRAME_ANCESTORS={value!r} is not valid: give a CSP source list such as "
                           "* or 'self' https://signage.example.com")
    return value


def allow_framing() -> None:
    """This response alone may be framed (a break-room screen in a signage player), by FEEDAPP_SCREEN_FRAME_ANCESTORS.

    Its URL holds a secret, so it also sends no Referer anywhere.
    """
    g.allow_framing = True


def _refuse_bad_encoding():
    # Werkzeug keeps undecodable %-escapes of a urlencoded form as literal text; refuse them
    # outright rather than store or compare mangled input. (Multipart fields decode to U+FFFD,
    # which the forms' plain_text validator refuses.)
    if request.method == "POST" and request.mimetype == "application/x-www-form-urlencoded":
        body = request.get_data(cache=True)
        try:
            unquote_to_bytes(body.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            abort(400, description=gettext("Use plain text only."))


HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",
}


# RFC 6797: browsers that once saw the site over https never use plain http for it again (a year).
# Without includeSubDomains: other hosts of the company's domain are not ours to decide for.
HSTS = "max-age=31536000"


FRAMEABLE_HEADERS = {**{k: v for k, v in HEADERS.items() if k != "X-Frame-Options"}, "Referrer-Policy": "no-referrer"}


def _headers(response: Response) -> Response:
    # X-Frame-Options has no allow-list: a frameable response leaves it out and says who may frame it
    # in CSP frame-ancestors, which browsers obey over X-Frame-Options anyway (CSP Level 2).
    framed = g.get("allow_framing", False)
    response.headers.update(FRAMEABLE_HEADERS if framed else HEADERS)
    # setdefault: the service worker brings its own.
    response.headers.setdefault("Content-Security-Policy",
                                current_app.extensions["feedapp.csp_framed" if framed else "feedapp.csp"])
    if current_app.config["FEEDAPP_SECURE_COOKIES"]:
        response.headers["Strict-Transport-Security"] = HSTS
    return response


def _private_for_signed_in(response: Response) -> Response:
    """A response rendered for a signed-in reader is theirs alone, whatever the view said.

    Flask-Login keeps the reader it loaded in g._login_user: a view or template that looked
    at current_user and found someone signed in made a body that may name them (the nav, the
    office, staff-only posts). Unless the view already chose private or no-store, such a
    response gets `private, no-cache` (RFC 9111 §5.2.2.7: no shared cache may store it) and
    varies on the cookie that chose the reader.
    """
    reader = g.get("_login_user")
    if reader is None or not reader.is_authenticated:
        return response
    cache = response.cache_control
    if not (cache.private or cache.no_store):
        response.headers["Cache-Control"] = "private, no-cache"
    response.vary.add("Cookie")
    return response


def _relative_routing_redirect(response: Response) -> Response:
    """Werkzeug's routing redirects (`//x` to `/x`, a missing trailing slash) as a path, never on the request's Host.

    Werkzeug builds their Location from the Host header, which anyone can send: a shared cache
    could then hand `Location: http://evil.example/…` to everyone. A relative Location
    (RFC 9110 §10.2.2 allows any URI reference) keeps the reader on the host they asked.
    """
    if response.status_code == 308 and request.routing_exception is not None:
        location = urlsplit(response.headers.get("Location", ""))
        response.headers["Location"] = location.path + (f"?{location.query}" if location.query else "")
    return response
