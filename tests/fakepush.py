"""A real push service on 127.0.0.1 for the tests, and browser-side subscription keys.

`BrowserKeys` makes what a browser's PushManager makes (RFC 8291 §2: a P-256 key pair and a 16-byte
authentication secret) and holds the private key, so the fake push service can decrypt what the worker sent.
"""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


@dataclass
class BrowserKeys:
    """One browser subscription's keys: the private key stays here, the public parts go to the server."""

    private_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    auth_secret: bytes = field(default_factory=lambda: os.urandom(16))

    @property
    def p256dh(self) -> str:
        return b64url(self.private_key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))

    @property
    def auth(self) -> str:
        return b64url(self.auth_secret)

    def subscription(self, endpoint: str) -> dict:
        """What PushSubscription.toJSON() gives for endpoint."""
        return {"endpoint": endpoint, "expirationTime": None, "keys": {"p256dh": self.p256dh, "auth": self.auth}}


@dataclass
class Received:
    """One push the fake service accepted for a subscription, decrypted, with the headers RFC 8030 defines."""

    subscription: str
    payload: bytes
    topic: str | None
    ttl: str | None
    urgency: str | None
    claims: dict


class FakePush:
    """A push service (RFC 8030) on 127.0.0.1 that checks what a real one checks and decrypts what it gets.

    Every POST to /push/ID needs `Authorization: vapid t=JWT, k=KEY` (RFC 8292 §3): KEY the app's public
    key, the JWT signed with it (ES256), `aud` this service's origin, `exp` in the future and under 24 h
    away, `sub` the expected contact; and an aes128gcm body (RFC 8188) that the subscription's private key
    decrypts (RFC 8291). Scripted answers per subscription (`answer(id, 429, retry_after="120")`) come first;
    otherwise 201. Refusals are kept in `problems`, with the reason. `counts` has every accepted push per
    subscription. sample=N (benchmarks) checks and decrypts every Nth push only, accepting the others unread,
    so the checks do not cost more CPU than the sending they check; tests keep 1: every push.
    """

    def __init__(self, public_key: str, subject: str, sample: int = 1):
        import threading
        from collections import Counter
        from http.server import ThreadingHTTPServer

        self.public_key, self.subject, self.sample = public_key, subject, max(1, sample)
        self.browsers: dict[str, BrowserKeys] = {}
        self.counts: Counter[str] = Counter()
        self.seen = 0
        self.received: list[Received] = []
        self.problems: list[str] = []
        self.answers: dict[str, list[tuple[int, dict]]] = {}
        self.lock = threading.Lock()
        from tests.loopback import StopsAtOnce

        class Server(StopsAtOnce, ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128  # listen() backlog: 5 by default, too few for a worker opening 16 connections

        self.server = Server(("127.0.0.1", 0), self._handler())
        self.origin = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakePush:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def subscribe(self) -> tuple[str, dict]:
        """A new subscription at this service: its id, and the toJSON() a browser would send."""
        sub_id = b64url(os.urandom(9))
        keys = self.browsers[sub_id] = BrowserKeys()
        return sub_id, keys.subscription(f"{self.origin}/push/{sub_id}")

    def answer(self, sub_id: str, status: int, retry_after: str | None = None, location: str | None = None) -> None:
        """Answer the next push to sub_id with status (then 201 again, unless more are scripted)."""
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        if location is not None:
            headers["Location"] = location
        self.answers.setdefault(sub_id, []).append((status, headers))

    def payloads(self, sub_id: str | None = None) -> list[bytes]:
        return [r.payload for r in self.received if sub_id is None or r.subscription == sub_id]

    def _handler(self):
        from http.server import BaseHTTPRequestHandler

        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, headers = fake._receive(self.path, self.headers, body)
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler

    def _receive(self, path: str, headers, body: bytes) -> tuple[int, dict]:
        sub_id = path.rsplit("/", 1)[-1]
        keys = self.browsers.get(sub_id)
        if not path.startswith("/push/") or keys is None:
            return 404, {}
        with self.lock:
            scripted = self.answers.get(sub_id)
            if scripted:
                return scripted.pop(0)
            self.seen += 1
            check = self.seen % self.sample == 0
        if not check:
            with self.lock:
                self.counts[sub_id] += 1
            return 201, {}
        try:
            claims = self._check_vapid(headers.get("Authorization", ""))
            if headers.get("Content-Encoding") != "aes128gcm":
                raise ValueError(f"Content-Encoding {headers.get('Content-Encoding')!r}, not aes128gcm")
            if headers.get("TTL") is None:
                raise ValueError("no TTL header (RFC 8030 §5.2 requires it)")
            import http_ece

            payload = http_ece.decrypt(body, private_key=keys.private_key, auth_secret=keys.auth_secret,
                                       version="aes128gcm")
        except Exception as exc:  # noqa: BLE001 - every refusal is recorded for the test to read
            with self.lock:
                self.problems.append(f"{type(exc).__name__}: {exc}")
            return 403 if "VAPID" in str(exc) else 400, {}
        with self.lock:
            self.counts[sub_id] += 1
            self.received.append(Received(sub_id, payload, headers.get("Topic"), headers.get("TTL"),
                                          headers.get("Urgency"), claims))
        return 201, {"Location": f"{self.origin}/messages/{len(self.received)}"}

    def _check_vapid(self, authorization: str) -> dict:
        """The JWT's claims once RFC 8292's checks pass; ValueError naming the failed check otherwise."""
        import json
        import time

        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

        scheme, _, params = authorization.partition(" ")
        fields = dict(part.strip().split("=", 1) for part in params.split(",") if "=" in part)
        if scheme.lower() != "vapid" or "t" not in fields or "k" not in fields:
            raise ValueError(f"VAPID: no `vapid t=…, k=…` Authorization ({authorization[:40]!r})")
        if fields["k"] != self.public_key:
            raise ValueError("VAPID: k is not the key the browser subscribed with")
        head, payload, signature = fields["t"].split(".")

        def decode(part: str) -> bytes:
            return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

        if json.loads(decode(head)).get("alg") != "ES256":
            raise ValueError("VAPID: JWT alg is not ES256")
        raw = decode(signature)
        if len(raw) != 64:
            raise ValueError("VAPID: ES256 signature is not 64 bytes (JWS §3.4: r || s)")
        key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), decode(self.public_key))
        try:
            key.verify(encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")),
                       f"{head}.{payload}".encode(), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise ValueError("VAPID: bad JWT signature") from None
        claims = json.loads(decode(payload))
        if claims.get("aud") != self.origin:
            raise ValueError(f"VAPID: aud {claims.get('aud')!r} is not {self.origin!r}")
        if not time.time() < int(claims.get("exp", 0)) <= time.time() + 24 * 3600:
            raise ValueError("VAPID: exp is past or more than 24 hours away")
        if claims.get("sub") != self.subject:
            raise ValueError(f"VAPID: sub {claims.get('sub')!r} is not {self.subject!r}")
        return claims
