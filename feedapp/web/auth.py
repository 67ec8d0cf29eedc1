"""Staff sign-in: /login, /logout and one-time invites, on Flask-Login and server-side sign-in records.

The session cookie carries "user id:random key"; the key's hash is a row in
sign_ins. Signing out, changing the password or deactivating the user
deletes rows, so a copied or replayed cookie stops working at once.
Attempts are throttled by feedapp.web.limits before any password is checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, session, url_for
from flask_babel import gettext, lazy_gettext
from flask_login import LoginManager, UserMixin, current_user, login_user, logout_user

from feedapp import accounts
from feedapp.db import get_session
from feedapp.push.subscriptions import remove_staff_subscriptions
from feedapp.roles import HasRole

from . import limits
from .forms import LoginForm, SetPasswordForm, translate
from .push import refile_on_next_page

bp = Blueprint("auth", __name__)
login_manager = LoginManager()

REMEMBER_FOR = timedelta(days=30)  # weeks on a phone, as staff expect of an app
SESSION_FOR = timedelta(hours=12)  # without "remember me": one working day


@dataclass
class CurrentUser(HasRole, UserMixin):
    """The signed-in reader, as views need it (plain data; no database session attached)."""

    id: int
    username: str
    display_name: str
    office_id: int | None
    role: str
    key: str  # this browser's sign-in key

    def get_id(self) -> str:
        return f"{self.id}:{self.key}"

    @classmethod
    def of(cls, user, key: str) -> CurrentUser:
        return cls(user.id, user.username, user.display_name, user.office_id, user.role, key)


def init_app(app) -> None:
    """Configure Flask-Login and the sign-in throttle."""
    app.config.setdefault("REMEMBER_COOKIE_NAME", "remember_token")
    app.config.setdefault("REMEMBER_COOKIE_DURATION", REMEMBER_FOR)
    app.config.setdefault("REMEMBER_COOKIE_HTTPONLY", True)
    app.config.setdefault("REMEMBER_COOKIE_SAMESITE", "Lax")
    app.config.setdefault("REMEMBER_COOKIE_SECURE", app.config["SESSION_COOKIE_SECURE"])
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = lazy_gettext("Sign in to see that page.")
    # "basic", not "strong": phones change IP address all day long.
    login_manager.session_protection = "basic"
    app.register_blueprint(bp)
    limits.init_app(app)


@login_manager.user_loader
def load_user(user_id: str) -> CurrentUser | None:
    """The reader of a session or remember-me cookie, if that sign-in still stands."""
    uid, _, key = (user_id or "").partition(":")
    if not uid.isdigit() or not key:
        return None
    user = accounts.user_for_sign_in(get_session(), int(uid), key)
    return CurrentUser.of(user, key) if user else None


def safe_next(target: str | None) -> str:
    """Only a path on this site: never another host, scheme or protocol-relative URL."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return url_for("pages.show_feed")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or any(ord(c) < 32 for c in target):
        return url_for("pages.show_feed")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Sign in with username and password."""
    if current_user.is_authenticated:
        return redirect(safe_next(request.args.get("next")))
    form = LoginForm(next=request.args.get("next", ""))
    if request.method == "POST":
        if not form.validate_on_submit():
            return render_template("login.html", form=form), 400
        username = form.username.data.strip().lower()
        attempt = limits.sign_in_attempt(username)  # counted before the password is checked
        if not attempt.allowed:
            form.password.errors.append(_refusal(attempt))
            return render_template("login.html", form=form), 429, {"Retry-After": str(attempt.retry_after)}
        db = get_session()
        user = accounts.authenticate(db, username, form.password.data)
        if user is None:
            form.password.errors.append(gettext("Wrong username or password."))
            return render_template("login.html", form=form), 401
        attempt.succeeded()
        _sign_in(user, remember=form.remember.data)
        db.commit()
        response = redirect(safe_next(form.next.data), code=303)
        limits.remember_device(response, user.username)
        return response
    return render_template("login.html", form=form)


def _refusal(attempt) -> str:
    if attempt.refused_by is limits.PER_CLIENT:
        return gettext("Too many sign-in attempts from this network. Wait a few minutes and try again.")
    if attempt.refused_by is limits.PER_USER:
        return gettext("Too many wrong passwords for this username from different places. Sign in on a phone "
                       "you used before, or wait %(minutes)d minutes.", minutes=-(-attempt.retry_after // 60))
    return gettext("Too many wrong passwords for this username. Wait 15 minutes and try again.")


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    """Sign out this browser; GET asks first (a link must not sign anyone out)."""
    if request.method == "GET":
        if not current_user.is_authenticated:
            return redirect(url_for("pages.show_feed"))
        return render_template("logout.html", done=False)
    if current_user.is_authenticated:
        db = get_session()
        accounts.end_sign_in(db, current_user.key)
        # A signed-out browser must not keep getting staff news on its lock screen. Every browser of theirs:
        # the server cannot tell which subscription is this browser's, and a shared phone is the case to cover.
        remove_staff_subscriptions(db, current_user.id)
        db.commit()
    session.clear()  # first: logout_user() then leaves its note to delete the remember-me cookie
    logout_user()
    response = current_app.make_response(render_template("logout.html", done=True))
    # Drop every cached copy of staff pages in this browser (HTTP cache and the offline caches).
    response.headers["Clear-Site-Data"] = '"cache"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/invite/<token>", methods=["GET", "POST"])
def accept_invite(token: str):
    """Choose a password with a one-time invite link, then go straight in."""
    db = get_session()
    invite, status = accounts.invite_status(db, token)
    if status != "ok":
        return render_template("invite_gone.html", status=status), (404 if status == "unknown" else 410)
    user = db.get(accounts.User, invite.user_id)
    form = SetPasswordForm()
    if request.method == "POST":
        if form.validate_on_submit():
            try:
                accounts.redeem_invite(db, invite, form.password.data)
            except accounts.InviteUsed:
                db.rollback()
                return render_template("invite_gone.html", status="used"), 410
            except accounts.AccountError as exc:
                form.password.errors.append(translate(exc))
            else:
                _sign_in(user, remember=True)
                db.commit()
                refile_on_next_page()  # a new invite on a browser that had subscribed: as /account/password
                flash(gettext("Your password is set. Welcome!"))
                response = redirect(url_for("account.show_account"), code=303)
                limits.remember_device(response, user.username)
                return response
        return render_template("invite.html", form=form, user=user), 400
    return render_template("invite.html", form=form, user=user)


def _sign_in(user, remember: bool) -> None:
    """A fresh session cookie and a new server-side sign-in row (never reuse the old ones)."""
    session.clear()
    key = accounts.start_sign_in(get_session(), user, REMEMBER_FOR if remember else SESSION_FOR, remember=remember)
    login_user(CurrentUser.of(user, key), remember=remember, duration=REMEMBER_FOR)


def require_editor():
    """401 → sign-in page for anonymous readers, 403 for staff who are neither editors nor admins."""
    if not current_user.is_authenticated:
        return login_manager.unauthorized()
    if not current_user.is_editor:
        abort(403, description=gettext("This page is for editors and administrators."))
    return None
