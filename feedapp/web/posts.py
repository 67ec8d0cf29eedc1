"""Placeholder for the /posts/ID page (the i9-pages branch builds it): here so feeds can link to it."""

from __future__ import annotations

from flask import Blueprint, abort

bp = Blueprint("posts", __name__)


@bp.get("/posts/<int:post_id>")
def show_post(post_id: int):
    """One post with its thread (placeholder: 404 until the page lands)."""
    abort(404)
