"""Invite and private-feed tokens never reach access logs."""

from __future__ import annotations

import logging
import urllib.error
import urllib.request

import pytest

from feedapp.redact import RedactFilter, redact
from tests.gunicorn_proc import base_env, gunicorn

TOKEN = "Zx9-secretTOKENvalue_123"


@pytest.mark.parametrize(
    "line, expected",
    [
        (f'"GET /invite/{TOKEN} HTTP/1.1" 200', '"GET /invite/[redacted] HTTP/1.1" 200'),
        (f'"GET /private/{TOKEN}/feed.rss HTTP/1.1" 200', '"GET /private/[redacted]/feed.rss HTTP/1.1" 200'),
        (f"referer=https://feed.example/invite/{TOKEN}?a=1", "referer=https://feed.example/invite/[redacted]?a=1"),
        ('"GET /feed.rss HTTP/1.1" 304', '"GET /feed.rss HTTP/1.1" 304'),
        # Percent-encoded, as a path travels in a query string ("next="), in any case, twice encoded.
        (f'"GET /login?next=%2Fprivate%2F{TOKEN}%2Ffeed.rss HTTP/1.1"',
         '"GET /login?next=%2Fprivate%2F[redacted]%2Ffeed.rss HTTP/1.1"'),
        (f"next=%2finvite%2f{TOKEN}&x=1", "next=%2finvite%2f[redacted]&x=1"),
        (f"next=%252Fprivate%252F{TOKEN}%252Ffeed.atom", "next=%252Fprivate%252F[redacted]%252Ffeed.atom"),
        (f"next=%25252Finvite%25252F{TOKEN}", "next=%25252Finvite%25252F[redacted]"),
        (f"next=%2Finvite%2F{TOKEN}%3Fa%3D1", "next=%2Finvite%2F[redacted]%3Fa%3D1"),
        # Letters of the path percent-encoded (the router decodes them), and an odd case.
        (f'"GET /%69nvite/{TOKEN} HTTP/1.1"', '"GET /%69nvite/[redacted] HTTP/1.1"'),
        (f'"GET /PRIVATE/{TOKEN}/feed.rss HTTP/1.1"', '"GET /PRIVATE/[redacted]/feed.rss HTTP/1.1"'),
        # Repeated slashes, which the router merges (and redirects to the real feed).
        (f'"GET /private//{TOKEN}/feed.rss HTTP/1.1"', '"GET /private//[redacted]/feed.rss HTTP/1.1"'),
        (f"next=%2Finvite%2F%2F{TOKEN}", "next=%2Finvite%2F%2F[redacted]"),
        # Nothing else is touched.
        ('"GET /inviter/x?next=%2Ffeed.rss HTTP/1.1"', '"GET /inviter/x?next=%2Ffeed.rss HTTP/1.1"'),
    ],
)
def test_redact_replaces_url_tokens(line, expected):
    assert redact(line) == expected


def test_werkzeug_request_lines_are_redacted(caplog):
    logger = logging.getLogger("test.redact")
    logger.addFilter(RedactFilter())
    with caplog.at_level(logging.INFO, logger="test.redact"):
        logger.info('%s - - "%s" %s', "127.0.0.1", f"GET /private/{TOKEN}/feed.atom HTTP/1.1", "404")
    assert TOKEN not in caplog.text and "/private/[redacted]/feed.atom" in caplog.text


def test_gunicorn_access_log_is_redacted(tmp_path, sqlite_template):
    import shutil

    db = tmp_path / "g.db"
    shutil.copy(sqlite_template, db)
    env = base_env(tmp_path, f"sqlite:///{db}", FEEDAPP_BASE_URL="http://127.0.0.1")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    paths = (f"/invite/{TOKEN}", f"/private/{TOKEN}/feed.rss", f"/login?next=%2Fprivate%2F{TOKEN}%2Ffeed.rss",
             f"/language/fr?next=%252Finvite%252F{TOKEN}")
    with gunicorn(env, "-w", "1") as server:
        for path in paths:
            try:
                opener.open(server.url + path, timeout=120).close()
            except urllib.error.HTTPError:
                pass  # unknown tokens: 404
    output = server.log()  # complete: gunicorn has stopped
    assert "/invite/[redacted]" in output and "/private/[redacted]/feed.rss" in output
    assert "next=%2Fprivate%2F[redacted]%2Ffeed.rss" in output and "next=%252Finvite%252F[redacted]" in output
    assert TOKEN not in output
