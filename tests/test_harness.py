"""The suite's own machinery: the browser tests' HTTP server, and the rule that CI runs on every engine."""

from __future__ import annotations

import os
import re
import socket
import struct
import subprocess
import sys
import threading

import pytest

from feedapp import ROOT
from tests.browser import serve

# A generous guard so a broken helper fails instead of hanging the suite; the waits below end at once when it works.
DEADLINE = 60.0


class Body:
    """A response body that sends its bytes, then holds the request open until the test lets it finish."""

    def __init__(self, data: bytes, release: threading.Event):
        self.data, self.release, self.closed = data, release, threading.Event()

    def __iter__(self):
        yield self.data
        assert self.release.wait(DEADLINE), "the test never released the response"

    def close(self) -> None:
        self.closed.set()


def reset(sock: socket.socket) -> None:
    """Close a client socket the abrupt way a browser does when a context closes mid-load: a TCP RST."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def read_response(sock: socket.socket, length: int) -> bytes:
    """Everything up to the end of a response body of `length` bytes."""
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < length:
        chunk = sock.recv(65536)
        assert chunk, f"the server closed the connection early: {data!r}"
        data += chunk
    return data


def test_serve_closes_the_response_when_the_browser_resets_the_connection():
    # Werkzeug closes a response only after draining the request socket, and that read raises when the client
    # resets the connection: WhiteNoise's open file leaked (a ResourceWarning, an error under pytest.ini).
    release, bodies = threading.Event(), []

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "5")])
        bodies.append(Body(b"hello", release))
        return bodies[-1]

    with serve(app) as url:
        port = int(url.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=DEADLINE) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert read_response(sock, 5).endswith(b"\r\n\r\nhello")
            reset(sock)
        release.set()  # the server now drains a reset socket
    # serve() waits for requests in flight, so this one is over: its body must have been closed.
    assert [body.closed.is_set() for body in bodies] == [True]


# --- CI=true: a green run means every engine was tested -----------------------------------------------------------

PROBE = '''
def test_on_postgresql(pg_url):
    assert pg_url.startswith("postgresql")
'''


def run_probe(tmp_path, env_changes: dict[str, str]) -> subprocess.CompletedProcess:
    """Run one PostgreSQL test in a fresh pytest with the suite's conftest and settings, as CI would."""
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k != "CI" and not k.startswith(("PYTEST_", "FEEDAPP_"))}
    env.update(env_changes)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-c", str(ROOT / "pytest.ini"), "-p", "tests.conftest",
         "-p", "no:cacheprovider", "-n", "0", "-rs", f"--basetemp={tmp_path / 'base'}", str(probe)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def closed_port_url(sock: socket.socket) -> str:
    """A PostgreSQL URL on a 127.0.0.1 port that is bound (so no one else gets it) but not listening."""
    sock.bind(("127.0.0.1", 0))
    return f"postgresql+psycopg://postgres@127.0.0.1:{sock.getsockname()[1]}/postgres"


def test_with_ci_true_a_missing_postgresql_fails_the_run(tmp_path):
    with socket.socket() as sock:
        done = run_probe(tmp_path, {"CI": "true", "FEEDAPP_TEST_POSTGRES": closed_port_url(sock)})
    out = done.stdout + done.stderr
    assert done.returncode == 1, out
    assert "1 error" in out and "skipped" not in out, out
    assert "PostgreSQL not reachable at postgresql+psycopg://postgres@127.0.0.1:" in out, out
    assert "CI=true: a CI run must test on it" in out, out


def test_without_ci_a_missing_postgresql_skips_and_says_why(tmp_path):
    with socket.socket() as sock:
        url = closed_port_url(sock)
        done = run_probe(tmp_path, {"FEEDAPP_TEST_POSTGRES": url})
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "1 skipped" in out, out
    assert f"PostgreSQL not reachable at {url} (FEEDAPP_TEST_POSTGRES): OperationalError" in out, out


# --- .ci/run: start the database servers CI=true needs, then exactly `make test` ----------------------------------

