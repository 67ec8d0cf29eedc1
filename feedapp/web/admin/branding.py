"""/admin/branding: the site's name, logo and theme colour, for administrators only.

Thin over feedapp.manage.branding (checks, re-encoding, audit, the SITE bump); every form CSRF-protected.
"""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext, lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from sqlalchemy import select
from werkzeug.exceptions import RequestEntityTooLarge
from wtforms import BooleanField, StringField
from wtforms.validators import DataRequired, Length, Optional

from feedapp.db import get_session
from feedapp.manage import branding
from feedapp.models import AuditEvent

from ..errors import _http_error as http_error  # the app's own error page, for the 413 of others
from ..forms import plain_text, translate
from ..state import content_state
from . import actor, admins_only, bp

# The upload's request may be a little larger than the logo: the multipart framing and the CSRF field.
# Past the limit itself feedapp.manage.branding answers with the file's size; past this, the 413 below.
UPLOAD_LIMIT = branding.LOGO_MAX_BYTES + 256 * 1024
BRANDING_ACTIONS = ("set_site_name", "set_theme_color", "set_logo", "remove_logo")


class NamesForm(FlaskForm):
    name = StringField(_l("Site name"), validators=[
        Optional(), Length(max=branding.NAME_MAX, message=_l("Use at most %(max)d characters.")), plain_text])
    short_name = StringField(_l("Short name (under the home screen icon)"), validators=[
        Optional(), Length(max=branding.SHORT_NAME_MAX, message=_l("Use at most %(max)d characters.")), plain_text])


class ThemeForm(FlaskForm):
    colour = StringField(_l("Theme colour"), validators=[Optional(), Length(max=20), plain_text])


class LogoForm(FlaskForm):
    logo = FileField(_l("Logo (PNG or JPEG, at most 2 MB)"))


class RemoveLogoForm(FlaskForm):
    confirm = BooleanField(_l("Yes, remove the logo: the header shows the initials again and the app icons go back "
                              "to the standard ones."), validators=[DataRequired(_l("Tick the box to confirm."))])


@bp.url_value_preprocessor
def _upload_limit(endpoint, values):
    # Before the CSRF check reads the form: the console's other forms keep the app's small MAX_CONTENT_LENGTH.
    if endpoint == "admin.upload_logo":
        request.max_content_length = UPLOAD_LIMIT


@bp.get("/branding")
@admins_only
def show_branding():
    """The branding forms with the current values and the logo's icons."""
    return _render()


@bp.post("/branding/names")
@admins_only
def set_names():
    """Set the site's name and short name (empty: the defaults)."""
    form = NamesForm()
    if not form.validate_on_submit():
        return _render(names=form), 400
    db = get_session()
    try:
        branding.set_names(db, actor(), form.name.data or "", form.short_name.data or "")
    except branding.BrandingError as exc:
        form.name.errors.append(translate(exc))
        return _render(names=form), 400
    db.commit()
    flash(gettext("The site's name is saved."))
    return redirect(url_for("admin.show_branding"), code=303)


@bp.post("/branding/theme")
@admins_only
def set_theme():
    """Set the theme colour, refused when text on it would not meet WCAG AA contrast."""
    form = ThemeForm()
    if not form.validate_on_submit():
        return _render(theme=form), 400
    db = get_session()
    try:
        colour = branding.set_theme(db, actor(), form.colour.data or "")
    except branding.BrandingError as exc:
        form.colour.errors.append(translate(exc))
        return _render(theme=form), 400
    db.commit()
    if colour:
        flash(gettext("The theme colour is now %(colour)s.", colour=colour))
    else:
        flash(gettext("The theme colour is back to the standard one."))
    return redirect(url_for("admin.show_branding"), code=303)


@bp.post("/branding/logo")
@admins_only
def upload_logo():
    """Take a PNG or JPEG logo: checked, re-encoded, and made into the app's icons."""
    form = LogoForm()
    if not form.validate_on_submit():
        return _render(logo=form), 400
    upload = form.logo.data
    if not upload or not upload.filename:
        form.logo.errors.append(gettext("Choose a PNG or JPEG file."))
        return _render(logo=form), 400
    data = upload.read(branding.LOGO_MAX_BYTES + 1)  # one byte past the limit is enough to refuse it
    db = get_session()
    try:
        branding.set_logo(db, actor(), data)
    except branding.BrandingError as exc:
        form.logo.errors.append(translate(exc))
        return _render(logo=form), 400
    db.commit()
    flash(gettext("The logo is saved; the header and the app icons use it now."))
    return redirect(url_for("admin.show_branding"), code=303)


@bp.post("/branding/logo/remove")
@admins_only
def remove_logo():
    """Remove the logo (after the confirm box): initials and the standard icons come back."""
    form = RemoveLogoForm()
    if not form.validate_on_submit():
        return _render(remove=form), 400
    db = get_session()
    if branding.remove_logo(db, actor()):
        db.commit()
        flash(gettext("The logo is removed."))
    else:
        flash(gettext("There was no logo to remove."))
    return redirect(url_for("admin.show_branding"), code=303)


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(exc):
    # Raised by the CSRF check, before the console's guards ran: only an admin gets the branding page back.
    if request.endpoint != "admin.upload_logo" or not (current_user.is_authenticated and current_user.is_admin):
        return http_error(exc)
    form = LogoForm(formdata=None)
    form.logo.errors = [gettext("That file is larger than %(limit)d MB, the most a logo may be.",
                                limit=branding.LOGO_MAX_BYTES // 1024 // 1024)]
    return _render(logo=form), 413


def _render(names: NamesForm | None = None, theme: ThemeForm | None = None, logo: LogoForm | None = None,
            remove: RemoveLogoForm | None = None):
    current = content_state().branding
    names = names or NamesForm(formdata=None, name=current.name or "", short_name=current.short_name or "")
    theme = theme or ThemeForm(formdata=None, colour=current.theme or "")
    events = get_session().scalars(select(AuditEvent).where(AuditEvent.action.in_(BRANDING_ACTIONS))
                                   .order_by(AuditEvent.id.desc()).limit(10)).all()
    return render_template("admin/branding.html", names=names, theme=theme, logo=logo or LogoForm(formdata=None),
                           remove=remove or RemoveLogoForm(formdata=None), current=current,
                           default_theme=branding.DEFAULT_THEME, events=events)
