"""Security headers on every response, and CSRF protection on every form."""

from __future__ import annotations

from flask import Flask, Response
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
    """Turn on CSRF checks and the headers below."""
    csrf.init_app(app)
    app.after_request(_headers)


HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",
}


def _headers(response: Response) -> Response:
    response.headers.update(HEADERS)
    response.headers.setdefault("Content-Security-Policy", CSP)  # the service worker brings its own
    return response
