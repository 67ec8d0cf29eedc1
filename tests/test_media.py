"""/media/…: images from our own origin, fetched from an allow-list of hosts, resized, cached on disk.

X's media host is played by a real HTTP server on loopback (tests/fakemedia.py), named to the
app by MEDIA_TEST_ORIGINS, a test-only key that no setting or environment variable can fill.
"""

from __future__ import annotations

import json
import re
import threading
import time
from datetime import datetime, timezone
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from feedapp import media
from feedapp.ingest.store import store_posts
from feedapp.models import Source
from feedapp.web.media import media_path
from feedapp.xapi.types import XMedia, XPost, XUser

from .auth_helpers import PASSWORD, login, make_staff, path_of
from .fakemedia import Answer, FakeMedia, image_bytes, size_of, upstream_of, with_upstreams

IMG_RE = re.compile(r'<img[^>]* src="([^"]+)"')
YEAR = "max-age=31536000"


@pytest.fixture
def fake_media():
    with FakeMedia() as fake:
        yield fake


@pytest.fixture
def media_app(make_app, fake_media):
    return make_app(MEDIA_TEST_ORIGINS=(fake_media.origin,))


@pytest.fixture
def demo(runner):
    assert runner.invoke(args=["demo"]).exit_code == 0


def signed(app, kind: str, upstream: str, audience: str = "p") -> str:
    """The path the server would mint for upstream."""
    with app.test_request_context():
        return media_path(kind, upstream, audience)


# --- the allow-list ---------------------------------------------------------------------------

@pytest.mark.parametrize("url, ok", [
    ("https://pbs.twimg.com/media/AbC.jpg", True),
    ("https://pbs.twimg.com/profile_images/1/a_normal.jpg", True),
    ("https://abs.twimg.com/sticky/default_profile_images/default_profile_normal.png", True),
    ("https://demo-media.invalid/photo-1.jpg", True),
    ("http://pbs.twimg.com/media/AbC.jpg", False),  # https only
    ("https://pbs.twimg.com:8443/media/AbC.jpg", False),
    ("https://pbs.twimg.com.evil.example/media/AbC.jpg", False),
    ("https://pbs.twimg.com@evil.example/media/AbC.jpg", False),
    ("https://user@pbs.twimg.com/media/AbC.jpg", False),
    ("https://evil.example/a.jpg", False),
    ("https://video.twimg.com/v/360.mp4", False),  # videos are never proxied
    ("https://127.0.0.1/a.jpg", False),
    ("https://[::1]/a.jpg", False),
    ("https://169.254.169.254/latest/meta-data", False),
    ("file:///etc/passwd", False),
    ("ftp://pbs.twimg.com/a.jpg", False),
    ("https://pbs.twimg.com:bad/a.jpg", False),
    ("", False),
])
def test_only_x_media_hosts_are_allowed(url, ok):
    assert media.allowed(url) is ok


def test_a_test_origin_is_allowed_only_where_named():
    assert media.allowed("http://127.0.0.1:8123/a.jpg", ("http://127.0.0.1:8123",))
    assert not media.allowed("http://127.0.0.1:8124/a.jpg", ("http://127.0.0.1:8123",))
    assert not media.allowed("http://127.0.0.1:8123/a.jpg")


def test_a_signed_url_outside_the_allow_list_is_refused(app, client):
    for upstream in ("https://evil.example/a.jpg", "file:///etc/passwd", "http://127.0.0.1:1/a.jpg"):
        response = client.get(signed(app, "photo", upstream))
        assert response.status_code == 404, upstream


def test_forged_or_mangled_urls_get_the_plain_404(app, client):
    good = signed(app, "photo", "https://pbs.twimg.com/media/AbC.jpg")
    as_json = {"Accept": "application/json"}  # an HTML 404 names its own path in the footer's links
    unknown = client.get("/no/such/page", headers=as_json)
    _, _, kind, audience, sig, encoded = good.split("/")
    for path in (f"/media/{kind}/{audience}/{'A' * len(sig)}/{encoded}",  # wrong signature
                 f"/media/{kind}/s/{sig}/{encoded}",  # another audience under the same signature
                 f"/media/avatar/{audience}/{sig}/{encoded}",  # another size
                 f"/media/{kind}/{audience}/{sig}/{encoded}x",  # another URL
                 f"/media/{kind}/{audience}/{sig}/%%%",
                 f"/media/{kind}/{audience}/%C3%A9{sig[2:]}/{encoded}",  # not ASCII
                 f"/media/{kind}/{audience}/{sig}/%C3%A9",
                 f"/media/{kind}/{audience}/{sig}/{encoded[:-1]}%FF",
                 f"/media/huge/{audience}/{sig}/{encoded}"):
        response = client.get(path, headers=as_json)
        assert response.status_code == 404, path
        assert response.data == unknown.data


