"""The VAPID key pair: made once by the set-up (`db upgrade`) into the instance folder, read by the app and worker."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

VAPID_KEY_FILE = "vapid_private.pem"


@dataclass(frozen=True)
class VapidKeys:
    """The private key (PKCS#8 PEM) and the public key browsers are given (base64url, uncompressed P-256 point)."""

    private_pem: bytes
    public_key: str


def b64url(data: bytes) -> str:
    """Unpadded base64url, as the Push API and VAPID write keys (RFC 8292 §3.2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Bytes from base64url with or without padding; ValueError when it is not base64url."""
    if not isinstance(text, str) or not text.isascii():
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def public_key_of(private_pem: bytes) -> str:
    """The uncompressed point (65 bytes, 0x04 || X || Y) of a P-256 private key, base64url."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(private_pem, password=None)
    point = key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    return b64url(point)


def read_vapid_keys(instance_path: str) -> VapidKeys | None:
    """The keys in instance/vapid_private.pem, or None when the set-up has not made them."""
    try:
        pem = (Path(instance_path) / VAPID_KEY_FILE).read_bytes()
    except FileNotFoundError:
        return None
    return VapidKeys(pem, public_key_of(pem))


def ensure_vapid_keys(instance_path: str) -> bool:
    """Create instance/vapid_private.pem (mode 0600) unless it exists; True when created.

    Made once: every browser's subscription is bound to this public key, so a new key
    would silently orphan them all.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    path = Path(instance_path) / VAPID_KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return True


def check_subject(subject: str) -> str | None:
    """What is wrong with a VAPID `sub` claim, or None (RFC 8292 §2.1: a mailto: or https: contact)."""
    parts = urlsplit(subject)
    if parts.scheme == "mailto" and "@" in parts.path and " " not in subject:
        local, _, domain = parts.path.partition("@")
        if local and "." in domain:
            return None
    if parts.scheme == "https" and parts.hostname and "." in parts.hostname and " " not in subject:
        return None
    return (f"FEEDAPP_VAPID_SUBJECT={subject!r} is not valid: give a contact push services can reach, "
            "mailto:comms@example.com or https://example.com/contact (Apple refuses pushes without a real one)")


@dataclass(frozen=True)
class PushSettings:
    """Whether push is on, and why not when it is off; the keys and the push-service origins allowed."""

    keys: VapidKeys | None
    subject: str | None
    extra_hosts: tuple[str, ...]
    off_reason: str | None

    @property
    def enabled(self) -> bool:
        return self.off_reason is None

    @classmethod
    def load(cls, config, instance_path: str) -> PushSettings:
        """From FEEDAPP_VAPID_SUBJECT, FEEDAPP_PUSH_HOSTS and the key file; ValueError for an invalid subject."""
        subject = (config.get("FEEDAPP_VAPID_SUBJECT") or "").strip() or None
        hosts = tuple(origin.rstrip("/").lower() for origin in config.get("FEEDAPP_PUSH_HOSTS") or ())
        if subject is not None and (problem := check_subject(subject)):
            raise ValueError(problem)
        keys = read_vapid_keys(instance_path)
        reason = None
        if subject is None:
            reason = "Web Push is off: set FEEDAPP_VAPID_SUBJECT to a mailto: or https: contact to turn it on"
        elif keys is None:
            reason = (f"Web Push is off: no VAPID keys in {Path(instance_path) / VAPID_KEY_FILE}; "
                      "run `flask --app feedapp db upgrade` once to make them")
        return cls(keys, subject, hosts, reason)
