"""/admin/offices: local sites. Admins and company-wide editors create and delete them; an office editor
sees its own office and may rename it or set its language and quiet hours, nothing else (checked again in
feedapp.manage.offices).
"""

from __future__ import annotations

from flask import abort, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext, lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from wtforms import SelectField, StringField, ValidationError
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, Regexp

from feedapp.db import get_session
from feedapp.manage import offices as manage
from feedapp.models import Office, Source, User
from feedapp.push.quiet import QuietHoursError, parse_hhmm, parse_time_zone

from ..forms import REQUIRED, ActionForm, plain_text
from ..i18n import LOCALES, SUPPORTED
from . import actor, bp

HHMM_INPUT = {"pattern": "([01][0-9]|2[0-3]):[0-5][0-9]", "maxlength": 5, "placeholder": "21:00", "size": 5}
LANGUAGE_CHOICES = [SelectChoice("", _l("The site's default"))] + [SelectChoice(code, name) for code, name in LOCALES]


def _time_zone(_form, field) -> None:
    try:
        parse_time_zone(field.data)
    except QuietHoursError:
        raise ValidationError(gettext("Use a time zone name such as Europe/Paris or America/New_York.")) from None


def _hhmm(_form, field) -> None:
    try:
        parse_hhmm(field.data)
    except QuietHoursError:
        raise ValidationError(gettext("Use a time such as 21:00 (24-hour clock).")) from None


class OfficeSettingsForm(FlaskForm):
    name = StringField(_l("Name readers see"), validators=[
        DataRequired(REQUIRED), Length(max=manage.NAME_MAX, message=_l("Use at most %(max)d characters.")),
        plain_text])
    language = SelectField(_l("Language of its feeds and labels"), choices=LANGUAGE_CHOICES, validate_choice=True)


class OfficeQuietForm(OfficeSettingsForm):
    """The settings only an existing office's page has: its time zone and push quiet hours."""

    time_zone = StringField(_l("Time zone"), validators=[Optional(), Length(max=64), _time_zone])
    # Text, not <input type="time">: that shows 12-hour clocks to English browsers, and HH:MM is what is stored.
    quiet_start = StringField(_l("Quiet hours start"), validators=[Optional(), _hhmm], render_kw=HHMM_INPUT)
    quiet_end = StringField(_l("Quiet hours end"), validators=[Optional(), _hhmm], render_kw=HHMM_INPUT)

    def validate(self, extra_validators=None) -> bool:
        if not super().validate(extra_validators):
            return False
        if bool(self.quiet_start.data) != bool(self.quiet_end.data):
            (self.quiet_end if self.quiet_start.data else self.quiet_start).errors.append(
                gettext("Give both the start and the end, or neither."))
            return False
        if self.quiet_start.data and self.quiet_start.data == self.quiet_end.data:
            self.quiet_end.errors.append(gettext("The quiet hours must end at another time than they start."))
            return False
        return True


class NewOfficeForm(OfficeSettingsForm):
    slug = StringField(_l("Short name in its web address"), validators=[
        DataRequired(REQUIRED), Regexp(manage.SLUG_RE.pattern, message=_l(
            "Use lower-case letters, digits and - (at most 63), starting with a letter or digit."))])


def _may_create() -> bool:
    return actor().may_edit(None)


def _get_office(office_id: int) -> Office:
    """An office this editor may change (403 for another office)."""
    office = get_session().get(Office, office_id)
    if office is None:
        abort(404, description=gettext("There is no such office."))
    actor().check(office.id)
    return office


@bp.get("/offices")
def list_offices():
    """The offices this editor may change, with what belongs to each, and a form to add one."""
    return _render_list(NewOfficeForm() if _may_create() else None)


@bp.post("/offices")
def create_office():
    """Create an office (admins and company-wide editors)."""
    actor().check(None)
    form = NewOfficeForm()
    if not form.validate_on_submit():
        return _render_list(form), 400
    db = get_session()
    try:
        office = manage.create_office(actor(), db, form.slug.data, form.name.data, form.language.data or None,
                                      languages=SUPPORTED)
    except manage.OfficeError as exc:
        form.slug.errors.append(str(exc))
        return _render_list(form), 400
    db.commit()
    flash(gettext("Office %(name)s created.", name=office.name))
    return redirect(url_for("admin.list_offices"), code=303)


@bp.get("/offices/<int:office_id>")
def show_office(office_id: int):
    """One office: name and language."""
    office = _get_office(office_id)
    return _render_office(office, OfficeQuietForm(
        name=office.name, language=office.language or "", time_zone=office.time_zone or "",
        quiet_start=office.quiet_start or "", quiet_end=office.quiet_end or ""))


@bp.post("/offices/<int:office_id>")
def change_office(office_id: int):
    """Rename an office and set its language, time zone and quiet hours."""
    office = _get_office(office_id)
    form = OfficeQuietForm()
    if not form.validate_on_submit():
        return _render_office(office, form), 400
    db = get_session()
    try:
        manage.rename_office(actor(), db, office, form.name.data)
        manage.set_office_language(actor(), db, office, form.language.data or None, languages=SUPPORTED)
        manage.set_office_quiet_hours(actor(), db, office, form.time_zone.data, form.quiet_start.data,
                                      form.quiet_end.data)
    except manage.OfficeError as exc:
        db.rollback()
        form.name.errors.append(str(exc))
        return _render_office(office, form), 400
    db.commit()
    flash(gettext("Office %(name)s saved.", name=office.name))
    return redirect(url_for("admin.show_office", office_id=office.id), code=303)


@bp.get("/offices/<int:office_id>/delete")
def confirm_delete_office(office_id: int):
    """The confirm step, or why the office cannot go yet."""
    office = _get_office(office_id)
    actor().check(None)
    return render_template("admin/office_delete.html", office=office, action=ActionForm(),
                           usage=manage.office_usage(get_session(), office.id))


@bp.post("/offices/<int:office_id>/delete")
def delete_office(office_id: int):
    """Delete an empty office."""
    office = _get_office(office_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    db = get_session()
    name = office.name
    try:
        manage.delete_office(actor(), db, office)
    except manage.OfficeError as exc:
        flash(str(exc))
        return redirect(url_for("admin.confirm_delete_office", office_id=office.id), code=303)
    db.commit()
    flash(gettext("Office %(name)s deleted.", name=name))
    return redirect(url_for("admin.list_offices"), code=303)


def _render_list(form: NewOfficeForm | None):
    db = get_session()
    me = actor()
    stmt = select(Office).order_by(Office.name)
    if me.office_only:
        stmt = stmt.where(Office.id == me.office_id)
    offices = db.scalars(stmt).all()
    sources = dict(db.execute(select(Source.office_id, func.count()).group_by(Source.office_id)).all())
    users = dict(db.execute(select(User.office_id, func.count()).group_by(User.office_id)).all())
    return render_template("admin/offices.html", offices=offices, form=form, sources=sources, users=users,
                           languages=dict(LOCALES), may_delete=_may_create())


def _render_office(office: Office, form: OfficeQuietForm):
    config = current_app.config
    return render_template("admin/office.html", office=office, form=form, may_delete=_may_create(),
                           usage=manage.office_usage(get_session(), office.id),
                           site_zone=config["FEEDAPP_TIME_ZONE"] or "UTC", site_quiet=config["FEEDAPP_QUIET_HOURS"])