# --- fetching, resizing, caching --------------------------------------------------------------

def test_a_photo_is_fetched_once_resized_and_cached_for_good(media_app, fake_media):
    fake_media.answers["/media/big.jpg"] = Answer(image_bytes(1600, 900, exif=b"Exif\x00\x00secret-gps"))
    client = media_app.test_client()
    path = signed(media_app, "photo", fake_media.url("/media/big.jpg"))
    first = client.get(path)
    assert first.status_code == 200 and first.mimetype == "image/jpeg"
    assert size_of(first.data) == (680, 382)  # aspect kept, as wide as pages declare it (render.post.scaled)
    assert b"secret-gps" not in first.data  # metadata stripped
    assert first.headers["Cache-Control"] == f"public, {YEAR}, immutable"
    assert first.headers["Content-Length"] == str(len(first.data))
    etag = first.headers["ETag"]
    again = client.get(path)
    assert again.data == first.data and fake_media.hits["/media/big.jpg"] == 1  # from the disk cache
    not_modified = client.get(path, headers={"If-None-Match": etag})
    assert not_modified.status_code == 304 and not not_modified.data


def test_an_avatar_is_80_px_and_a_small_image_is_never_enlarged(media_app, fake_media):
    fake_media.answers["/a.png"] = Answer(image_bytes(400, 400, "PNG"), headers={"Content-Type": "image/png"})
    fake_media.answers["/small.jpg"] = Answer(image_bytes(300, 200))
    client = media_app.test_client()
    avatar = client.get(signed(media_app, "avatar", fake_media.url("/a.png")))
    assert avatar.status_code == 200 and size_of(avatar.data) == (80, 80) and avatar.mimetype == "image/jpeg"
    small = client.get(signed(media_app, "photo", fake_media.url("/small.jpg")))
    assert size_of(small.data) == (300, 200)


@pytest.mark.parametrize("answer", [
    Answer(b"<html>not an image</html>", headers={"Content-Type": "text/html"}),
    Answer(b"GIF89a but not really", headers={"Content-Type": "image/gif"}),  # says image, does not decode
    Answer(image_bytes(10, 10), headers={}),  # no content type
    Answer(b"", status=404, headers={"Content-Type": "text/plain"}),
])
def test_non_images_are_refused(media_app, fake_media, answer):
    fake_media.answers["/x"] = answer
    response = media_app.test_client().get(signed(media_app, "photo", fake_media.url("/x")))
    assert response.status_code == 404


def test_an_oversized_image_is_refused(media_app, fake_media, monkeypatch):
    monkeypatch.setattr(media, "MAX_BYTES", 50_000)
    fake_media.answers["/huge.png"] = Answer(bytes(range(256)) * 400, headers={"Content-Type": "image/png"})
    response = media_app.test_client().get(signed(media_app, "photo", fake_media.url("/huge.png")))
    assert response.status_code == 404


def test_a_redirect_is_followed_only_inside_the_allow_list(media_app, fake_media):
    fake_media.answers["/ok.jpg"] = Answer(image_bytes(20, 10))
    fake_media.answers["/hop"] = Answer(b"", status=302, headers={"Location": "/ok.jpg"})
    fake_media.answers["/away"] = Answer(b"", status=302, headers={"Location": "http://127.0.0.2:1/x.jpg"})
    fake_media.answers["/meta"] = Answer(b"", status=301, headers={"Location": "http://169.254.169.254/"})
    fake_media.answers["/file"] = Answer(b"", status=302, headers={"Location": "file:///etc/passwd"})
    client = media_app.test_client()
    assert client.get(signed(media_app, "photo", fake_media.url("/hop"))).status_code == 200
    for hop in ("/away", "/meta", "/file"):
        assert client.get(signed(media_app, "photo", fake_media.url(hop))).status_code == 404, hop


