"""Which posts a request is about: the office, the cursor, the absolute base URL."""

from __future__ import annotations

from flask import abort, current_app, request
from flask_babel import gettext

from .state import OfficeInfo, content_state

OFFICE_COOKIE = "office"
MAX_ID = 2**63 - 1


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
    if not raw.isdigit() or not 0 < int(raw) <= MAX_ID:
        abort(400, description=gettext("“before” must be the id of a post."))
    return int(raw)


def base_url() -> str:
    """FEEDAPP_BASE_URL, or the request's own root, without the trailing slash."""
    configured = current_app.config.get("FEEDAPP_BASE_URL")
    if configured:
        return configured.rstrip("/")
    return f"{request.scheme}://{request.host}{request.script_root}"
