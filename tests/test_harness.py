"""The suite's own machinery: the browser tests' HTTP server."""

from __future__ import annotations

import os
import re
import socket
import struct
import subprocess
import sys
import threading

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

