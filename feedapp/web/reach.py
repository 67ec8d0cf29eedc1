"""POST /reach: the pages' anonymous view and open counts (static/feed.js sends them in batches)."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timezone

from flask import Blueprint, Response, abort, jsonify, request

from feedapp import readership
from feedapp.db import get_session
from feedapp.throttle import Limit

from .limits import anonymous_client, throttle
from .scope import MAX_ID
from .security import csrf
from .state import content_state

bp = Blueprint("reach", __name__)
log = logging.getLogger(__name__)

MAX_BODY = 4096  # two lists of 50 ids and an office slug fit several times over
# Every request counts (not only failures): one reader sends a batch every 10 posts or when leaving a page; a whole
# office behind one address (NAT) stays well under this. Past it, counts are lost, nothing else.
REACH_LIMIT = Limit("reach-client", 300, 5 * 60, failures_only=False)


@bp.post("/reach")
# No CSRF token: the request can only add one to anonymous counts, carries no session (the page sends it without
# cookies, and this view never reads one, nor sets one), and a forged one is no more than a fake reader, which
# the per-address throttle bounds. A token would also need a session, i.e. a cookie: what this must not have.
@csrf.exempt
def count_reach():
    """Add the batch's views and opens to today's counts: 204, or 400 for a malformed body, 429 when throttled."""
    attempt = throttle().attempt([(REACH_LIMIT, anonymous_client())])
    if not attempt.allowed:
        return _error(429, "Too many requests", "Too many counts from this address; try later.",
                      {"Retry-After": str(attempt.retry_after)})
    if (request.content_length or 0) > MAX_BODY:
        return _error(413, "Too large", f"At most {MAX_BODY} bytes.")
    # navigator.sendBeacon and fetch with a string body send text/plain;charset=UTF-8 (no CORS preflight);
    # application/json is accepted too, for scripts.
    if request.mimetype not in ("text/plain", "application/json"):
        return _error(415, "Unsupported Media Type", "Send JSON as text/plain or application/json.")
    raw = request.stream.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        return _error(413, "Too large", f"At most {MAX_BODY} bytes.")
    office_id, views, opens = _parse(raw)
    db = get_session()
    day = datetime.now(timezone.utc).date()
    readership.record_views(db, day, office_id, views, "view")
    readership.record_views(db, day, readership.COMPANY_PAGE, opens, "open")  # a post's page is every office's
    db.commit()
    return _empty(204)


def _parse(raw: bytes) -> tuple[int, list[int], list[int]]:
    """(office id, 0 for the company feed; view ids; open ids) from the JSON body, or a 400."""
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: "[[[[…" nested past the limit
        _abort_malformed("The body is not JSON.")
    if not isinstance(body, dict):
        _abort_malformed("Send a JSON object.")
    office = body.get("office")
    office_id = readership.COMPANY_PAGE
    if office is not None:
        info = content_state().by_slug.get(office) if isinstance(office, str) else None
        if info is None:
            _abort_malformed("Unknown office.")
        office_id = info.id
    return office_id, _ids(body.get("views")), _ids(body.get("opens"))


def _ids(value) -> list[int]:
    """Post ids from a list of digit strings (X ids exceed JavaScript's exact integers) or integers."""
    if value is None:
        return []
    if not isinstance(value, list):
        _abort_malformed("views and opens are lists of post ids.")
    ids = []
    for item in value[:readership.MAX_IDS]:
        if isinstance(item, str) and item.isascii() and item.isdigit() and len(item) <= 19:
            item = int(item)
        if isinstance(item, bool) or not isinstance(item, int) or not 0 < item <= MAX_ID:
            _abort_malformed("views and opens are lists of post ids.")
        ids.append(item)
    return ids


def _abort_malformed(message: str):
    abort(_error(400, "Bad request", message))


def _error(code: int, error: str, message: str, headers: dict | None = None) -> Response:
    response = jsonify(error=error, message=message)
    response.status_code = code
    response.headers["Cache-Control"] = "no-store"
    response.headers.update(headers or {})
    return response


def _empty(code: int) -> Response:
    response = Response(status=code)
    response.headers["Cache-Control"] = "no-store"
    return response
