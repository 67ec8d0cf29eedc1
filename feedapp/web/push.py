"""Web Push for readers: the VAPID public key and the browser's subscription (subscribe, unsubscribe)."""

from __future__ import annotations

import logging

from flask import Blueprint, abort, current_app, jsonify, request, session
from flask_login import current_user
from flask_wtf.csrf import generate_csrf, validate_csrf
from wtforms import ValidationError

from feedapp.db import get_session
from feedapp.push.keys import PushSettings
from feedapp.push.subscriptions import (
    SubscriptionError,
    SubscriptionInfo,
    parse_subscription,
    remove_subscription,
    save_subscription,
)
from feedapp.throttle import Limit

from .limits import client_address, throttle
from .scope import base_url, chosen_office
from .security import csrf
from .state import content_state

bp = Blueprint("push", __name__, url_prefix="/push")
log = logging.getLogger(__name__)


def push_settings() -> PushSettings:
    """This app's push settings (feedapp.push.keys.PushSettings, read once by create_app)."""
    return current_app.extensions["feedapp.push"]


def json_error(code: int, error: str, message: str):
    """Stop the request with the house JSON error body (these URLs are only ever called by scripts)."""
    response = jsonify(error=error, message=message)
    response.status_code = code
    response.headers["Cache-Control"] = "no-store"
    abort(response)


def push_on_or_404() -> PushSettings:
    """The settings when push is on; otherwise a 404 whose message says why it is off."""
    settings = push_settings()
    if not settings.enabled:
        json_error(404, "Push off", settings.off_reason)
    return settings


@bp.app_template_global()
def push_enabled() -> bool:
    """Whether pages offer the notifications button (templates/_push.html): push is on for this app."""
    return push_settings().enabled


@bp.app_template_global()
def push_off_reason() -> str | None:
    """Why push is off (an operator's message, in English), or None when it is on."""
    return push_settings().off_reason


# Session key: the next /account page tells static/push.js to file this browser's subscription again.
REFILE_KEY = "push_refile"


def refile_on_next_page() -> None:
    """The server just dropped this person's staff subscriptions, this browser's among them (a new password):
    have the next /account page send this browser's again. Kept in the session: per browser, never in a
    shared page."""
    session[REFILE_KEY] = True


def take_refile() -> bool:
    """Whether this page should have push.js file the browser's subscription again (once: the flag goes)."""
    return bool(session.pop(REFILE_KEY, False))


@bp.get("/key")
def show_key():
    """The VAPID public key for pushManager.subscribe({applicationServerKey}) (RFC 8292 §3.2: base64url).

    A signed-in reader also gets `csrfToken`, to send as X-CSRFToken with the subscription. Pages cannot carry
    it: they are render-cached per person (shared by all their browsers) while a token belongs to one browser's
    session, and public pages are shared by everyone.
    """
    settings = push_on_or_404()
    body = {"publicKey": settings.keys.public_key}
    if current_user.is_authenticated:
        body["csrfToken"] = generate_csrf()
    response = jsonify(body)
    response.headers["Cache-Control"] = "no-store"  # asked once per opt-in; never a token from a cache
    return response


# Subscribing is cheap for us but each row is work for the worker at every must-read: a client (an address,
# or a whole office behind one NAT) may (re)subscribe this often.
SUBSCRIBE_LIMIT = Limit("push-subscribe-client", 120, 10 * 60, failures_only=False)


@bp.post("/subscriptions")
@csrf.exempt  # checked in _subscription_request: the token for staff, the JSON type and Origin for everyone
def add_subscription():
    """Subscribe this browser: company-wide news plus the reader's office; staff-only too when signed in."""
    settings = push_on_or_404()
    info = _subscription_request(settings)
    attempt = throttle().attempt([(SUBSCRIBE_LIMIT, client_address())])
    if not attempt.allowed:
        response = jsonify(error="Too many requests", message="Too many subscriptions from this address; try later.")
        response.status_code, response.headers["Retry-After"] = 429, str(attempt.retry_after)
        abort(response)
    office = None
    if current_user.is_authenticated:
        office = content_state().by_id.get(current_user.office_id)
    office = office or chosen_office()
    row = _save(info, office.id if office else None, current_user.id if current_user.is_authenticated else None)
    log.info("push subscribed id=%s office=%s staff=%s", row.id, office.slug if office else "-", row.staff)
    response = jsonify(office=office.slug if office else None, staff=row.staff)
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.delete("/subscriptions")
@csrf.exempt  # as above
def remove_subscription_route():
    """Unsubscribe this browser (the same JSON: the endpoint with its auth secret)."""
    info = _subscription_request(push_settings())
    db = get_session()
    removed = remove_subscription(db, info)
    db.commit()
    response = jsonify(removed=removed)
    response.headers["Cache-Control"] = "no-store"
    return response


def _subscription_request(settings: PushSettings) -> SubscriptionInfo:
    """The checked subscription in the request body, after the cross-site checks; else a JSON 400 or 403.

    Cross-site forgery: a body of type application/json cannot be sent from another site without a CORS
    preflight, which this site never grants (Fetch standard, "CORS-safelisted request-header"); a browser's
    Origin, when sent, must be ours, and so must Fetch metadata. A signed-in reader's subscription also needs
    a CSRF token (X-CSRFToken, as /push/key gives it), since it may carry staff-only news. Anonymous readers
    need none: they have no session to forge, and a token would give every reader one.
    """
    if request.mimetype != "application/json":
        json_error(415, "Unsupported Media Type", "Send the subscription as application/json.")
    # The site's own origin: the public address, or the host this request came to (checked against
    # FEEDAPP_TRUSTED_HOSTS before routing, when that is set).
    ours = {base_url().lower(), f"{request.scheme}://{request.host}".lower()}
    origin = request.headers.get("Origin")
    if (origin is not None and origin.rstrip("/").lower() not in ours) or \
            request.headers.get("Sec-Fetch-Site") not in (None, "same-origin"):
        json_error(403, "Forbidden", "This request did not come from this site.")
    if current_user.is_authenticated:
        try:
            validate_csrf(request.headers.get("X-CSRFToken"))
        except ValidationError:
            json_error(400, "CSRF", "The page has expired or did not come from this site: reload it and try again.")
    try:
        body = request.get_json(silent=True)
    except RecursionError:  # "[[[[…" nested past Python's limit: not a ValueError, so silent=True lets it through
        body = None
    try:
        return parse_subscription(body, settings.extra_hosts)
    except SubscriptionError as exc:
        json_error(400, "Bad subscription", str(exc))


def _save(info: SubscriptionInfo, office_id: int | None, user_id: int | None):
    db = get_session()
    try:
        row = save_subscription(db, info, office_id, user_id)
    except SubscriptionError as exc:
        json_error(409, "Conflict", str(exc))
    db.commit()
    return row
