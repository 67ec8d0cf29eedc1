"""/admin/users: staff accounts, for administrators only."""

from __future__ import annotations

from datetime import timedelta

import qrcode
import qrcode.image.svg
from flask import abort, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext
from flask_login import current_user
from markupsafe import Markup
from sqlalchemy import select

from feedapp import accounts
from feedapp.db import get_session
from feedapp.models import AuditEvent, Invite, User

from ..forms import ActionForm, OfficeForm, UserForm, translate
from ..scope import base_url
from ..state import content_state
from . import admins_only, bp


@bp.get("/users")
@admins_only
def list_users():
    """Every staff account, with a form to add one."""
    return _render_list(_user_form())


@bp.post("/users")
@admins_only
def create_user():
    """Create an account and show its invite link and QR code."""
    form = _user_form()
    if not form.validate_on_submit():
        return _render_list(form), 400
    db = get_session()
    office = content_state().by_slug.get(form.office.data)
    try:
        user = accounts.create_user(db, form.username.data, form.display_name.data,
                                    db.get(accounts.Office, office.id) if office else None, form.role.data)
    except accounts.AccountError as exc:
        form.username.errors.append(translate(exc))
        return _render_list(form), 400
    token = accounts.issue_invite(db, user, _invite_lifetime())
    accounts.audit(db, current_user.username, "create_user", user.username,
                   f"office={form.office.data or '-'} role={form.role.data}")
    db.commit()
    return _render_invite(user, token)


@bp.get("/users/<int:user_id>")
@admins_only
def show_user(user_id: int):
    """One account: office, state, invite, actions."""
    return _render_user(_get_user_or_404(user_id))


@bp.post("/users/<int:user_id>/office")
@admins_only
def set_office(user_id: int):
    """Move a user to another office (or none: company-wide only)."""
    user = _get_user_or_404(user_id)
    form = _office_form(user)
    if not form.validate_on_submit():
        return _render_user(user, form), 400
    office = content_state().by_slug.get(form.office.data)
    user.office_id = office.id if office else None
    db = get_session()
    accounts.audit(db, current_user.username, "set_office", user.username, form.office.data or "-")
    db.commit()
    if office:
        flash(gettext("%(username)s now reads %(office)s.", username=user.username, office=office.name))
    else:
        flash(gettext("%(username)s now reads company-wide posts only.", username=user.username))
    return redirect(url_for("admin.show_user", user_id=user.id), code=303)


@bp.get("/users/<int:user_id>/deactivate")
@admins_only
def confirm_deactivate_user(user_id: int):
    """The confirm step: what switching the account off ends."""
    return render_template("admin/user_deactivate.html", user=_get_user_or_404(user_id), action=ActionForm())


@bp.post("/users/<int:user_id>/deactivate")
@admins_only
def deactivate_user(user_id: int):
    """Switch an account off: every session, invite and private feed link ends now."""
    return _set_active(user_id, False)


@bp.post("/users/<int:user_id>/reactivate")
@admins_only
def reactivate_user(user_id: int):
    """Switch an account back on (it needs a new invite if it had no password)."""
    return _set_active(user_id, True)


@bp.post("/users/<int:user_id>/invite")
@admins_only
def reissue_invite(user_id: int):
    """A new invite link (the old one stops working), e.g. for a forgotten password."""
    user = _get_user_or_404(user_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    if not user.active:
        flash(gettext("Reactivate the account first."))
        return redirect(url_for("admin.show_user", user_id=user.id), code=303)
    db = get_session()
    token = accounts.issue_invite(db, user, _invite_lifetime())
    accounts.audit(db, current_user.username, "reissue_invite", user.username)
    db.commit()
    return _render_invite(user, token)


def _set_active(user_id: int, active: bool):
    user = _get_user_or_404(user_id)
    if not ActionForm().validate_on_submit():
        abort(400)
    if user.id == current_user.id and not active:
        flash(gettext("You cannot switch off your own account."))
        return redirect(url_for("admin.show_user", user_id=user.id), code=303)
    db = get_session()
    accounts.set_active(db, user, active)
    accounts.audit(db, current_user.username, "reactivate" if active else "deactivate", user.username)
    db.commit()
    if active:
        flash(gettext("%(username)s is active again.", username=user.username))
    else:
        flash(gettext("%(username)s is switched off and signed out everywhere.", username=user.username))
    return redirect(url_for("admin.show_user", user_id=user.id), code=303)


def invite_url(token: str) -> str:
    """The absolute invite URL for a token."""
    return base_url() + url_for("auth.accept_invite", token=token)


def qr_svg(data: str) -> Markup:
    """An inline SVG QR code (vector: prints sharp at any size)."""
    image = qrcode.make(data, image_factory=qrcode.image.svg.SvgPathImage, box_size=10, border=2)
    svg = image.to_string(encoding="unicode")
    return Markup(svg[svg.index("<svg"):])  # drop the XML declaration: this goes inside HTML


def _invite_lifetime() -> timedelta:
    return timedelta(days=current_app.config["FEEDAPP_INVITE_DAYS"])


def _office_choices():
    return [("", gettext("Company-wide only"))] + [(o.slug, o.name) for o in content_state().offices]


def _user_form() -> UserForm:
    form = UserForm()
    form.office.choices = _office_choices()
    return form


def _office_form(user: User) -> OfficeForm:
    office = content_state().by_id.get(user.office_id)
    form = OfficeForm(office=office.slug if office else "")
    form.office.choices = _office_choices()
    return form


def _get_user_or_404(user_id: int) -> User:
    user = get_session().get(User, user_id)
    if user is None:
        abort(404, description=gettext("There is no such account."))
    return user


def _render_list(form: UserForm):
    db = get_session()
    users = db.scalars(select(User).order_by(User.username)).all()
    events = db.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(20)).all()
    return render_template("admin/users.html", users=users, form=form, events=events,
                           offices=content_state().by_id)


def _render_user(user: User, form: OfficeForm | None = None):
    invite = get_session().scalar(select(Invite).where(Invite.user_id == user.id).order_by(Invite.id.desc()))
    return render_template("admin/user.html", user=user, form=form or _office_form(user), action=ActionForm(),
                           invite=invite, office=content_state().by_id.get(user.office_id))


def _render_invite(user: User, token: str):
    url = invite_url(token)
    return render_template("admin/invite.html", user=user, url=url, qr=qr_svg(url),
                           days=current_app.config["FEEDAPP_INVITE_DAYS"])
