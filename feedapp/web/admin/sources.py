"""/admin/sources: followed X accounts, their health and the X API spend; adding one queues it for the poller.

Editors of the whole company see and change every source; an office editor sees
and changes its office's only (the domain functions in feedapp.manage.sources
check it again for every object). The web app never calls X: "add" and "check
now" leave a SourceRequest that the poller serves within seconds.
"""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext, lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, SelectField, TextAreaField
from wtforms.validators import DataRequired, Length

from feedapp import source_health
from feedapp.db import get_session
from feedapp.ingest.sources import SourceFlags, SourceInputError
from feedapp.ingest.stream_status import stream_view
from feedapp.manage import sources as manage
from feedapp.models import Office, Source

from ..forms import REQUIRED, ActionForm, plain_text
from . import actor, bp


def plain_lines(_form, field) -> None:
    """plain_text for a textarea: line breaks allowed."""
    plain_text(_form, type("F", (), {"data": (field.data or "").replace("\r", "").replace("\n", " ")})())


class _Settings(FlaskForm):
    office = SelectField(_l("Where its posts show"), choices=[], validate_choice=True)
    staff_only = BooleanField(_l("Staff only (signed-in staff see its posts; public feeds do not)"))
    review = BooleanField(_l("Review before publishing (each new post waits for an editor)"))
    no_replies = BooleanField(_l("Leave out replies to other accounts (its own threads stay)"))
    no_reposts = BooleanField(_l("Leave out reposts (never read from X, so never billed)"))

    def flags(self) -> SourceFlags:
        return SourceFlags(staff_only=self.staff_only.data, review=self.review.data,
                           no_replies=self.no_replies.data, no_reposts=self.no_reposts.data)


class AddSourcesForm(_Settings):
    usernames = TextAreaField(_l("X accounts"), validators=[
        DataRequired(REQUIRED), Length(max=5000, message=_l("Use at most %(max)d characters.")), plain_lines])


class SourceForm(_Settings):
    """A followed source's settings."""


def _scope() -> set[int | None] | None:
    """The offices whose sources this editor sees (None: all)."""
    me = actor()
    return {me.office_id} if me.office_only else None


def _office_choices() -> list[tuple[str, str]]:
    """Where this editor may put a source: an office editor, its office only."""
    me = actor()
    offices = get_session().scalars(select(Office).order_by(Office.name)).all()
    choices = [] if me.office_only else [("", gettext("Company-wide"))]
    return choices + [(o.slug, o.name) for o in offices if me.may_edit(o.id)]


def _add_form() -> AddSourcesForm:
    form = AddSourcesForm()
    form.office.choices = _office_choices()
    return form


def _get_source_or_404(source_id: int) -> Source:
    """A source this editor may change (403 for another office's)."""
    source = get_session().get(Source, source_id)
    if source is None:
        abort(404, description=gettext("There is no such source."))
    actor().check(source.office_id)
    return source


@bp.get("/sources")
def list_sources():
    """Every source this editor may change, one health line each, the X API spend above, and a form to add more."""
    return _render_list(_add_form())


@bp.post("/sources")
def add_sources():
    """Queue accounts for the poller to look up and follow."""
    form = _add_form()
    if not form.validate_on_submit():
        return _render_list(form), 400
    names, bad = manage.split_usernames(form.usernames.data)
    if bad:
        form.usernames.errors.append(gettext("Not X usernames or profile links: %(names)s", names=", ".join(bad)))
        return _render_list(form), 400
    db = get_session()
    try:
        requests = manage.queue_add(actor(), db, names, form.office.data or None, form.flags())
    except SourceInputError as exc:
        form.usernames.errors.append(str(exc))
        return _render_list(form), 400
    db.commit()
    flash(gettext("%(count)d account(s) queued: the poller looks them up within seconds.", count=len(requests)))
    return redirect(url_for("admin.list_sources"), code=303)


