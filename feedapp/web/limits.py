"""Who may try a password now: the sign-in limits, the device cookie and the client's address.

The limits (README, "Staff accounts and security"), each counting failed attempts only:

- per username and client together, 5 per 15 minutes: a person who mistypes is slowed down
  without anyone else being able to lock them out from elsewhere;
- per client, 20 per 5 minutes, whatever the usernames (credential stuffing from one address);
- per username from every client, 10 per 15 minutes, so rotating addresses cannot guess on forever.

The last one is what a hostile client could use to lock a person out, so a browser that has
signed in as that person before gets past it and past the per-client limit (OWASP's "device
cookie"): a successful sign-in sets a signed cookie naming the username and a random device id,
and attempts from that browser for that username count only against their own limit of 5 per
15 minutes. It is chosen over slowing responses down because a delay holds a worker thread per
attempt, which a flood turns into a denial of service for everyone.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from datetime import timedelta

from flask import Flask, Response, current_app, request, url_for
from itsdangerous import BadSignature, URLSafeTimedSerializer

from feedapp.db import sessions
from feedapp.throttle import Attempt, Limit, Throttle, storage_for

PER_USER_CLIENT = Limit("login-user-client", 5, 15 * 60)
PER_CLIENT = Limit("login-client", 20, 5 * 60)
PER_USER = Limit("login-user", 10, 15 * 60)
PER_USER_DEVICE = Limit("login-user-device", 5, 15 * 60)
# Wrong current passwords on /account/password, per signed-in user (whoever holds a stolen session).
PASSWORD_CHECK = Limit("password-check", 5, 15 * 60)

DEVICE_COOKIE = "device"
DEVICE_AGE = timedelta(days=365)
DEVICES_KEPT = 5  # a shared phone may remember a few staff members
DEVICE_SALT = "feedapp.device"


def init_app(app: Flask) -> None:
    """Attach the throttle on the storage FEEDAPP_RATELIMIT_STORAGE_URL names (the database by default)."""
    engine = sessions(app).kw["bind"]
    app.extensions["feedapp.throttle"] = Throttle(storage_for(app.config["FEEDAPP_RATELIMIT_STORAGE_URL"], engine))


def throttle() -> Throttle:
    """The app's throttle."""
    return current_app.extensions["feedapp.throttle"]


def client_address() -> str:
    """The client as throttling sees it: its IP address (from a trusted proxy's X-Forwarded-For), an IPv6 /64."""
    return group_address(request.remote_addr or "unknown")


def anonymous_client() -> str:
    """client_address() as a keyed hash, for the throttles of anonymous counting (/reach, survey answers).

    Those throttles' rows sit beside the counts the same request adds: the raw address there would say who
    was reading (or answering) at that moment. Keyed with the app's secret, it cannot be recomputed from an
    address list without it.
    """
    key = current_app.secret_key.encode()
    return "h:" + hmac.new(key, client_address().encode(), hashlib.sha256).hexdigest()[:32]


def group_address(raw: str) -> str:
    """An address as one client: IPv4 as is, an IPv4-mapped IPv6 as its IPv4, other IPv6 as its /64."""
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        return raw[:64]
    if address.version == 6:
        if address.ipv4_mapped:
            return str(address.ipv4_mapped)
        # One IPv6 subscriber holds a whole /64 and can move around in it at will.
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def sign_in_attempt(username: str) -> Attempt:
    """Count a sign-in attempt for username before its password is checked."""
    device = device_id(username)
    if device:
        checks = [(PER_USER_DEVICE, f"{username}:{device}")]
    else:
        client = client_address()
        checks = [(PER_CLIENT, client), (PER_USER_CLIENT, f"{username}:{client}"), (PER_USER, username)]
    return throttle().attempt(checks)


def password_check_attempt(user_id: int) -> Attempt:
    """Count a check of a signed-in user's current password before it is made."""
    return throttle().attempt([(PASSWORD_CHECK, str(user_id))])


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=DEVICE_SALT)


def _devices() -> list[list[str]]:
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw:
        return []
    try:
        entries = _serializer().loads(raw, max_age=int(DEVICE_AGE.total_seconds()))
    except BadSignature:
        return []
    if not isinstance(entries, list):
        return []
    return [e for e in entries if isinstance(e, list) and len(e) == 2 and all(isinstance(v, str) for v in e)]


def device_id(username: str) -> str | None:
    """The id this browser got when it signed in as username, from a valid device cookie."""
    return next((device for name, device in _devices() if name == username), None)


def remember_device(response: Response, username: str) -> None:
    """After a successful sign-in: this browser may later get past the limits others can trip for username."""
    entries = [[username, device_id(username) or secrets.token_urlsafe(16)]]
    entries += [e for e in _devices() if e[0] != username][: DEVICES_KEPT - 1]
    response.set_cookie(DEVICE_COOKIE, _serializer().dumps(entries), max_age=int(DEVICE_AGE.total_seconds()),
                        path=url_for("auth.login"),  # only the sign-in form needs it: pages stay cacheable
                        secure=current_app.config["SESSION_COOKIE_SECURE"], httponly=True, samesite="Strict")
