"""Invite and private-feed tokens never reach access logs."""

from __future__ import annotations

import logging
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from feedapp import ROOT
from feedapp.redact import RedactFilter, redact

TOKEN = "Zx9-secretTOKENvalue_123"


@pytest.mark.parametrize(
    "line, expected",
    [
        (f'"GET /invite/{TOKEN} HTTP/1.1" 200', '"GET /invite/[redacted] HTTP/1.1" 200'),
        (f'"GET /private/{TOKEN}/feed.rss HTTP/1.1" 200', '"GET /private/[redacted]/feed.rss HTTP/1.1" 200'),
        (f"referer=https://feed.example/invite/{TOKEN}?a=1", "referer=https://feed.example/invite/[redacted]?a=1"),
        ('"GET /feed.rss HTTP/1.1" 304', '"GET /feed.rss HTTP/1.1" 304'),
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
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"FEEDAPP_DATABASE_URL": f"sqlite:///{db}", "FEEDAPP_SECRET_KEY": "k" * 40,
           "FEEDAPP_INSTANCE_PATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "-b", f"127.0.0.1:{port}",
                             "-w", "1", "wsgi:app"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        for _ in range(100):
            try:
                opener.open(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        for path in (f"/invite/{TOKEN}", f"/private/{TOKEN}/feed.rss"):
            with pytest.raises(urllib.error.HTTPError):  # unknown tokens: 404
                opener.open(f"http://127.0.0.1:{port}{path}", timeout=5)
    finally:
        proc.terminate()
        output = proc.communicate(timeout=10)[0]
    assert "/invite/[redacted]" in output and "/private/[redacted]/feed.rss" in output
    assert TOKEN not in output