@bp.get("/sources/<int:source_id>")
def show_source(source_id: int):
    """One source: its settings, pause, check now, remove."""
    source = _get_source_or_404(source_id)
    return _render_source(source, _source_form(source))


@bp.post("/sources/<int:source_id>")
def change_source(source_id: int):
    """Save a source's office and settings."""
    source = _get_source_or_404(source_id)
    form = _source_form(source, from_request=True)
    if not form.validate_on_submit():
        return _render_source(source, form), 400
    db = get_session()
    try:
        manage.change_source(actor(), db, source, form.office.data or None, form.flags())
    except SourceInputError as exc:
        form.office.errors.append(str(exc))
        return _render_source(source, form), 400
    db.commit()
    flash(gettext("Settings of @%(username)s saved.", username=source.username))
    return redirect(url_for("admin.show_source", source_id=source.id), code=303)


@bp.post("/sources/<int:source_id>/pause")
def pause_source(source_id: int):
    """Stop polling a source (its posts stay)."""
    return _set_paused(source_id, True)


@bp.post("/sources/<int:source_id>/resume")
def resume_source(source_id: int):
    """Poll a paused source again, from the next cycle."""
    return _set_paused(source_id, False)


@bp.post("/sources/<int:source_id>/check")
def check_source(source_id: int):
    """Ask the poller to poll a source now."""
    source = _get_source_or_404(source_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    db = get_session()
    manage.queue_check(actor(), db, source)
    db.commit()
    flash(gettext("Check of @%(username)s queued.", username=source.username))
    return redirect(url_for("admin.list_sources"), code=303)


@bp.get("/sources/<int:source_id>/remove")
def confirm_remove_source(source_id: int):
    """The confirm step: how many stored posts go with the source."""
    source = _get_source_or_404(source_id)
    return render_template("admin/source_remove.html", source=source, action=ActionForm(),
                           posts=manage.stored_post_count(get_session(), source.id))


@bp.post("/sources/<int:source_id>/remove")
def remove_source(source_id: int):
    """Stop following the account and delete its stored posts."""
    source = _get_source_or_404(source_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    db = get_session()
    count = manage.remove_source(actor(), db, source)
    db.commit()
    flash(gettext("@%(username)s removed with its %(count)d stored posts.", username=source.username, count=count))
    return redirect(url_for("admin.list_sources"), code=303)


def _set_paused(source_id: int, paused: bool):
    source = _get_source_or_404(source_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    db = get_session()
    manage.set_paused(actor(), db, source, paused)
    db.commit()
    if paused:
        flash(gettext("@%(username)s is paused: not polled until you resume it.", username=source.username))
    else:
        flash(gettext("@%(username)s is polled again.", username=source.username))
    return redirect(url_for("admin.show_source", source_id=source.id), code=303)


def _source_form(source: Source, from_request: bool = False) -> SourceForm:
    if from_request:
        form = SourceForm()
    else:
        form = SourceForm(office=source.office.slug if source.office else "", **{
            name: getattr(source, name) for name in ("staff_only", "review", "no_replies", "no_reposts")})
    form.office.choices = _office_choices()
    return form


def _render_list(form: AddSourcesForm):
    db = get_session()
    scope = _scope()
    config = current_app.config
    lines = source_health.source_health(db, scope)
    return render_template(
        "admin/sources.html", form=form, lines=lines, flagged=[h for h in lines if h.failing_long],
        spend=source_health.spend(db, config["FEEDAPP_X_PRICE_POST_READ"], config["FEEDAPP_X_PRICE_USER_READ"]),
        requests=source_health.recent_requests(db, scope),
        stream=stream_view(db, config["FEEDAPP_STREAM"], bool(config["FEEDAPP_X_BEARER_TOKEN"]),
                           int(config["FEEDAPP_POLL_INTERVAL"])))


def _render_source(source: Source, form: SourceForm):
    return render_template("admin/source.html", source=source, form=form, action=ActionForm(),
                           posts=manage.stored_post_count(get_session(), source.id))
