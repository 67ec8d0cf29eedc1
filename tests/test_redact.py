"""Invite and private-feed tokens never reach access logs."""

from __future__ import annotations

import logging
import queue
import re
import subprocess
import sys
import threading
import urllib.request

import pytest

from feedapp import ROOT
from feedapp.redact import RedactFilter, redact

TOKEN = "Zx9-secretTOKENvalue_123"
GUARD = 60  # seconds; only so a broken server fails the test instead of hanging it


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


def pump(stream, lines: queue.Queue) -> None:
    """Copy a process's output into a queue line by line; None marks its end."""
    for line in stream:
        lines.put(line)
    lines.put(None)


def test_gunicorn_access_log_is_redacted(tmp_path, sqlite_template):
    import shutil

    db = tmp_path / "g.db"
    shutil.copy(sqlite_template, db)
    env = {"FEEDAPP_DATABASE_URL": f"sqlite:///{db}", "FEEDAPP_SECRET_KEY": "k" * 40,
           "FEEDAPP_INSTANCE_PATH": str(tmp_path), "PATH": "/usr/bin:/bin"}
    # Port 0: gunicorn binds a free port itself and logs it; nothing can take it in between.
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "-b", "127.0.0.1:0",
                             "-w", "1", "wsgi:app"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=pump, args=(proc.stdout, lines), daemon=True)
    reader.start()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    output = []
    try:
        port = None
        while port is None:
            line = lines.get(timeout=GUARD)  # gunicorn says where it listens as it starts
            assert line is not None, f"gunicorn exited: {''.join(output)}"
            output.append(line)
            if found := re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", line):
                port = int(found[1])
        for path in (f"/invite/{TOKEN}", f"/private/{TOKEN}/feed.rss"):
            with pytest.raises(urllib.error.HTTPError):  # unknown tokens: 404 (once a worker has booted)
                opener.open(f"http://127.0.0.1:{port}{path}", timeout=GUARD)
    finally:
        proc.terminate()
        proc.wait(timeout=GUARD)
        reader.join(GUARD)
        proc.stdout.close()
    while (line := lines.get_nowait()) is not None:
        output.append(line)
    output = "".join(output)
    assert "/invite/[redacted]" in output and "/private/[redacted]/feed.rss" in output
    assert TOKEN not in output
