"""A real HTTP server on loopback standing in for X's media host (pbs.twimg.com), and image helpers."""

from __future__ import annotations

import base64
import io
import re
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from PIL import Image

from tests.loopback import StopsAtOnce


def image_bytes(width: int, height: int, fmt: str = "JPEG", color=(200, 80, 40), **save) -> bytes:
    """A plain image of that size, encoded as fmt."""
    mode = "RGBA" if fmt == "PNG" else "RGB"
    out = io.BytesIO()
    Image.new(mode, (width, height), color).save(out, fmt, **save)
    return out.getvalue()


def size_of(data: bytes) -> tuple[int, int]:
    """Width and height of an encoded image."""
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def upstream_of(path: str) -> str:
    """The upstream URL a /media/… path stands for (its last segment, base64url)."""
    encoded = path.rsplit("/", 1)[1]
    return base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode()


MEDIA_PATH_RE = re.compile(r"/media/[a-z]+/[A-Za-z0-9-]+/[A-Za-z0-9_-]+/([A-Za-z0-9_-]+)")


def with_upstreams(text: str) -> str:
    """text with each /media/… URL followed by the upstream URL it stands for, so a leak check sees what it names."""
    return MEDIA_PATH_RE.sub(lambda m: f"{m[0]} [{upstream_of(m[0])}]", text)


SIGNATURE_RE = re.compile(rb"(/media/[a-z]+/[A-Za-z0-9-]+/)[A-Za-z0-9_-]+/")


def unsigned(body: bytes) -> bytes:
    """body with the signatures of its /media/ URLs blanked: what is left does not depend on the secret key."""
    return SIGNATURE_RE.sub(rb"\1SIGNATURE/", body)


@dataclass
class Answer:
    """What the fake host answers for one path."""

    body: bytes
    status: int = 200
    headers: dict = field(default_factory=lambda: {"Content-Type": "image/jpeg"})
    wait: threading.Event | None = None  # answer only once this is set (concurrency tests)


class FakeMedia:
    """A loopback HTTP server: set answers[path], read hits[path]."""

    def __init__(self):
        self.answers: dict[str, Answer] = {}
        self.hits: Counter[str] = Counter()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                fake.hits[self.path] += 1
                answer = fake.answers.get(self.path)
                if answer is None:
                    self.send_error(404)
                    return
                if answer.wait is not None:
                    answer.wait.wait(60)
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, *args):
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        """The absolute URL of path on this server."""
        return self.origin + path

    def __enter__(self) -> FakeMedia:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.thread.join()
        self.server.server_close()


class _Server(StopsAtOnce, ThreadingHTTPServer):
    daemon_threads = True
