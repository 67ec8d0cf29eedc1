"""Where a request came from and where the site lives, decided by configuration, never by a header alone.

Two WSGI layers, installed by create_app:

- PinnedScriptRoot, the outermost: SCRIPT_NAME is the path of FEEDAPP_BASE_URL (else empty),
  whatever the server or a header says. A server that trusts a `SCRIPT_NAME` header (gunicorn
  does, from its trusted forwarders) would otherwise let one request write `//evil.example`
  into every link of a cached page.
- TrustedProxies: X-Forwarded-For/-Proto/-Host of FEEDAPP_PROXY_COUNT proxies, applied only
  when the peer is one of FEEDAPP_TRUSTED_PROXIES, so a client that reaches the app without
  the proxy cannot pick its own address (and escape the per-client sign-in limit).
- TrustedHosts, just inside it: with FEEDAPP_TRUSTED_HOSTS, any other Host (or trusted
  X-Forwarded-Host) gets a plain 400 before routing, caching or templates run.
"""

from __future__ import annotations

import ipaddress
import logging
import threading

from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.sansio.utils import host_is_trusted

log = logging.getLogger(__name__)

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(value) -> tuple[Network, ...]:
    """Networks from "127.0.0.0/8, ::1, 10.1.2.3" (or a list of such strings); ValueError names a bad one."""
    items = value.split(",") if isinstance(value, str) else list(value or ())
    networks = []
    for item in (str(i).strip() for i in items):
        if item:
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                raise ValueError(f"{item!r} is not an IP address or network") from None
    return tuple(networks)


def in_networks(address: str | None, networks: tuple[Network, ...]) -> bool:
    """True when address (a peer's REMOTE_ADDR) lies in one of networks."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)


class PinnedScriptRoot:
    """WSGI middleware: SCRIPT_NAME is always `root`; PATH_INFO is the rest of the path the server received."""

    def __init__(self, app, root: str):
        self.app, self.root = app, root.rstrip("/")

    def __call__(self, environ, start_response):
        path = environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")
        if self.root and (path == self.root or path.startswith(self.root + "/")):
            path = path[len(self.root):]  # a proxy that passes the prefix through
        environ["SCRIPT_NAME"] = self.root
        environ["PATH_INFO"] = path
        return self.app(environ, start_response)


class TrustedProxies:
    """WSGI middleware: ProxyFix for requests from a trusted proxy; a warning when one is likely unconfigured."""

    def __init__(self, app, hops: int, networks: tuple[Network, ...]):
        self.app, self.hops, self.networks = app, hops, networks
        self.fixed = ProxyFix(app, x_for=hops, x_proto=hops, x_host=hops) if hops else None
        self._warned = threading.Event()

    def __call__(self, environ, start_response):
        peer = environ.get("REMOTE_ADDR")
        if self.fixed is not None:
            if in_networks(peer, self.networks):
                return self.fixed(environ, start_response)
        elif "HTTP_X_FORWARDED_FOR" in environ and not self._warned.is_set() and in_networks(peer, self.networks):
            self._warned.set()
            log.warning(
                "requests from %s carry X-Forwarded-For but FEEDAPP_PROXY_COUNT=0: every visitor looks like the "
                "proxy's own address, so the per-address sign-in limit (20 failures per 5 minutes) is shared by "
                "all of them. Behind a reverse proxy set FEEDAPP_PROXY_COUNT=1 (and FEEDAPP_TRUSTED_PROXIES when "
                "the proxy runs on another machine)", peer)
        return self.app(environ, start_response)


class TrustedHosts:
    """WSGI middleware: 400 for a host name the site does not answer to (Flask's TRUSTED_HOSTS, checked earlier)."""

    BODY = b"This site does not answer to that host name.\n"

    def __init__(self, app, hosts: tuple[str, ...]):
        self.app, self.hosts = app, tuple(hosts)

    def __call__(self, environ, start_response):
        host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
        if self.hosts and not host_is_trusted(host, self.hosts):
            start_response("400 Bad Request", [("Content-Type", "text/plain; charset=utf-8"),
                                               ("Content-Length", str(len(self.BODY))), ("Cache-Control", "no-store")])
            return [self.BODY]
        return self.app(environ, start_response)