# Stand-ins for the server commands, on PATH before the real ones: this machine's servers are shared and must not be
# stopped for a test. Each records its call; starting a server makes its probe answer, as the real ones do.
STUBS = {
    "pg_isready": 'test -e "$STATE/pg_up"',
    "pg_ctlcluster": 'echo "pg_ctlcluster $*" >> "$STATE/calls"; touch "$STATE/pg_up"',
    "redis-cli": 'test -e "$STATE/redis_up" && echo PONG || echo "Could not connect"',
    "redis-server": 'echo "redis-server $*" >> "$STATE/calls"; touch "$STATE/redis_up"',
    "make": 'echo "make $* CI=$CI" >> "$STATE/calls"',
}


def run_ci(tmp_path, up: set[str]) -> tuple[subprocess.CompletedProcess, list[str]]:
    """.ci/run with the server commands stubbed, the servers in `up` already answering; its calls, in order."""
    stubs, state = tmp_path / "bin", tmp_path / "state"
    stubs.mkdir()
    state.mkdir()
    for name, body in STUBS.items():
        (stubs / name).write_text(f"#!/bin/sh\n{body}\n")
        (stubs / name).chmod(0o755)
    for server in up:
        (state / f"{server}_up").touch()
    env = {"PATH": f"{stubs}:/usr/bin:/bin", "STATE": str(state), "HOME": str(tmp_path)}
    done = subprocess.run([str(ROOT / ".ci" / "run")], env=env, capture_output=True, text=True, timeout=DEADLINE)
    calls = (state / "calls").read_text().splitlines() if (state / "calls").exists() else []
    return done, calls


def test_ci_run_starts_stopped_servers_waits_for_them_then_runs_make_test(tmp_path):
    done, calls = run_ci(tmp_path, up=set())
    assert done.returncode == 0, done.stderr
    clusters = os.listdir("/etc/postgresql") if os.path.isdir("/etc/postgresql") else []
    newest = max(clusters, key=lambda v: [int(n) for n in re.findall(r"\d+", v)], default=None)
    postgres = [f"pg_ctlcluster --skip-systemctl-redirect {newest} main start"] if newest else []
    redis = ['redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save  --appendonly no '
             '--dir /var/lib/redis --logfile /var/log/redis/ci.log']
    assert calls == postgres + redis + ["make test CI=true"]
    assert "Redis answers" in done.stdout and ("PostgreSQL answers" in done.stdout) == bool(clusters)


def test_ci_run_leaves_running_servers_alone(tmp_path):
    done, calls = run_ci(tmp_path, up={"pg", "redis"})
    assert done.returncode == 0, done.stderr
    assert calls == ["make test CI=true"]  # the README's test command, and nothing else


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_url_builders_made_on_first_use_build_what_eager_ones_build(app):
    """conftest makes werkzeug's URL builders on first use: for every rule, the same URLs as builders made at once."""
    from werkzeug.routing.rules import Rule

    def sample(converter):
        try:
            converter.to_url("a b/é?")
            return "a b/é?"
        except ValueError:  # numbers only (post ids)
            return 12345

    rules = list(app.url_map.iter_rules())
    assert len(rules) > 50
    for rule in rules:
        values = {name: sample(conv) for name, conv in rule._converters.items()}
        for append_unknown, extra in ((False, {}), (True, {"x": "1&2"})):
            eager = Rule._compile_builder_eager(rule, append_unknown).__get__(rule, None)
            wanted = eager(**values, **extra)
            assert rule.build({**values, **extra}, append_unknown) == wanted, rule.rule
        assert rule._build.__name__ != "build" and rule._build_unknown.__name__ != "build"  # made once, then kept


def test_shared_template_code_keeps_apart_environments_set_up_otherwise(tmp_path):
    """conftest shares compiled templates between apps: an Environment with another finalize compiles its own."""
    from jinja2 import Environment, FileSystemLoader

    from tests.conftest import SharedTemplateCode

    (tmp_path / "t.html").write_text("{{ x }}")
    cache = SharedTemplateCode()

    def shout(value):
        return str(value).upper()

    def env(**options):
        return Environment(loader=FileSystemLoader(tmp_path), bytecode_cache=cache, **options)

    assert env().get_template("t.html").render(x="a") == "a"
    assert env(finalize=shout).get_template("t.html").render(x="a") == "A"
    assert env().get_template("t.html").render(x="b") == "b"
    assert len(cache.code) == 2
    (tmp_path / "t.html").write_text("<{{ x }}>")  # an edited template is compiled again (jinja2's source checksum)
    assert env().get_template("t.html").render(x="c") == "<c>"
