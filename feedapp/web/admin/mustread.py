"""/admin/must-read: must-read posts, how far each reached (groups of 5 or more only), and the mark/end actions.

Thin over feedapp.mustread, which checks the role and office of the post: a form edited to name
another office's post is refused there (403). Marking only writes the row; the worker sends the push.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField
from wtforms.validators import Optional

from feedapp import mustread
from feedapp.db import get_session
from feedapp.moderation import ModerationError
from feedapp.models import utcnow

from ..forms import ActionForm
from ..state import content_state
from . import actor, area, bp
from .posts import STATES


class MustReadForm(FlaskForm):
    until = DateField(_l("Until (optional)"), validators=[Optional()])


@bp.get("/must-read")
def list_must_reads():
    """Active then ended must-reads in the editor's scope: who marked them, the push, the reminder, the reach."""
    session = get_session()
    rows = mustread.must_read_list(session, actor())
    counts = {mr.post_id: mustread.ack_counts(session, mr.post_id) for mr, _ in rows}
    return render_template("admin/must_read.html", rows=rows, counts=counts, action=ActionForm(),
                           offices=content_state().by_id, now=utcnow(), is_active=mustread.is_active)


@bp.post("/posts/<int:post_id>/must-read")
def mark_must_read(post_id: int):
    """Make a post must-read for its source's audience, optionally until a date (the end of that day, UTC)."""
    form = MustReadForm()
    if not form.validate_on_submit() or (form.until.data and form.until.data >= date.max):
        abort(400, description=gettext("Choose a date such as 2026-12-31, or none."))
    ends_at = None
    if form.until.data:
        ends_at = datetime.combine(form.until.data + timedelta(days=1), time(0), timezone.utc)
    _checked(mustread.mark, post_id, ends_at, remind_hours=current_app.config["FEEDAPP_MUST_READ_REMIND"])
    flash(gettext("Marked must-read. Its push goes out from the worker shortly."))
    return _back()


@bp.post("/posts/<int:post_id>/end-must-read")
def end_must_read(post_id: int):
    """Take a post's must-read off."""
    if not ActionForm().validate_on_submit():
        abort(400, description=gettext("The form expired; reload the page and try again."))
    _checked(mustread.end, post_id)
    flash(gettext("Must-read ended."))
    return _back()


def _checked(action, post_id: int, *args, **kwargs) -> None:
    """Run it as the signed-in editor and commit; an impossible one is a 400 with its reason (404: no such post)."""
    session = get_session()
    try:
        action(session, actor(), post_id, *args, **kwargs)
    except ModerationError as exc:
        session.rollback()
        if exc.code == "unknown":
            abort(404)
        abort(400, description={
            "unpublished": gettext("Publish the post before marking it must-read."),
            "past": gettext("Choose an end date in the future."),
            "already": gettext("That post is already must-read: end it first to announce it again."),
        }.get(exc.code) or gettext("That post is not must-read."))
    session.commit()


def _back():
    """Back to the list the action came from (only our own lists: never a URL from the form)."""
    if request.form.get("back") == "must-read":
        return redirect(url_for("admin.list_must_reads"), code=303)
    state = request.form.get("state", "all")
    return redirect(url_for("admin.list_posts", state=state if state in STATES else "all"), code=303)


area("list_must_reads", _l("Must read"))
