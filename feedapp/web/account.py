"""/account: who you are, your password, and your private feed links."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext
from flask_login import current_user, login_required, login_user

from feedapp import accounts
from feedapp.db import get_session
from feedapp.models import FeedToken, User

from . import limits
from .auth import REMEMBER_FOR, SESSION_FOR, CurrentUser
from .forms import ActionForm, ChangePasswordForm, translate
from .push import refile_on_next_page, take_refile
from .scope import base_url
from .state import content_state

bp = Blueprint("account", __name__)


@bp.get("/account")
@login_required
def show_account():
    """Name, office, password form and private feed status."""
    return _render(ChangePasswordForm(), push_refile=take_refile())


@bp.post("/account/password")
@login_required
def change_password():
    """Change the password; every other signed-in browser is signed out, this one stays as it chose."""
    form = ChangePasswordForm()
    db = get_session()
    user = db.get(User, current_user.id)
    if not form.validate_on_submit():
        return _render(form, status=400)
    attempt = limits.password_check_attempt(user.id)  # counted before the password is checked
    if not attempt.allowed:
        form.current.errors.append(gettext("Too many wrong passwords. Wait %(minutes)d minutes and try again.",
                                           minutes=-(-attempt.retry_after // 60)))
        return _render(form, status=429, headers={"Retry-After": str(attempt.retry_after)})
    if accounts.authenticate(db, user.username, form.current.data) is None:
        form.current.errors.append(gettext("That is not your current password."))
        return _render(form, status=400)
    attempt.succeeded()
    this_browser = accounts.sign_in_for_key(db, user.id, current_user.key)
    remember = bool(this_browser and this_browser.remember)  # a session-only sign-in stays session-only
    try:
        accounts.set_password(db, user, form.password.data)
    except accounts.AccountError as exc:
        form.password.errors.append(translate(exc))
        return _render(form, status=400)
    key = accounts.start_sign_in(db, user, REMEMBER_FOR if remember else SESSION_FOR, remember=remember)
    db.commit()
    login_user(CurrentUser.of(user, key), remember=remember, duration=REMEMBER_FOR)
    refile_on_next_page()  # set_password dropped every staff subscription of theirs, this browser's too
    flash(gettext("Password changed. Other phones and browsers are signed out."))
    return redirect(url_for("account.show_account"), code=303)


@bp.post("/account/feed-token")
@login_required
def rotate_feed_token():
    """Make new private feed links (shown once); the old ones stop working."""
    if not ActionForm().validate_on_submit():
        return _render(ChangePasswordForm(), status=400)
    db = get_session()
    token = accounts.rotate_feed_token(db, db.get(User, current_user.id))
    db.commit()
    return _render(ChangePasswordForm(), new_token=token)


def private_feed_urls(token: str) -> dict[str, str]:
    """The private RSS, Atom and JSON URLs for a feed token."""
    root = base_url()
    return {fmt: root + url_for("feeds.show_private_feed", token=token, fmt=fmt) for fmt in ("rss", "atom", "json")}


def _render(form, new_token: str | None = None, status: int = 200, headers: dict | None = None,
            push_refile: bool = False):
    db = get_session()
    user = db.get(User, current_user.id)
    office = content_state().by_id.get(user.office_id)
    token_row = db.get(FeedToken, user.id)
    response = render_template(
        "account.html", user=user, office=office, form=form, action=ActionForm(),
        feed_created=token_row.created_at if token_row else None,
        feed_urls=private_feed_urls(new_token) if new_token else None, push_refile=push_refile,
    )
    return response, status, {"Cache-Control": "no-store", **(headers or {})}
