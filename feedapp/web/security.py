"""Security headers on every response, and CSRF protection on every form."""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from flask import Flask, Response, abort, request
from flask_babel import gettext
from flask_wtf.csrf import CSRFProtect

csrf = CSRFProtect()

# No inline script or style; images and video only from X's media hosts.
CSP = "; ".join((
    "default-src 'self'",
    "img-src 'self' https://pbs.twimg.com https://abs.twimg.com",
    "media-src https://video.twimg.com",
    "script-src 'self'",
    "style-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))


def init_app(app: Flask) -> None:
    """Turn on CSRF checks, the form encoding check and the headers below."""
    app.before_request(_refuse_bad_encoding)
    csrf.init_app(app)
    app.after_request(_headers)


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


def _headers(response: Response) -> Response:
    response.headers.update(HEADERS)
    response.headers.setdefault("Content-Security-Policy", CSP)  # the service worker brings its own
    return response
