"""Images from X's media hosts, fetched by the server, resized to the sizes pages use, cached on disk.

No Flask: the web layer (feedapp.web.media) decides who may see an image and calls MediaCache.get.
Only URLs on an allow-list of hosts are ever fetched (X's image CDN, and the demo's reserved
host, answered from files in the package), redirects included, so the route is no open proxy.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import logging
import os
import re
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests
from PIL import Image, ImageOps, UnidentifiedImageError

from feedapp.render.post import scaled

log = logging.getLogger(__name__)

# X's image CDN: photos, video posters (pbs.twimg.com/ext_tw_video_thumb/…), profile images;
# abs.twimg.com serves default avatars. Videos themselves (video.twimg.com) are never proxied.
X_MEDIA_HOSTS = ("pbs.twimg.com", "abs.twimg.com")
# RFC 2606 reserves .invalid: this host never resolves, so its URLs are answered from DEMO_FOLDER only.
DEMO_HOST = "demo-media.invalid"
DEMO_FOLDER = Path(__file__).resolve().parent / "demo" / "media"
DEMO_NAME_RE = re.compile(r"^/([a-z0-9][a-z0-9_-]{0,60}\.(?:png|jpg))$")
# The boxes pages draw into, at 2x: avatars 40 CSS px, photos at most 340 CSS px wide (X's name=small is 680).
SIZES = {"avatar": 80, "photo": 680, "screen": 1280}  # screen: a break-room screen's photo (about half of 1920 px)
MAX_BYTES = 8 * 1024 * 1024  # X's photos are at most 5 MB; anything bigger is not one of them
MAX_PIXELS = 40_000_000  # a decompression bomb is refused before it is decoded
MAX_REDIRECTS = 3
TIMEOUT = 10.0
RESCAN_EVERY = 100
LOCK_STRIPES = 256  # lock files shared by all images: two images rarely share one, and none is ever deleted
IMAGE_TYPES = ("image/jpeg", "image/png", "image/webp", "image/gif")


class MediaError(Exception):
    """An image that cannot be served."""


class Refused(MediaError):
    """A URL outside the allow-list, or an upstream answer that is not an acceptable image (404 to readers)."""


class UpstreamFailed(MediaError):
    """The media host did not answer, or answered with an error (502 to readers)."""


@dataclass(frozen=True)
class Cached:
    """One resized image on disk."""

    path: Path
    etag: str
    size: int
    content_type: str = "image/jpeg"


def allowed(url: str, extra_origins: tuple[str, ...] = ()) -> bool:
    """Whether url may be fetched: https on an X media host, the demo host, or an origin tests name."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return False
    if parts.username or parts.password or not parts.hostname:
        return False
    if f"{parts.scheme}://{parts.netloc}" in extra_origins:  # tests: a loopback server standing in for X
        return True
    if parts.scheme != "https" or port not in (None, 443):
        return False
    return parts.hostname in X_MEDIA_HOSTS or parts.hostname == DEMO_HOST


