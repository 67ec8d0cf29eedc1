"""A real gunicorn with the project's gunicorn.conf.py, on a socket the test bound itself.

The test binds 127.0.0.1:0 and hands gunicorn the listening socket (`--bind fd://N`), so no port
is ever picked and released; a request made before gunicorn is ready simply waits in the
socket's backlog until a worker accepts it, so nothing polls or sleeps.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from feedapp import ROOT


@dataclass
class Gunicorn:
    """A running gunicorn: its base URL, address and process."""

    url: str
    host: str
    port: int
    proc: subprocess.Popen
    log_path: Path
    final_log: str | None = None  # kept when gunicorn stops

    def log(self) -> str:
        """Everything gunicorn wrote so far (access log and errors); all of it once the `with` block has ended."""
        if self.final_log is not None:
            return self.final_log
        return self.log_path.read_text(errors="replace")


def base_env(tmp_path: Path, db_url: str, **settings: str) -> dict[str, str]:
    """A clean environment for the app: no FEEDAPP_* of the caller's, this database, a fixed secret key."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FEEDAPP_", "FORWARDED_ALLOW_IPS"))}
    env.update(FEEDAPP_DATABASE_URL=db_url, FEEDAPP_SECRET_KEY="k" * 40, FEEDAPP_INSTANCE_PATH=str(tmp_path),
               NO_PROXY="127.0.0.1,localhost")
    env.update(settings)
    return env


@contextmanager
def gunicorn(env: dict[str, str], *args: str) -> Iterator[Gunicorn]:
    """Run `gunicorn -c gunicorn.conf.py --bind fd://N [args] wsgi:app` from the checkout; stop it afterwards."""
    listener = socket.create_server(("127.0.0.1", 0), backlog=128)
    host, port = listener.getsockname()[:2]
    fd = listener.fileno()
    os.set_inheritable(fd, True)
    log_file = tempfile.NamedTemporaryFile("w", prefix="gunicorn-", suffix=".log", delete=False)
    cmd = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"fd://{fd}", *args, "wsgi:app"]
    try:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, pass_fds=(fd,), stdout=log_file, stderr=subprocess.STDOUT,
                                start_new_session=True)
    finally:
        listener.close()  # gunicorn holds the socket now; if it dies, connections are refused instead of waiting
        log_file.close()
    server = Gunicorn(f"http://{host}:{port}", host, port, proc, Path(log_file.name))
    try:
        yield server
    finally:
        proc.terminate()  # the master stops its workers
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the session started for it above
            proc.wait(10)
        server.final_log = server.log_path.read_text(errors="replace")  # a stopped gunicorn has written every line
        server.log_path.unlink(missing_ok=True)


def raw_request(server: Gunicorn, request: bytes, timeout: float = 120) -> bytes:
    """Send bytes as they are (header names with underscores, odd paths) and read the whole answer."""
    with socket.create_connection((server.host, server.port), timeout=timeout) as conn:
        conn.sendall(request)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)