def test_an_upstream_failure_is_a_502(media_app, fake_media, closed_port):
    fake_media.answers["/boom.jpg"] = Answer(b"oops", status=503, headers={"Content-Type": "text/plain"})
    client = media_app.test_client()
    assert client.get(signed(media_app, "photo", fake_media.url("/boom.jpg"))).status_code == 502
    app = media_app  # a host that does not answer at all
    app.extensions["feedapp.media"].extra_origins += (f"http://127.0.0.1:{closed_port}",)
    assert client.get(signed(app, "photo", f"http://127.0.0.1:{closed_port}/a.jpg")).status_code == 502


def test_two_requests_for_one_uncached_image_fetch_it_once(media_app, fake_media):
    release = threading.Event()
    fake_media.answers["/slow.jpg"] = Answer(image_bytes(40, 40), wait=release)
    path = signed(media_app, "photo", fake_media.url("/slow.jpg"))
    results = []

    def fetch():
        results.append(media_app.test_client().get(path).status_code)

    threads = [threading.Thread(target=fetch) for _ in range(2)]
    for thread in threads:
        thread.start()
    while fake_media.hits["/slow.jpg"] < 1:  # the first fetch is under way upstream
        threading.Event().wait(0.01)
    release.set()
    for thread in threads:
        thread.join(60)
    assert results == [200, 200] and fake_media.hits["/slow.jpg"] == 1


def test_two_workers_sharing_the_cache_fetch_an_uncached_image_once(tmp_path, fake_media):
    """Two caches on one folder, as two gunicorn workers have: each opens its own lock file, as a process does."""
    release = threading.Event()
    fake_media.answers["/shared.jpg"] = Answer(image_bytes(50, 30), wait=release)
    workers = [media.MediaCache(tmp_path, 10**7, extra_origins=(fake_media.origin,)) for _ in range(2)]
    results = []

    def fetch(cache):
        results.append(cache.get("photo", fake_media.url("/shared.jpg")).size)

    threads = [threading.Thread(target=fetch, args=(cache,)) for cache in workers]
    threads[0].start()
    while fake_media.hits["/shared.jpg"] < 1:  # the first worker's fetch is under way upstream
        threading.Event().wait(0.01)
    threads[1].start()
    # The second worker waits on the first one's lock (the kernel lists it as blocked: "->" in /proc/locks).
    (lock_file,) = (tmp_path / ".locks").iterdir()
    inode = f":{lock_file.stat().st_ino} "
    deadline = time.monotonic() + 60
    while not any("->" in line and inode in line for line in Path("/proc/locks").read_text().splitlines()):
        assert time.monotonic() < deadline, "the second worker never waited for the first one's fetch"
        threading.Event().wait(0.01)
    release.set()
    for thread in threads:
        thread.join(60)
    assert len(results) == 2 and results[0] == results[1] > 0
    assert fake_media.hits["/shared.jpg"] == 1


def test_the_disk_cache_keeps_to_its_cap_least_recently_used_first(tmp_path, fake_media):
    for name in "abc":
        fake_media.answers[f"/{name}.jpg"] = Answer(image_bytes(600, 600, color=(ord(name), 90, 200)))
    cache = media.MediaCache(tmp_path / "media", cap_bytes=1, extra_origins=(fake_media.origin,))
    one = cache.get("photo", fake_media.url("/a.jpg")).size
    cache.cap_bytes = one * 2 + one // 2  # room for two of these
    import os
    first = cache.get("photo", fake_media.url("/a.jpg")).path
    assert first.exists()
    os.utime(first, (1, 1))  # long unused
    second = cache.get("photo", fake_media.url("/b.jpg")).path
    os.utime(second, (2, 2))
    cache.get("photo", fake_media.url("/a.jpg"))  # used again: now the most recent
    cache.get("photo", fake_media.url("/c.jpg"))
    assert first.exists() and not second.exists()
    total = sum(p.stat().st_size for p in (tmp_path / "media").glob("??/*.jpg"))
    assert total <= cache.cap_bytes


# --- who may see what -------------------------------------------------------------------------

def staff_only_images(html: str) -> list[str]:
    return [src for src in IMG_RE.findall(html) if src.startswith("/media/") and "/s/" in src]