class MediaCache:
    """Resized images on disk under folder, at most cap_bytes in all (least recently used go first)."""

    def __init__(self, folder: str | os.PathLike, cap_bytes: int, extra_origins: tuple[str, ...] = (),
                 timeout: float = TIMEOUT, http: requests.Session | None = None):
        self.folder = Path(folder)
        self.cap_bytes = cap_bytes
        self.extra_origins = tuple(extra_origins)
        self.timeout = timeout
        self.http = http or requests.Session()
        self.http.trust_env = False  # no proxy from the environment, no .netrc credentials sent to X
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        # Bytes on disk as this process last counted them plus what it wrote since: the folder is
        # scanned again only when that passes the cap, or every RESCAN_EVERY writes (other
        # processes write too), never on every miss.
        self._total: int | None = None
        self._writes = 0

    def get(self, kind: str, url: str) -> Cached:
        """The resized image of url for kind ("avatar", "photo"), fetched on first use. Raises MediaError."""
        if kind not in SIZES or not allowed(url, self.extra_origins):
            raise Refused("not an allowed media URL")
        key = hashlib.sha256(f"{kind}\n{url}".encode()).hexdigest()
        path = self.folder / key[:2] / f"{key}.jpg"
        hit = self._hit(path, key)
        if hit:
            return hit
        # One fetch per image on this machine: a second request for it, in this process or in another
        # worker, waits for the first and then finds it on disk. The file is written under a temporary
        # name and renamed, so a reader never sees half an image.
        with self._lock(key), self._file_lock(key):
            hit = self._hit(path, key)
            if hit:
                return hit
            data = resize(self._download(url), SIZES[kind])
            self._store(path, data)
        self._writes += 1
        if self._total is not None:
            self._total += len(data)
        if self._total is None or self._total > self.cap_bytes or self._writes % RESCAN_EVERY == 0:
            self.evict()
        return Cached(path, key[:32], len(data))

    def _hit(self, path: Path, key: str) -> Cached | None:
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return None
        with contextlib.suppress(OSError):  # a file evicted meanwhile is still read below, or refetched
            os.utime(path)  # "recently used": eviction goes by modification time
        return Cached(path, key[:32], size)

    def _lock(self, key: str) -> threading.Lock:
        with self._locks_guard:
            if len(self._locks) > 1000:
                self._locks = {k: v for k, v in self._locks.items() if v.locked()}
            return self._locks.setdefault(key, threading.Lock())

    @contextlib.contextmanager
    def _file_lock(self, key: str):
        # flock, not a lock file created and deleted per image: a waiter would hold a deleted inode.
        # The wait is bounded by the holder's fetch timeout; the lock ends with the holder's process.
        folder = self.folder / ".locks"
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f"{int(key[:8], 16) % LOCK_STRIPES:03d}", "a+b") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _download(self, url: str) -> bytes:
        if urlsplit(url).hostname == DEMO_HOST:
            return demo_bytes(url)
        for _ in range(MAX_REDIRECTS + 1):
            if not allowed(url, self.extra_origins):
                raise Refused("redirected outside the allow-list")
            try:
                with self.http.get(url, timeout=self.timeout, stream=True, allow_redirects=False,
                                   headers={"Accept": "image/jpeg,image/png,image/webp,image/*;q=0.8"}) as response:
                    if response.is_redirect:
                        url = urljoin(url, response.headers.get("Location", ""))
                        continue
                    if response.status_code == 404 or response.status_code == 410:
                        raise Refused(f"upstream {response.status_code}")
                    if response.status_code != 200:
                        raise UpstreamFailed(f"upstream {response.status_code}")
                    kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
                    if kind not in IMAGE_TYPES:
                        raise Refused(f"upstream content type {kind or 'missing'}")
                    declared = response.headers.get("Content-Length")
                    if declared and declared.isdigit() and int(declared) > MAX_BYTES:
                        raise Refused("upstream image too large")
                    body = bytearray()
                    for chunk in response.iter_content(64 * 1024):
                        body += chunk
                        if len(body) > MAX_BYTES:
                            raise Refused("upstream image too large")
                    return bytes(body)
            except requests.RequestException as exc:
                raise UpstreamFailed(f"upstream unreachable: {type(exc).__name__}") from None
        raise Refused("too many redirects")

    def _store(self, path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def evict(self) -> int:
        """Delete the least recently used images until the cache fits its cap; the number deleted."""
        files = []
        for path in self.folder.glob("??/*.jpg"):
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            files.append((stat.st_mtime, stat.st_size, path))
        total = sum(size for _, size, _ in files)
        deleted = 0
        for _, size, path in sorted(files, key=lambda f: f[0]):
            if total <= self.cap_bytes:
                break
            path.unlink(missing_ok=True)
            total -= size
            deleted += 1
        self._total = total
        if deleted:
            log.info("media cache evicted=%d bytes=%d cap=%d", deleted, total, self.cap_bytes)
        return deleted


def is_demo(url: str | None) -> bool:
    """Whether url names one of the demo's bundled images."""
    try:
        return bool(url) and urlsplit(url).hostname == DEMO_HOST
    except ValueError:
        return False


def demo_bytes(url: str) -> bytes:
    """A bundled demo image by its https://demo-media.invalid/NAME URL."""
    match = DEMO_NAME_RE.match(urlsplit(url).path)
    if not match:
        raise Refused("no such demo image")
    try:
        return (DEMO_FOLDER / match[1]).read_bytes()
    except FileNotFoundError:
        raise Refused("no such demo image") from None


def resize(data: bytes, box: int) -> bytes:
    """data decoded, fitted inside box×box (never enlarged, aspect kept), as a baseline JPEG without metadata."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > MAX_PIXELS:
                raise Refused("image has too many pixels")
            image.load()
            image = ImageOps.exif_transpose(image)  # the orientation EXIF gave, before EXIF is dropped
            size = scaled(image.width, image.height, box)  # the very width and height pages declare
            if size != image.size:
                image = image.resize(size, Image.Resampling.LANCZOS)
            if image.mode != "RGB":
                # Transparent avatars (PNG) on white: JPEG has no alpha.
                rgba = image.convert("RGBA")
                image = Image.new("RGB", rgba.size, (255, 255, 255))
                image.paste(rgba, mask=rgba.getchannel("A"))
            out = io.BytesIO()
            # No exif=, icc_profile=: nothing of the original's metadata (camera, place) is written.
            image.save(out, "JPEG", quality=80, optimize=True)
            return out.getvalue()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise Refused("not a decodable image") from None
