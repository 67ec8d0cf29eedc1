"""`POST /posts/ID/ack`: a signed-in staff member's "Got it" for a must-read post (feedapp.mustread)."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, request, url_for
from flask_babel import gettext
from flask_login import current_user

from feedapp import mustread
from feedapp.db import get_session
from feedapp.moderation import ModerationError

from .auth import safe_next

bp = Blueprint("acks", __name__)


@bp.post("/posts/<xid:post_id>/ack")
def acknowledge_post(post_id: int):
    """Record "got it" once per person, then back (303) to the page the button was on.

    CSRF-checked by CSRFProtect before this runs. Anonymous readers go to the sign-in page, which
    brings them back to the post; a post that is not an active must-read of this person's audience
    (unknown, ended, hidden, another office's) is a 404, the same answer for each.
    """
    page = url_for("posts.show_post", post_id=post_id)
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login", next=page), code=303)
    session = get_session()
    try:
        new = mustread.acknowledge(session, current_user, post_id)
    except ModerationError:
        session.rollback()
        abort(404)
    session.commit()
    flash(gettext("Thanks: marked as read.") if new else gettext("You had already confirmed this one."))
    target = request.form.get("next")
    return redirect(safe_next(target) if target else page, code=303)
