"""Staff accounts: invites, passwords, sign-ins, feed tokens and the audit trail.

No Flask here: the web views and the CLI both call these. Secrets (invite
tokens, sign-in keys, feed tokens) are random, shown once, and stored only as
SHA-256 hashes, so a copy of the database opens nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from .models import ROLE_STAFF, AuditEvent, FeedToken, Invite, Office, SignIn, User, utcnow
from .push.subscriptions import remove_staff_subscriptions
from .roles import valid_role

log = logging.getLogger(__name__)

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,49}$")
PASSWORD_MIN, PASSWORD_MAX = 8, 256  # NIST SP 800-63B: at least 8, allow long passphrases
COMMON_PASSWORDS = {"password", "password1", "12345678", "123456789", "1234567890", "qwertyui", "qwerty123",
                    "iloveyou", "letmein1", "welcome1", "abcd1234", "11111111", "00000000", "passw0rd"}
# A fixed hash to check against when the username is unknown, so both cases take as long.
_DUMMY_HASH = generate_password_hash("not a real password")


def N_(message: str) -> str:
    """Mark a message for translation; the web layer translates it (this module has no locale)."""
    return message


class AccountError(ValueError):
    """Input that cannot be accepted: message (a marked template) % params is fit to show."""

    def __init__(self, message: str, **params):
        super().__init__(message % params if params else message)
        self.message, self.params = message, params


class InviteUsed(AccountError):
    """The invite was used by another request in the meantime."""


def hash_secret(secret: str) -> str:
    """SHA-256 hex of a random secret (for lookup; the secret itself is never stored)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def clean_staff_username(raw: str) -> str:
    """A staff account's lower-case username of 2-50 letters, digits, dots, dashes or underscores."""
    name = (raw or "").strip().lower()
    if not USERNAME_RE.match(name):
        raise AccountError(N_("A username is 2–50 letters, digits, dots, dashes or underscores."))
    return name


def check_password_rules(password: str, username: str = "") -> None:
    """Raise AccountError unless password is acceptable."""
    if len(password) < PASSWORD_MIN:
        raise AccountError(N_("Use at least %(count)d characters."), count=PASSWORD_MIN)
    if len(password) > PASSWORD_MAX:
        raise AccountError(N_("Use at most %(count)d characters."), count=PASSWORD_MAX)
    if password.lower() in COMMON_PASSWORDS or (username and password.lower() == username.lower()):
        raise AccountError(N_("That password is too easy to guess; choose another."))


def user_by_username(session: Session, username: str) -> User | None:
    """The user with that username (case-insensitive)."""
    return session.scalar(select(User).where(User.username == (username or "").strip().lower()))


def create_user(session: Session, username: str, display_name: str = "", office: Office | None = None,
                role: str = ROLE_STAFF) -> User:
    """A new account without a password; issue an invite next. Caller commits.

    An editor with an office edits that office only; without one, the whole company.
    """
    name = clean_staff_username(username)
    if user_by_username(session, name) is not None:
        raise AccountError(N_("The username %(username)s is taken."), username=name)
    user = User(username=name, display_name=(display_name or name).strip()[:100], office=office,
                role=valid_role(role), active=True)
    session.add(user)
    session.flush()
    return user


def issue_invite(session: Session, user: User, valid_for: timedelta) -> str:
    """A new one-time invite token for user (older unused ones stop working). Caller commits."""
    end_unused_invites(session, user)
    token = secrets.token_urlsafe(32)
    session.add(Invite(user_id=user.id, token_hash=hash_secret(token), expires_at=utcnow() + valid_for))
    session.flush()
    return token


def invite_status(session: Session, token: str) -> tuple[Invite | None, str]:
    """(invite, "ok" | "unknown" | "used" | "expired" | "inactive") for a token from a URL."""
    invite = session.scalar(select(Invite).where(Invite.token_hash == hash_secret(token or "")))
    if invite is None:
        return None, "unknown"
    if invite.used_at is not None:
        return invite, "used"
    if invite.expires_at <= utcnow():
        return invite, "expired"
    if not session.get(User, invite.user_id).active:
        return invite, "inactive"
    return invite, "ok"


def redeem_invite(session: Session, invite: Invite, password: str) -> User:
    """Set the password and use the invite up; ends every other sign-in and invite of the user. Caller commits."""
    user = session.get(User, invite.user_id)
    check_password_rules(password, user.username)  # a refused password leaves the invite unused
    # Claimed in one statement: of two requests racing with one link, only one sets a password
    # (the other's UPDATE finds used_at set, on SQLite and under PostgreSQL's row lock alike).
    claimed = session.execute(update(Invite).where(Invite.id == invite.id, Invite.used_at.is_(None))
                              .values(used_at=utcnow()).execution_options(synchronize_session="fetch"))
    if claimed.rowcount != 1:
        raise InviteUsed(N_("This invite link was already used"))
    set_password(session, user, password)
    return user


