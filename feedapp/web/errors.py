"""Error pages: JSON `{"error", "message"}` for API clients, HTML for people."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException, InternalServerError

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    """Answer every HTTP error in the client's format."""
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)


def _wants_json() -> bool:
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json" or request.path.endswith(".json")


def _http_error(exc: HTTPException):
    message = exc.description or ""
    if isinstance(exc, CSRFError):
        message = "This form has expired or did not come from this site. Go back, reload the page and try again."
    if _wants_json():
        response = jsonify(error=exc.name, message=message)
    else:
        response = render_template("error.html", code=exc.code, name=exc.name, message=message)
    return response, exc.code, {"Cache-Control": "no-store"}


def _unexpected(exc: Exception):
    log.exception("unhandled error path=%s", request.path)
    return _http_error(InternalServerError(description="Something went wrong on our side. Please try again."))
