"""Sending one outbox row: pywebpush (RFC 8291 aes128gcm, VAPID RFC 8292) over a per-thread HTTP session. No Flask."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime

from .outbox import Claimed, DeliverySettings, Outcome, retry_after_seconds


class Sender:
    """Sends one claimed row with pywebpush (RFC 8291 aes128gcm, VAPID RFC 8292); one HTTP session per thread.

    What does not change between sends is worked out once (a fan-out to 10,000 phones is CPU-bound): the
    VAPID header per push-service origin, signed again an hour before its 12 hours run out (RFC 8292 §2:
    a JWT may be reused until its exp, at most 24 h away), and the proxy environment per origin.
    """

    VAPID_LIFETIME = 12 * 3600  # seconds; pywebpush's own choice
    VAPID_RENEW = 3600  # seconds before exp when a new JWT is signed

    def __init__(self, settings: DeliverySettings, clock: Callable[[], datetime]):
        from py_vapid import Vapid

        self.settings, self.clock = settings, clock
        self.vapid = Vapid.from_pem(settings.private_pem)
        self.local = threading.local()
        self.lock = threading.Lock()
        self.vapid_headers: dict[str, tuple[float, dict]] = {}

    def _vapid_header(self, origin: str) -> dict:
        import time

        now = time.time()  # exp is checked by the push service against real time, whatever self.clock says
        with self.lock:
            cached = self.vapid_headers.get(origin)
            if cached is None or cached[0] - now < self.VAPID_RENEW:
                exp = int(now) + self.VAPID_LIFETIME
                headers = self.vapid.sign({"sub": self.settings.subject, "aud": origin, "exp": exp})
                cached = self.vapid_headers[origin] = (exp, headers)
        return cached[1]

    def __call__(self, item: Claimed) -> Outcome:
        import requests
        from pywebpush import WebPusher

        from .subscriptions import origin_of

        http = getattr(self.local, "http", None)
        if http is None:
            http = self.local.http = _PushSession()
        headers = {"Urgency": item.urgency, **self._vapid_header(origin_of(item.endpoint))}
        if item.topic:
            headers["Topic"] = item.topic
        try:
            # What pywebpush.webpush() does, with the VAPID header signed above rather than for every send.
            response = WebPusher({"endpoint": item.endpoint, "keys": {"p256dh": item.p256dh, "auth": item.auth}},
                                 requests_session=http).send(
                item.payload, headers, ttl=item.ttl, content_encoding="aes128gcm", timeout=self.settings.timeout)
        except requests.RequestException as exc:  # no answer: refused, reset, timed out
            return Outcome(None, error=f"{type(exc).__name__}: {str(exc)[:200]}")
        except Exception as exc:  # noqa: BLE001 - keys pywebpush cannot use: this row fails, the others go on
            return Outcome(400, error=f"{type(exc).__name__}: {str(exc)[:200]}")
        if response.status_code > 202:
            return Outcome(response.status_code,
                           retry_after_seconds(response.headers.get("Retry-After"), self.clock()),
                           error=f"{response.status_code} {(response.text or '').strip()[:200]}")
        return Outcome(response.status_code)


def _PushSession():
    """A requests.Session that reads the proxy environment once per push-service origin, and follows no redirect.

    requests looks at every environment variable (proxies, no_proxy, netrc) for each request when trust_env
    is on: a third of a send's CPU time. The same settings are honoured, read once.
    """
    import os
    from urllib.parse import urlsplit

    import requests
    from requests.utils import get_environ_proxies

    class PushSession(requests.Session):
        def __init__(self):
            super().__init__()
            self.trust_env = False
            self.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
            self.origin_proxies: dict[str, dict] = {}

        def request(self, method, url, **kwargs):
            parts = urlsplit(url)
            origin = f"{parts.scheme}://{parts.netloc}"
            if origin not in self.origin_proxies:
                self.origin_proxies[origin] = get_environ_proxies(url)
            kwargs.setdefault("proxies", self.origin_proxies[origin])
            # Only the endpoint checked when the browser subscribed (feedapp.push.subscriptions) is ever asked: a
            # redirect (307/308 keep the POST) would take the worker wherever the answer points. RFC 8030 has none.
            kwargs["allow_redirects"] = False
            return super().request(method, url, **kwargs)

    return PushSession()
