"""Forms (Flask-WTF: CSRF token on every one) with their limits and messages."""

from __future__ import annotations

from flask_babel import gettext, lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, PasswordField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, EqualTo, Length, Optional, ValidationError

from feedapp.accounts import PASSWORD_MAX, PASSWORD_MIN, AccountError

REQUIRED = _l("Fill this in.")


def translate(exc: AccountError) -> str:
    """An AccountError's message in the reader's language."""
    return gettext(exc.message, **exc.params)


def plain_text(_form, field) -> None:
    """Refuse text that did not arrive as valid UTF-8 (the decoder put U+FFFD in) or holds controls."""
    value = field.data or ""
    if "\ufffd" in value or any(ord(c) < 32 and c not in "\t" for c in value):
        raise ValidationError(gettext("Use plain text only."))


def _too_long(limit: int):
    return Length(max=limit, message=_l("Use at most %(max)d characters."))


class LoginForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(REQUIRED), _too_long(50), plain_text])
    password = PasswordField(_l("Password"), validators=[DataRequired(REQUIRED), _too_long(PASSWORD_MAX), plain_text])
    remember = BooleanField(_l("Keep me signed in on this phone"), default=True)
    next = HiddenField(validators=[Optional(), Length(max=500)])


class SetPasswordForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=[
        DataRequired(REQUIRED),
        Length(min=PASSWORD_MIN, max=PASSWORD_MAX, message=_l("Use %(min)d to %(max)d characters.")),
        plain_text])
    confirm = PasswordField(_l("New password again"), validators=[
        DataRequired(REQUIRED), EqualTo("password", message=_l("The two passwords differ."))])


class ChangePasswordForm(SetPasswordForm):
    current = PasswordField(_l("Current password"), validators=[
        DataRequired(REQUIRED), _too_long(PASSWORD_MAX), plain_text])


class ActionForm(FlaskForm):
    """A button that only needs its CSRF token."""


class UserForm(FlaskForm):
    username = StringField(_l("Username"), validators=[
        DataRequired(REQUIRED), Length(min=2, max=50, message=_l("Use %(min)d to %(max)d characters.")), plain_text])
    display_name = StringField(_l("Name"), validators=[Optional(), _too_long(100), plain_text])
    office = SelectField(_l("Office"), choices=[], validate_choice=True)
    role = SelectField(_l("Role"), choices=[
        SelectChoice("staff", _l("Staff: reads the feed")),
        SelectChoice("editor", _l("Editor: posts and sources (of the office above, if one is chosen)")),
        SelectChoice("admin", _l("Administrator: everything, staff accounts and branding included"))],
        default="staff", validate_choice=True)


class OfficeForm(FlaskForm):
    office = SelectField(_l("Office"), choices=[], validate_choice=True)
