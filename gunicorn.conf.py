"""gunicorn settings for feedapp: `gunicorn wsgi:app` reads this file from the working directory."""

import ipaddress

from gunicorn.glogging import Logger

from feedapp.config import read_settings
from feedapp.redact import redact
from feedapp.textclean import LogSanitizer
from feedapp.web.proxy import parse_networks

bind = "127.0.0.1:8000"
worker_class = "gthread"
workers = 2
threads = 4
accesslog = "-"
control_socket_disable = True  # gunicorn 27 opens ~/.gunicorn/gunicorn.ctl by default; two instances would collide

# Which peers gunicorn believes about the request (the same settings the app reads: FEEDAPP_PROXY_COUNT and
# FEEDAPP_TRUSTED_PROXIES, from the environment or instance/config.py). gunicorn's own defaults trust 127.0.0.1
# for X-Forwarded-Proto and for SCRIPT_NAME/PATH_INFO *headers*: one request from behind a local proxy could then
# set the script root of every link in a cached page. With no proxy configured nobody is trusted; with one, its
# addresses may say https (the app's ProxyFix reads X-Forwarded-* from them too). Never SCRIPT_NAME or PATH_INFO:
# the app pins its script root itself (feedapp/web/proxy.py).
_settings = read_settings()
_proxies = _settings["FEEDAPP_PROXY_COUNT"]
# The networks as the app reads them (gunicorn refuses "192.168.1.1/24", which the app takes as 192.168.1.0/24).
forwarded_allow_ips = ",".join(str(n) for n in parse_networks(_settings["FEEDAPP_TRUSTED_PROXIES"])) if _proxies else ""
forwarder_headers = ""


def when_ready(server):
    """Say at start when gunicorn only listens where a proxy must be in front, but the app trusts no proxy."""
    if _proxies:
        return
    for listener in server.LISTENERS:
        try:
            name = listener.getsockname()
            local = isinstance(name, tuple) and ipaddress.ip_address(name[0]).is_loopback
        except (OSError, ValueError):
            local = False
        if local:
            server.log.warning(
                "listening on %s only, so visitors arrive through a proxy on this machine, but "
                "FEEDAPP_PROXY_COUNT=0: every visitor then counts as that one address for sign-in throttling "
                "(20 failures per 5 minutes lock everyone out). Set FEEDAPP_PROXY_COUNT=1 behind a proxy; "
                "leave it at 0 only when nothing is in front", listener)
            return


class RedactingLogger(Logger):
    """Access log lines without invite or private-feed tokens; every line one line, without controls."""

    def setup(self, cfg):
        super().setup(cfg)
        # Request lines and headers are client text (decoded as Latin-1: C1 controls too).
        if not any(isinstance(f, LogSanitizer) for f in self.access_log.filters):
            self.access_log.addFilter(LogSanitizer())

    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for key in ("r", "U", "q", "f"):
            if isinstance(atoms.get(key), str):
                atoms[key] = redact(atoms[key])
        atoms["{referer}i"] = redact(atoms.get("{referer}i", ""))
        return atoms


logger_class = RedactingLogger
