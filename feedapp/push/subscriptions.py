"""Browsers' push subscriptions: checking what a browser sends (SSRF, keys), storing and removing them. No Flask."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from feedapp.models import PushSubscription

from .keys import b64url_decode

# The browsers' push services (RFC 8030 servers), https only: Chrome and Edge-on-Android (Google), Firefox
# (Mozilla), Safari (Apple: web.push.apple.com and its regional hosts), Edge on Windows (WNS). Anything else
# would let a visitor make the worker send requests to an address of their choosing (SSRF).
PUSH_SERVICE_HOSTS = ("fcm.googleapis.com", "updates.push.services.mozilla.com")
PUSH_SERVICE_SUFFIXES = (".push.apple.com", ".notify.windows.com")
MAX_ENDPOINT = 1000  # the column's width; real endpoints are a few hundred characters
STAFF_DEVICES = 10  # staff subscriptions kept per person (phones, laptops); the oldest goes first


class SubscriptionError(ValueError):
    """What is wrong with a subscription a browser sent, in a sentence."""


@dataclass(frozen=True)
class SubscriptionInfo:
    """A checked PushSubscription.toJSON(): the endpoint and the two keys (base64url, as browsers give them)."""

    endpoint: str
    p256dh: str
    auth: str


def origin_of(url: str) -> str:
    """scheme://host[:port], lower-case, the default port left out."""
    parts = urlsplit(url)
    default = {"https": 443, "http": 80}.get(parts.scheme)
    port = f":{parts.port}" if parts.port and parts.port != default else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


def endpoint_allowed(endpoint: str, extra_origins: tuple[str, ...] = ()) -> bool:
    """Whether the worker may send to endpoint: https at a browser's push service, or an origin listed in extra."""
    try:
        parts = urlsplit(endpoint)
        origin = origin_of(endpoint)
    except ValueError:  # a bad port or IPv6 literal
        return False
    if parts.username is not None or parts.password is not None or not parts.hostname:
        return False
    if origin in {o.rstrip("/").lower() for o in extra_origins}:
        return True
    host = parts.hostname
    return (parts.scheme == "https" and origin == f"https://{host}"
            and (host in PUSH_SERVICE_HOSTS or host.endswith(PUSH_SERVICE_SUFFIXES)))


def parse_subscription(data, extra_origins: tuple[str, ...] = ()) -> SubscriptionInfo:
    """A SubscriptionInfo from the JSON a browser sent, or SubscriptionError saying what is wrong."""
    if not isinstance(data, dict) or not isinstance(data.get("keys"), dict):
        raise SubscriptionError("Send the browser's PushSubscription.toJSON(): {\"endpoint\": …, \"keys\": "
                                "{\"p256dh\": …, \"auth\": …}}.")
    endpoint = data.get("endpoint")
    if not isinstance(endpoint, str) or not endpoint or len(endpoint) > MAX_ENDPOINT or not endpoint.isascii():
        raise SubscriptionError(f"The endpoint must be a URL of at most {MAX_ENDPOINT} characters.")
    if not endpoint_allowed(endpoint, extra_origins):
        raise SubscriptionError("The endpoint is not at a known push service (Google, Mozilla, Apple or Microsoft, "
                                "over https); this site sends pushes nowhere else.")
    p256dh, auth = data["keys"].get("p256dh"), data["keys"].get("auth")
    try:
        point, secret = b64url_decode(p256dh), b64url_decode(auth)
    except (ValueError, TypeError):
        raise SubscriptionError("The keys must be base64url.") from None
    # RFC 8291 §3.1: the user agent's key is an uncompressed P-256 point, the authentication secret 16 bytes.
    if len(point) != 65 or point[0] != 4 or not _on_curve(point):
        raise SubscriptionError("keys.p256dh must be an uncompressed P-256 public key (65 bytes).")
    if len(secret) != 16:
        raise SubscriptionError("keys.auth must be 16 bytes.")
    return SubscriptionInfo(endpoint, p256dh.rstrip("="), auth.rstrip("="))


def _on_curve(point: bytes) -> bool:
    from cryptography.hazmat.primitives.asymmetric import ec

    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)
    except ValueError:
        return False
    return True


def save_subscription(session: Session, info: SubscriptionInfo, office_id: int | None,
                      user_id: int | None) -> PushSubscription:
    """Store a subscription with its scope, or update the one with this endpoint (a browser subscribing again).

    A signed-in staff member's subscription is staff (staff-only posts may be announced to it); each
    person keeps at most STAFF_DEVICES, the oldest going first. SubscriptionError when the endpoint is
    known with another auth secret. Caller commits.
    """
    row = session.scalar(select(PushSubscription).where(PushSubscription.endpoint == info.endpoint))
    if row is None:
        row = PushSubscription(endpoint=info.endpoint, failures=0)
        session.add(row)
    elif row.auth != info.auth:
        # A browser subscribing again sends the same keys; other keys for a known endpoint would only let
        # whoever learnt the endpoint break (or re-scope) someone else's subscription.
        raise SubscriptionError("This endpoint is already subscribed with other keys: unsubscribe it first.")
    row.p256dh, row.auth = info.p256dh, info.auth
    row.office_id, row.user_id, row.staff = office_id, user_id, user_id is not None
    session.flush()
    if user_id is not None:
        keep = select(PushSubscription.id).where(PushSubscription.user_id == user_id).order_by(
            PushSubscription.created_at.desc(), PushSubscription.id.desc()).limit(STAFF_DEVICES)
        session.execute(delete(PushSubscription).where(PushSubscription.user_id == user_id,
                                                       PushSubscription.id.not_in(keep.scalar_subquery())))
    return row


def remove_subscription(session: Session, info: SubscriptionInfo) -> bool:
    """Remove the subscription with this endpoint and auth secret (knowing the secret proves it is yours). Caller commits."""
    result = session.execute(delete(PushSubscription).where(PushSubscription.endpoint == info.endpoint,
                                                            PushSubscription.auth == info.auth))
    return result.rowcount > 0


def remove_staff_subscriptions(session: Session, user_id: int) -> int:
    """Remove every subscription a person made while signed in (sign-out, deactivation). Caller commits."""
    return session.execute(delete(PushSubscription).where(PushSubscription.user_id == user_id)).rowcount
