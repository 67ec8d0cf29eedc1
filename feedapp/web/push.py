"""Web Push for readers: the VAPID public key and the browser's subscription (subscribe, unsubscribe)."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, jsonify

from feedapp.push.keys import PushSettings

bp = Blueprint("push", __name__, url_prefix="/push")


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


@bp.get("/key")
def show_key():
    """The VAPID public key for pushManager.subscribe({applicationServerKey}) (RFC 8292 §3.2: base64url)."""
    settings = push_on_or_404()
    response = jsonify(publicKey=settings.keys.public_key)
    # The same for everyone; it changes only if the operator replaces the key file.
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response
