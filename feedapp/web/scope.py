"""Which posts a request is about: the office, the cursor, the absolute base URL."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import abort, current_app, request
from flask_babel import gettext

from feedapp.config import public_base_url

from .state import OfficeInfo, content_state

OFFICE_COOKIE = "office"
MAX_ID = 2**63 - 1
MAX_ID_DIGITS = len(str(MAX_ID))


def get_office_or_404(slug: str) -> OfficeInfo:
    """The office named by slug, or 404."""
    office = content_state().by_slug.get(slug)
    if office is None:
        abort(404, description=gettext("There is no office called “%(slug)s”.", slug=slug))
    return office


def chosen_office() -> OfficeInfo | None:
    """The office the reader picked (cookie), if it still exists."""
    return content_state().by_slug.get(request.cookies.get(OFFICE_COOKIE, ""))


def cursor() -> int | None:
    """The keyset cursor `?before=ID`, or 400 when it is not a post id."""
    raw = request.args.get("before")
    if raw is None:
        return None
    # ASCII digits only: str.isdigit() also accepts "²" or "٣", which int() refuses or reads as another number.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= MAX_ID_DIGITS) or not 0 < int(raw) <= MAX_ID:
        abort(400, description=gettext("“before” must be the id of a post."))
    return int(raw)


def base_url() -> str:
    """The site's origin (scheme://host[:port]) for absolute URLs: base_url() + url_for(...).

    From FEEDAPP_BASE_URL or the first of FEEDAPP_TRUSTED_HOSTS (config.public_base_url), never
    from request headers; only debug and tests, which have neither, use the request's own host.
    url_for adds the script root (the path of FEEDAPP_BASE_URL, pinned by feedapp.web.proxy).
    """
    configured = public_base_url(current_app.config)
    if configured:
        parts = urlsplit(configured)
        return f"{parts.scheme}://{parts.netloc}"
    return f"{request.scheme}://{request.host}"
