"""/admin/posts: the posts editors may act on (their office's, or all), the review queue, hidden and pinned ones.

Thin over feedapp.moderation, which checks the role and office of every row it touches: a form
edited to name another office's post is refused there (403), not only hidden here.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from flask import abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload
from wtforms import DateField, SelectField, StringField
from wtforms.validators import Length, Optional

from feedapp import moderation, mustread
from feedapp.db import get_session
from feedapp.models import Pin, Post, Source, utcnow

from ..forms import ActionForm, plain_text
from ..scope import MAX_ID
from ..state import content_state
from . import actor, area, bp

PAGE = 40
STATES = ("all", "pending", "hidden", "pinned", "shout-out")


class HideForm(FlaskForm):
    reason = StringField(_l("Reason (optional, kept in the audit log)"),
                         validators=[Optional(), Length(max=moderation.REASON_MAX), plain_text])


class PinForm(FlaskForm):
    where = SelectField(_l("Pin on"), choices=[], validate_choice=True)
    until = DateField(_l("Until (optional)"), validators=[Optional()])


@bp.get("/posts")
def list_posts():
    """Recent posts in the editor's scope, newest first, filtered by state, with their actions."""
    state = request.args.get("state", "all")
    if state not in STATES:
        state = "all"
    before = request.args.get("before", type=int)
    db = get_session()
    who = actor()
    stmt = (select(Post).join(Source, Source.id == Post.source_id).where(moderation.pending_filter(who))
            .options(selectinload(Post.source)))
    stmt = {
        "pending": stmt.where(Post.pending.is_(True), Post.hidden_at.is_(None)),
        "hidden": stmt.where(Post.hidden_at.is_not(None)),
        "pinned": stmt.where(Post.id.in_(select(Pin.post_id))),
        "shout-out": stmt.where(Post.highlighted.is_(True)),
    }.get(state, stmt)
    if before is not None and 0 < before <= MAX_ID:
        stmt = stmt.where(Post.id < before)
    posts = list(db.scalars(stmt.order_by(Post.id.desc()).limit(PAGE + 1)))
    older = posts[PAGE - 1].id if len(posts) > PAGE else None
    posts = posts[:PAGE]
    pins: dict[int, list[Pin]] = {}
    for pin in db.scalars(select(Pin).where(Pin.post_id.in_([p.id for p in posts])).order_by(Pin.position)):
        pins.setdefault(pin.post_id, []).append(pin)
    waiting = db.scalar(select(func.count()).select_from(Post).join(Source, Source.id == Post.source_id)
                        .where(moderation.pending_filter(who), Post.pending.is_(True), Post.hidden_at.is_(None)))
    return render_template("admin/posts.html", posts=posts, pins=pins, state=state, states=STATES, older=older,
                           waiting=waiting, action=ActionForm(), hide_form=HideForm(),
                           pin_choices=_pin_choices, offices=content_state().by_id, now=utcnow(),
                           must_reads=mustread.rows_of(db, [p.id for p in posts]), may_edit=who.may_edit)


def _pin_choices(post: Post) -> list[tuple[str, str]]:
    """Where this editor may pin this post: the feeds it shows in (company-wide posts: the company's or an office's)."""
    who = actor()
    state = content_state()
    if post.source.office_id is not None:
        office = state.by_id.get(post.source.office_id)
        return [(office.slug, office.name)] if office and who.may_edit(office.id) else []
    choices = [("", gettext("Company feed (everyone)"))] if who.may_edit(None) else []
    return choices + [(o.slug, o.name) for o in state.offices if who.may_edit(o.id)]


def _back():
    """Back to the list the action came from (only our own list: never a URL from the form)."""
    state = request.form.get("state", "all")
    return redirect(url_for("admin.list_posts", state=state if state in STATES else "all"), code=303)


def _act(result) -> None:
    get_session().commit()
    flash(result)


def _valid_action() -> None:
    if not ActionForm().validate_on_submit():
        abort(400, description=gettext("The form expired; reload the page and try again."))


@bp.post("/posts/<int:post_id>/hide")
def hide_post(post_id: int):
    """Hide a post everywhere, with an optional reason."""
    form = HideForm()
    if not form.validate_on_submit():
        abort(400, description=" ".join(sum(form.errors.values(), [])) or None)
    _checked(moderation.hide, post_id, form.reason.data or "")
    _act(gettext("Post hidden everywhere. “Show again” puts it back."))
    return _back()


@bp.post("/posts/<int:post_id>/unhide")
def unhide_post(post_id: int):
    """Put a hidden post back."""
    _valid_action()
    _checked(moderation.unhide, post_id)
    _act(gettext("Post shown again."))
    return _back()


@bp.post("/posts/<int:post_id>/approve")
def approve_post(post_id: int):
    """Publish a post waiting for review."""
    _valid_action()
    _checked(moderation.approve, post_id)
    _act(gettext("Post published."))
    return _back()


@bp.post("/posts/<int:post_id>/pin")
def pin_post(post_id: int):
    """Pin a post on a feed, optionally until a date (the end of that day, UTC)."""
    form = PinForm()
    form.where.choices = [("", "")] + [(o.slug, o.name) for o in content_state().offices]
    # date.max has no next day to end on (OverflowError, a 500).
    if not form.validate_on_submit() or (form.until.data and form.until.data >= date.max):
        abort(400, description=gettext("Choose where to pin it, and a date such as 2026-12-31."))
    office = None
    if form.where.data:
        info = content_state().by_slug.get(form.where.data)
        office = get_session().get(moderation.Office, info.id) if info else None
    ends_at = None
    if form.until.data:
        ends_at = datetime.combine(form.until.data + timedelta(days=1), time(0), timezone.utc)
    _checked(moderation.pin, post_id, office, ends_at)
    _act(gettext("Post pinned."))
    return _back()


@bp.post("/posts/<int:post_id>/unpin")
def unpin_post(post_id: int):
    """Take every pin of a post that this editor may remove."""
    _valid_action()
    _checked(moderation.unpin, post_id, everywhere=True)
    _act(gettext("Post unpinned."))
    return _back()


@bp.post("/posts/<int:post_id>/highlight")
def highlight_post(post_id: int):
    """Turn the shout-out badge on or off."""
    _valid_action()
    on = request.form.get("on") == "1"
    _checked(moderation.highlight, post_id, on)
    _act(gettext("Shout-out badge added.") if on else gettext("Shout-out badge removed."))
    return _back()


def _checked(action, post_id: int, *args, **kwargs):
    """Run a moderation action as the signed-in editor; an impossible one is a 400 with its reason."""
    try:
        return action(get_session(), actor(), post_id, *args, **kwargs)
    except moderation.ModerationError as exc:
        get_session().rollback()
        if exc.code == "unknown":
            abort(404)
        abort(400, description=_reason(exc.code))


def _reason(code: str) -> str:
    return {
        "not_hidden": gettext("That post is not hidden."),
        "not_pending": gettext("That post is not waiting for review."),
        "not_pinned": gettext("That post is not pinned."),
        "past": gettext("Choose an end date in the future."),
        "unpublished": gettext("Publish the post before pinning it."),
    }.get(code) or gettext("An office's post shows in that office's feed only: pin it there.")


area("list_posts", _l("Posts"))