def test_demo_pages_load_every_image_from_our_origin(demo, client):
    for url in ("/", "/offices/lyon", "/offices/columbus"):
        sources = IMG_RE.findall(client.get(url).get_data(as_text=True))
        assert sources and all(src.startswith("/media/") for src in sources), sources
        for src in set(sources):
            response = client.get(src)
            assert response.status_code == 200 and response.mimetype == "image/jpeg", src
            if "/avatar/" in src:
                assert size_of(response.data) == (80, 80)
            assert upstream_of(src).startswith("https://demo-media.invalid/")


def test_staff_only_media_is_refused_to_anonymous_readers_and_served_to_staff(demo, app, sessions):
    make_staff(sessions, "alice")
    staff = app.test_client()
    assert login(staff, "alice", PASSWORD).status_code == 303
    html = staff.get("/").get_data(as_text=True)
    images = staff_only_images(html)
    assert images  # pages for staff mint staff-only image URLs (the staff-only account's avatar among them)
    anonymous = app.test_client()
    as_json = {"Accept": "application/json"}
    unknown = anonymous.get("/no/such/page", headers=as_json)
    for src in images:
        refused = anonymous.get(src, headers=as_json)
        assert refused.status_code == 404 and refused.data == unknown.data, src
        served = staff.get(src)
        assert served.status_code == 200, src
        assert served.headers["Cache-Control"] == f"private, {YEAR}, immutable"
    # A public page never shows the staff-only account's pictures, not even under a public URL.
    public = anonymous.get("/").get_data(as_text=True)
    assert "avatar-hpl_allhands" not in " ".join(upstream_of(s) for s in IMG_RE.findall(public))


def test_a_private_feed_link_carries_its_images_and_a_new_link_ends_them(demo, app, runner, sessions):
    make_staff(sessions, "ann")

    def feed_url() -> str:
        result = runner.invoke(args=["users", "feed-url", "ann"])
        assert result.exit_code == 0, result.output
        return result.output.strip().split()[-1].replace("feed.rss", "feed.json")

    reader = app.test_client()  # an RSS reader: no cookie
    doc = json.loads(reader.get(path_of(feed_url())).data)
    images = {url for item in doc["items"] for url in [item.get("image"), item["author"].get("avatar")] if url}
    allhands = [url for url in images if "avatar-hpl_allhands" in upstream_of(url)]
    assert allhands and all(urlsplit(url).scheme == "http" for url in images)  # absolute
    assert all(urlsplit(url).path.split("/")[3].startswith("f") for url in images)
    for url in images:
        assert reader.get(path_of(url)).status_code == 200, url
    feed_url()  # a new link: the old one, and its images, stop working
    assert reader.get(path_of(allhands[0])).status_code == 404


# --- the setting ------------------------------------------------------------------------------

AUTHOR = XUser("42", "HarborPineNews", "Harbor & Pine News", avatar_url="https://pbs.twimg.com/profile_images/9/me_normal.jpg")


def store_x_photo(app, *more: XMedia) -> None:
    from feedapp.db import sessions as app_sessions
    with app_sessions(app)() as session:
        source = Source(x_id="42", username="HarborPineNews", display_name="News")
        session.add(source)
        session.flush()
        post = XPost(id="2900000000000000009", author=AUTHOR, text="Dock 4", links=(),
                     media=(XMedia("3_9", "photo", "https://pbs.twimg.com/media/Dock4.jpg", None, 1600, 900, "Dock"), *more),
                     created_at=datetime(2026, 11, 30, 12, tzinfo=timezone.utc))
        store_posts(session, source, [post])
        session.commit()


@pytest.mark.parametrize("proxy", [True, False])
def test_the_setting_chooses_our_route_or_x_in_pages_and_feeds(make_app, proxy):
    app = make_app(FEEDAPP_MEDIA_PROXY=proxy)
    store_x_photo(app)
    client = app.test_client()
    sources = IMG_RE.findall(client.get("/").get_data(as_text=True))
    feed = json.loads(client.get("/feed.json").data)["items"][0]
    if proxy:
        assert sources and all(src.startswith("/media/") for src in sources)
        assert upstream_of(feed["image"]) == "https://pbs.twimg.com/media/Dock4?format=jpg&name=small"
        assert feed["image"].startswith("http://localhost/media/photo/p/")
        assert feed["author"]["avatar"].startswith("http://localhost/media/avatar/p/")
        assert upstream_of(feed["author"]["avatar"]) == "https://pbs.twimg.com/profile_images/9/me_200x200.jpg"
    else:
        assert "https://pbs.twimg.com/media/Dock4?format=jpg&amp;name=small" in sources
        assert "https://pbs.twimg.com/profile_images/9/me_bigger.jpg" in sources
        assert feed["image"] == "https://pbs.twimg.com/media/Dock4?format=jpg&name=small"
        assert feed["author"]["avatar"] == "https://pbs.twimg.com/profile_images/9/me_400x400.jpg"


