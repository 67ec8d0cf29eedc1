"""GET /healthz: the app and its database answer."""

from __future__ import annotations

from flask import Blueprint, jsonify
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from feedapp.db import get_session

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def show_health():
    """200 with {"status": "ok"} when the database answers, else 503."""
    try:
        get_session().execute(text("SELECT 1"))
    except SQLAlchemyError as exc:
        return jsonify(status="error", database=type(exc).__name__), 503
    response = jsonify(status="ok", database="ok")
    response.headers["Cache-Control"] = "no-store"
    return response
