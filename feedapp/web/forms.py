"""Forms (Flask-WTF: CSRF token on every one) with their limits and messages."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, HiddenField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional, ValidationError

from feedapp.accounts import PASSWORD_MAX, PASSWORD_MIN


def plain_text(_form, field) -> None:
    """Refuse text that did not arrive as valid UTF-8 (the decoder put U+FFFD in) or holds controls."""
    value = field.data or ""
    if "\ufffd" in value or any(ord(c) < 32 and c not in "\t" for c in value):
        raise ValidationError("Use plain text only.")


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(max=50), plain_text])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=PASSWORD_MAX), plain_text])
    remember = BooleanField("Keep me signed in on this phone", default=True)
    next = HiddenField(validators=[Optional(), Length(max=500)])


class SetPasswordForm(FlaskForm):
    password = PasswordField("New password", validators=[
        DataRequired(), Length(min=PASSWORD_MIN, max=PASSWORD_MAX), plain_text])
    confirm = PasswordField("New password again", validators=[
        DataRequired(), EqualTo("password", message="The two passwords differ.")])


class ChangePasswordForm(SetPasswordForm):
    current = PasswordField("Current password", validators=[DataRequired(), Length(max=PASSWORD_MAX), plain_text])


class ActionForm(FlaskForm):
    """A button that only needs its CSRF token."""


class UserForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), Length(min=2, max=50), plain_text])
    display_name = StringField("Name", validators=[Optional(), Length(max=100), plain_text])
    office = SelectField("Office", choices=[], validate_choice=True)
    is_admin = BooleanField("Administrator")


class OfficeForm(FlaskForm):
    office = SelectField("Office", choices=[], validate_choice=True)