@pytest.mark.parametrize("proxy", [True, False])
def test_a_picture_on_a_host_x_never_uses_is_not_shown_anywhere(make_app, proxy):
    """Malformed data naming another host: no <img> for it in pages or feeds (the CSP would refuse it anyway)."""
    app = make_app(FEEDAPP_MEDIA_PROXY=proxy)
    store_x_photo(app, XMedia("3_10", "photo", "https://tracker.example.net/pixel.jpg", None, 10, 10, "pixel"))
    client = app.test_client()
    page = client.get("/").get_data(as_text=True)
    assert len(IMG_RE.findall(page)) >= 2  # the X photo and the avatar still show
    for body in (page, client.get("/feed.rss").get_data(as_text=True), client.get("/feed.json").get_data(as_text=True)):
        assert "tracker.example.net" not in with_upstreams(body)


VIDEO = XMedia("7_9", "video", None, "https://pbs.twimg.com/ext_tw_video_thumb/9/pu/img/Dock4.jpg", 1280, 720,
               "Dock 4 at night", 5000, ({"url": "https://video.twimg.com/ext_tw_video/9/pu/vid/480x270/d.mp4",
                                           "bit_rate": 256000, "content_type": "video/mp4"},))


class PageLoads(HTMLParser):
    """What a page makes the browser load, by CSP directive: img-src (img src, video poster) and media-src."""

    def __init__(self):
        super().__init__()
        self.loads: dict[str, set[str]] = {"img-src": set(), "media-src": set()}

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for directive, url in (("img-src", tag == "img" and attrs.get("src")),
                               ("img-src", tag == "video" and attrs.get("poster")),
                               ("media-src", tag in ("video", "source") and attrs.get("src"))):
            if url:
                parts = urlsplit(url)
                self.loads[directive].add("'self'" if not parts.netloc else f"{parts.scheme}://{parts.netloc}")


def policy(response) -> dict[str, set[str]]:
    """A response's Content-Security-Policy as directive -> sources."""
    directives = (d.split() for d in response.headers["Content-Security-Policy"].split(";"))
    return {name: set(sources) for name, *sources in directives}


@pytest.mark.parametrize("proxy", [True, False])
def test_the_csp_lets_pages_load_exactly_the_hosts_they_name(make_app, proxy):
    """Images from X's hosts only with the proxy off; videos from video.twimg.com in both modes."""
    app = make_app(FEEDAPP_MEDIA_PROXY=proxy)
    store_x_photo(app, VIDEO)
    client = app.test_client()
    for path in ("/", "/posts/2900000000000000009"):
        response = client.get(path)
        loads = PageLoads()
        loads.feed(response.get_data(as_text=True))
        csp = policy(response)
        images = {"'self'"} if proxy else {"https://pbs.twimg.com"}  # X's avatar, photo and poster
        assert loads.loads == {"img-src": images, "media-src": {"https://video.twimg.com"}}, path
        assert csp["img-src"] == {"'self'"} | ({"https://pbs.twimg.com", "https://abs.twimg.com"} if not proxy
                                              else set()), path
        assert csp["media-src"] == {"https://video.twimg.com"}
    for path in ("/login", "/offline", "/no-such-page"):
        assert policy(client.get(path))["img-src"] == csp["img-src"], path
    # The worker fetches only our own origin (templates/sw.js), whatever the setting.
    assert client.get("/sw.js").headers["Content-Security-Policy"] == "default-src 'self'"


def test_demo_pictures_come_from_our_route_even_with_the_setting_off(make_app):
    app = make_app(FEEDAPP_MEDIA_PROXY=False)
    assert app.test_cli_runner().invoke(args=["demo"]).exit_code == 0
    client = app.test_client()
    sources = IMG_RE.findall(client.get("/").get_data(as_text=True))
    assert sources and all(src.startswith("/media/") for src in sources)
    assert all(client.get(src).status_code == 200 for src in set(sources))