def set_password(session: Session, user: User, password: str) -> None:
    """Check and store a new password; signs the user out everywhere, ends their unused invites and removes
    their staff push subscriptions. Caller commits.

    Every way of setting a password comes here (invite, `users set-password`, /account/password),
    so an invite link never outlives the password it was made to set. A lost phone must stop getting
    staff-only notifications as it stops being signed in: which subscription is which browser's the
    server cannot tell (as at sign-out), so all go, and the browser that changed the password files
    its own again (static/push.js, told by the account page).
    """
    check_password_rules(password, user.username)
    user.password_hash = generate_password_hash(password)
    end_all_sign_ins(session, user)
    end_unused_invites(session, user)
    remove_staff_subscriptions(session, user.id)


def end_unused_invites(session: Session, user: User) -> int:
    """Delete the user's invites that were never used (the links stop working); returns how many. Caller commits."""
    result = session.execute(delete(Invite).where(Invite.user_id == user.id, Invite.used_at.is_(None)))
    return result.rowcount or 0


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with that password, else None (in the same time either way)."""
    user = user_by_username(session, username)
    if user is None or not user.password_hash:
        check_password_hash(_DUMMY_HASH, password or "")
        return None
    if not check_password_hash(user.password_hash, password or "") or not user.active:
        return None
    return user


def start_sign_in(session: Session, user: User, lifetime: timedelta, remember: bool = False) -> str:
    """Record a new sign-in; returns the key the cookie carries. Caller commits.

    The user now has a working password, so any invite still open for them is stale
    (whoever holds that link could otherwise set a new one): it ends here.
    """
    key = secrets.token_urlsafe(32)
    now = utcnow()
    purge_expired_sign_ins(session, now)  # sign-ins are rare enough to tidy up here
    session.add(SignIn(key_hash=hash_secret(key), user_id=user.id, created_at=now, expires_at=now + lifetime,
                       remember=remember))
    end_unused_invites(session, user)
    user.last_login_at = now
    return key


def sign_in_for_key(session: Session, user_id: int, key: str) -> SignIn | None:
    """The sign-in a cookie's (user id, key) names, if it still stands."""
    row = session.get(SignIn, hash_secret(key))
    if row is None or row.user_id != user_id or row.expires_at <= utcnow():
        return None
    return row


def user_for_sign_in(session: Session, user_id: int, key: str) -> User | None:
    """The active user a cookie's (user id, key) belongs to, if that sign-in still stands."""
    if sign_in_for_key(session, user_id, key) is None:
        return None
    user = session.get(User, user_id)
    return user if user is not None and user.active else None


def end_sign_in(session: Session, key: str) -> None:
    """Sign one browser out. Caller commits."""
    session.execute(delete(SignIn).where(SignIn.key_hash == hash_secret(key)))


def end_all_sign_ins(session: Session, user: User) -> None:
    """Sign every browser of user out. Caller commits."""
    session.execute(delete(SignIn).where(SignIn.user_id == user.id))


def rotate_feed_token(session: Session, user: User) -> str:
    """A new private-feed token for user; the old URLs stop working. Caller commits."""
    session.execute(delete(FeedToken).where(FeedToken.user_id == user.id))
    token = secrets.token_urlsafe(32)
    session.add(FeedToken(user_id=user.id, token_hash=hash_secret(token)))
    session.flush()
    return token


def user_for_feed_token(session: Session, token: str) -> User | None:
    """The active user whose private feed token this is."""
    digest = hash_secret(token or "")
    row = session.scalar(select(FeedToken).where(FeedToken.token_hash == digest))
    if row is None or not hmac.compare_digest(row.token_hash, digest):
        return None
    user = session.get(User, row.user_id)
    return user if user is not None and user.active else None


def set_active(session: Session, user: User, active: bool) -> None:
    """Deactivate (ending every sign-in, invite, feed token and staff push subscription at once) or reactivate. Caller commits."""
    user.active = active
    if not active:
        end_all_sign_ins(session, user)
        session.execute(delete(FeedToken).where(FeedToken.user_id == user.id))
        end_unused_invites(session, user)
        remove_staff_subscriptions(session, user.id)


def audit(session: Session, actor: str, action: str, target: str = "", detail: str = "") -> None:
    """Record an admin action (and log it, without secrets). Caller commits."""
    session.add(AuditEvent(actor=actor, action=action, target=target, detail=detail[:500]))
    log.info("audit actor=%s action=%s target=%s detail=%s", actor, action, target, detail[:200])


def purge_expired_sign_ins(session: Session, now: datetime | None = None) -> int:
    """Delete sign-ins past their expiry; returns how many. Caller commits."""
    result = session.execute(delete(SignIn).where(SignIn.expires_at <= (now or utcnow())))
    return result.rowcount or 0
