"""Staff-only posts never reach anonymous readers: every surface, one test each, on the demo data.

Staff-only means a source protected on X (the demo's @HPL_AllHands) or marked by an admin (here
@HPL_Lyon), and the quoted text of a protected account inside a public post. The texts to look for
are read back from the database, then searched for in what anonymous readers get, after undoing
the escaping of each format (HTML, HTML inside XML, JSON).
"""

from __future__ import annotations

import html
import json
import logging
import re
import shutil
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from feedapp import accounts, create_app
from feedapp.db import sessions as app_sessions
from feedapp.ingest.sources import apply_profile
from feedapp.ingest.store import bump_content_version, store_posts
from feedapp.models import Office, Post, Source
from feedapp.xapi.types import Post as PostData, QuotedPost, User

PASSWORD = "quay side lantern"
FAST_HASH = "pbkdf2:sha256:1"
OFFICES = ["columbus", "lyon"]
FORMATS = ["rss", "atom", "json"]
QUOTE_SECRET = "SECRET-QUOTE-TEXT"
QUOTING_ID = 2990000000000000001
STAFF_USERNAMES = ["HPL_AllHands", "All Hands (internal)"]
LOCK = '<span class="lock"'
NEXT_RE = re.compile(r'rel="next" href="\?before=(\d+)"')
CSRF_RE = re.compile(r'<input\b[^>]*\bname="csrf_token"[^>]*\bvalue="([^"]+)"')


# --- what is secret, and how to look for it ------------------------------------------------------------------------

def snippet(text: str, links: list[dict]) -> str | None:
    """Up to 40 characters of a post's text that every format shows verbatim (no link span, no line break)."""
    covered = {i for link in links or [] for i in range(link["start"], link["end"])}
    runs, run = [], ""
    for i, char in enumerate(text or ""):
        if i in covered or char == "\n":
            runs.append(run)
            run = ""
        else:
            run += char
    runs.append(run)
    best = max(runs, key=len).strip()[:40].strip()
    return best if len(best) >= 12 else None


def secret_texts(sessions, where) -> list[str]:
    """Snippets of the posts of sources matching `where`, less texts another public source also has (reposts)."""
    with sessions() as s:
        rows = s.execute(select(Post.text, Post.links, Source.protected, Source.staff_only, Source.username)
                         .join(Source, Post.source_id == Source.id)).all()
    public = [(name, text) for text, _, protected, staff_only, name in rows if not (protected or staff_only)]
    found = []
    for text, links, protected, staff_only, username in rows:
        if where(protected, staff_only, username):
            cut = snippet(text, links)
            if cut and not any(cut in other for name, other in public if name != username):
                found.append(cut)
    return found


def strings_of(data) -> list[str]:
    if isinstance(data, str):
        return [data]
    if isinstance(data, dict):
        return [s for key, value in data.items() for s in strings_of(key) + strings_of(value)]
    if isinstance(data, list):
        return [s for value in data for s in strings_of(value)]
    return []


def readable(response) -> str:
    """The response as a reader's software would show it: escapes undone (HTML, HTML-in-XML, JSON)."""
    body = response.get_data(as_text=True)
    if response.mimetype.endswith("json") and body.strip().startswith(("{", "[")):
        body = "\n".join(strings_of(json.loads(body)))
    return html.unescape(html.unescape(body))


def leaks(response_or_text, secrets: list[str]) -> list[str]:
    """The secrets (and staff-only account names) that occur in a response."""
    text = response_or_text if isinstance(response_or_text, str) else readable(response_or_text)
    lowered = text.lower()
    found = [s for s in secrets if s in text]
    found += [name for name in STAFF_USERNAMES if name.lower() in lowered]
    return found


def walk(client, url: str) -> list:
    """Every page of a feed page, following "Older posts" (each response)."""
    pages, next_url = [], url
    while next_url:
        page = client.get(next_url)
        assert page.status_code == 200, next_url
        pages.append(page)
        match = NEXT_RE.search(page.get_data(as_text=True))
        next_url = f"{url}?before={match[1]}" if match else None
        assert len(pages) < 50, "pagination does not end"
    return pages


def public_urls(client) -> list[str]:
    """Every anonymous GET surface that lists posts: feed pages (all older pages too), feeds and the OPML."""
    urls = []
    for base in ["/"] + [f"/offices/{slug}" for slug in OFFICES]:
        first, pages = base, walk(client, base)
        urls.append(first)
        for page in pages[:-1]:
            urls.append(f"{base}?before={NEXT_RE.search(page.get_data(as_text=True))[1]}")
    urls += [f"/feed.{fmt}" for fmt in FORMATS]
    urls += [f"/offices/{slug}/feed.{fmt}" for slug in OFFICES for fmt in FORMATS]
    return urls + ["/feeds.opml"]


# --- the world -------------------------------------------------------------------------------------------------------

class World:
    def __init__(self, app, sessions):
        self.app, self.sessions = app, sessions
        self.staff_texts = secret_texts(sessions, lambda protected, staff_only, _: protected or staff_only)
        self.secrets = self.staff_texts + [QUOTE_SECRET]
        self.allhands = secret_texts(sessions, lambda _p, _s, username: username == "HPL_AllHands")
        self.lyon = secret_texts(sessions, lambda _p, _s, username: username == "HPL_Lyon")

    def anonymous(self):
        return self.app.test_client()

    def staff(self, username: str = "reader", remember: bool = False):
        client = self.app.test_client()
        token = CSRF_RE.search(client.get("/login").get_data(as_text=True))[1]
        data = {"username": username, "password": PASSWORD, "csrf_token": token}
        if remember:
            data["remember"] = "y"
        response = client.post("/login", data=data)
        assert response.status_code == 303, response.get_data(as_text=True)
        return client


def make_staff(sessions, username: str, office: str | None) -> None:
    with sessions() as s:
        place = s.scalar(select(Office).where(Office.slug == office)) if office else None
        user = accounts.create_user(s, username, "", place)
        user.password_hash = generate_password_hash(PASSWORD, method=FAST_HASH)
        s.commit()


@pytest.fixture(scope="module")
def sqlite_demo(sqlite_template, tmp_path_factory):
    """A migrated SQLite file with the demo loaded (by `flask demo`), made once for this module."""
    folder = tmp_path_factory.mktemp("demo")
    shutil.copy(sqlite_template, folder / "demo.db")
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(folder / "instance"),
                      "FEEDAPP_DATABASE_URL": f"sqlite:///{folder / 'demo.db'}"})
    result = app.test_cli_runner().invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    app_sessions(app).kw["bind"].dispose()
    return folder / "demo.db"


@pytest.fixture
def db_url(db_url, request):
    """conftest's fresh database; on SQLite a copy that already holds the demo (loading it costs 0.3 s a test)."""
    if db_url.startswith("sqlite:///"):
        shutil.copy(request.getfixturevalue("sqlite_demo"), db_url.removeprefix("sqlite:///"))
    return db_url


@pytest.fixture
def world(app, runner, sessions, caplog) -> World:
    caplog.set_level(logging.DEBUG, logger="feedapp")
    caplog.set_level(logging.DEBUG, logger="werkzeug")
    with sessions() as s:
        loaded = s.scalar(select(Source.id).limit(1)) is not None
    if not loaded:
        result = runner.invoke(args=["demo"])
        assert result.exit_code == 0, result.output
    with sessions() as s:
        news = s.scalars(select(Source).where(Source.username == "HarborPineNews")).one()
        secret = QuotedPost("2990000000000000000",
                            User("1610468823349927936", "HPL_AllHands", "H&P All Hands (internal)", protected=True),
                            f"{QUOTE_SECRET}: Q4 margin 3.1 %, do not share", (), (),
                            datetime.now(timezone.utc) - timedelta(hours=2))
        store_posts(s, news, [PostData(id=str(QUOTING_ID), author=User("", "", ""), lang="en",
                                       text="Proud of every team this quarter. Thank you!", links=(), media=(),
                                       created_at=datetime.now(timezone.utc) - timedelta(minutes=1), quoted=secret)])
        lyon = s.scalars(select(Source).where(Source.username == "HPL_Lyon")).one()
        lyon.staff_only = True  # what an admin's `sources add HPL_Lyon --staff-only` stores
        bump_content_version(s)
        s.commit()
    make_staff(sessions, "reader", "lyon")
    make_staff(sessions, "columbus.reader", "columbus")
    w = World(app, sessions)
    assert len(w.allhands) == 5 and len(w.lyon) >= 8, (w.allhands, w.lyon)
    yield w
    logged = "\n".join(f"{r.getMessage()} {r.exc_text or ''}"
                       for phase in ("setup", "call") for r in caplog.get_records(phase))
    assert not [s for s in w.secrets if s in logged], "staff-only text in the logs"


# --- anonymous readers, surface by surface ---------------------------------------------------------------------------

def test_front_page_and_every_older_page(world):
    pages = walk(world.anonymous(), "/")
    assert len(pages) >= 2
    for page in pages:
        assert leaks(page, world.secrets) == []
        assert LOCK not in page.get_data(as_text=True)
    assert "Proud of every team" in readable(pages[0])  # the quoting post itself is public…
    assert "Quoted post not available" in readable(pages[0])  # …its protected quote is not


@pytest.mark.parametrize("slug", OFFICES)
def test_office_pages_and_every_older_page(world, slug):
    pages = walk(world.anonymous(), f"/offices/{slug}")
    for page in pages:
        assert leaks(page, world.secrets) == []
        assert LOCK not in page.get_data(as_text=True)


def test_public_feeds(world):
    client = world.anonymous()
    for url in [f"{base}/feed.{fmt}" for base in ["", *(f"/offices/{slug}" for slug in OFFICES)] for fmt in FORMATS]:
        feed = client.get(url)
        assert feed.status_code == 200 and "public" in feed.headers["Cache-Control"], url
        assert leaks(feed, world.secrets) == [], url
        assert "Proud of every team" in readable(feed), url


def test_opml_list(world):
    opml = world.anonymous().get("/feeds.opml")
    assert opml.status_code == 200
    assert leaks(opml, world.secrets) == []


ERRORS = [
    ("/nope", 404), ("/offices/atlantis", 404), ("/offices/atlantis/feed.rss", 404), ("/feed.xml", 404),
    ("/offices/lyon/feed.html", 404), ("/private/not-a-token/feed.rss", 404), ("/private/x/feed.json", 404),
    ("/?before=abc", 400), ("/offices/lyon?before=-1", 400), ("/offices/columbus?before=1e5", 400),
]


def test_error_pages(world):
    client = world.anonymous()
    for url, status in ERRORS:
        for accept in ("text/html", "application/json"):
            page = client.get(url, headers={"Accept": accept})
            assert page.status_code == status, (url, accept)
            assert leaks(page, world.secrets) == [], (url, accept)
    refused = client.post("/offices", data={"office": "lyon"})  # no CSRF token
    assert refused.status_code == 400 and leaks(refused, world.secrets) == []


def head_of(page_html: str) -> str:
    """The <title>, <meta> and <link> tags of a page: what link previews and search engines read."""
    head = page_html.split("</head>", 1)[0]
    return "\n".join(re.findall(r"<title>.*?</title>|<meta\b[^>]*>|<link\b[^>]*>", head, re.S))


def test_meta_tags_of_every_page(world):
    client = world.anonymous()
    urls = public_urls(client)
    html_urls = [u for u in urls if "feed." not in u and not u.endswith(".opml")]
    html_urls += ["/offices", "/login", "/nope", "/?before=abc"]
    for url in html_urls:
        page = client.get(url)
        tags = head_of(page.get_data(as_text=True))
        assert "<meta" in tags and "<title>" in tags, url
        assert leaks(html.unescape(tags), world.secrets) == [], url


def test_other_public_pages_and_files(world):
    client = world.anonymous()
    for url in ("/offices", "/login", "/logout", "/manifest.webmanifest", "/sw.js", "/offline", "/healthz"):
        assert leaks(client.get(url), world.secrets) == [], url


# --- HTTP caching --------------------------------------------------------------------------------------------------

def test_a_staff_etag_never_gets_an_anonymous_reader_a_304(world):
    staff = world.staff()
    remembered = world.staff("columbus.reader", remember=True)
    remembered.delete_cookie("session")  # a browser restart: only the remember-me cookie is left
    anonymous = world.anonymous()
    for url in ("/", "/offices/lyon", "/offices/columbus", f"/?before={QUOTING_ID}"):
        staff_page = staff.get(url)
        assert staff_page.status_code == 200 and "Sign out" in staff_page.get_data(as_text=True)
        validators = {"If-None-Match": staff_page.headers["ETag"],
                      "If-Modified-Since": staff_page.headers["Last-Modified"]}
        for headers in ({"If-None-Match": staff_page.headers["ETag"]}, validators):
            answer = anonymous.get(url, headers=headers)
            assert answer.status_code == 200, (url, headers)
            assert leaks(answer, world.secrets) == [], url
        # And the other way round: a public copy cached before signing in is not revalidated for staff,
        # neither with the session cookie nor with only the remember-me cookie (the 304 fast path is skipped).
        public_etag = anonymous.get(url).headers["ETag"]
        for client in (staff, remembered):
            again = client.get(url, headers={"If-None-Match": public_etag})
            assert again.status_code == 200 and again.headers["ETag"] != public_etag, url
            assert "Sign out" in again.get_data(as_text=True), url


def test_staff_responses_are_private_and_public_ones_are_not_personal(world):
    staff, anonymous = world.staff(), world.anonymous()
    for url in ("/", "/offices/lyon", "/offices/columbus", f"/?before={QUOTING_ID}"):
        mine, theirs = staff.get(url), anonymous.get(url)
        assert mine.headers["Cache-Control"].startswith("private"), url
        assert "public" not in mine.headers["Cache-Control"], url
        assert "Cookie" in mine.headers["Vary"] and "Cookie" in theirs.headers["Vary"], url
        assert theirs.headers["Cache-Control"].startswith("public"), url
        assert mine.headers["ETag"] != theirs.headers["ETag"], url
        if "X-Feedapp-Audience" in mine.headers:  # the service worker's cache choice
            assert (mine.headers["X-Feedapp-Audience"], theirs.headers["X-Feedapp-Audience"]) == ("staff", "public")
    for url in ("/account",):
        assert staff.get(url).headers["Cache-Control"] == "no-store", url
    token = _feed_token(world, "reader")
    for fmt in FORMATS:
        private = world.anonymous().get(f"/private/{token}/feed.{fmt}")
        assert private.status_code == 200
        assert private.headers["Cache-Control"].startswith("private"), fmt
        assert QUOTE_SECRET in readable(private), fmt


def test_anonymous_readers_never_get_what_staff_fetched_first(world, make_app, caplog):
    """Render cache and 304 fast path: staff fill them first, then anonymous readers ask for the same URLs."""
    urls = public_urls(make_app().test_client())  # listed by another app on the same database: caches stay cold
    caplog.set_level(logging.DEBUG, logger="feedapp")  # create_app reset feedapp's level
    assert world.app.extensions["feedapp.render_cache"].renders == 0
    staff = world.staff()
    etags = {}
    for url in urls:
        response = staff.get(url)
        assert response.status_code == 200, url
        etags[url] = response.headers["ETag"]
    staff_saw = "".join(readable(staff.get(u)) for u in urls if "feed." not in u)
    assert QUOTE_SECRET in staff_saw and any(t in staff_saw for t in world.lyon)
    for url in urls:
        for headers in ({}, {"If-None-Match": etags[url]}, {"Accept-Encoding": "br"}, {"Accept-Encoding": "gzip"}):
            answer = world.anonymous().get(url, headers=headers)
            if answer.status_code == 304:  # a public feed: the same for everyone, so the staff ETag is its ETag
                assert "feed." in url or url.endswith(".opml"), (url, headers)
                continue
            assert answer.status_code == 200, (url, headers)
            if answer.headers.get("Content-Encoding"):
                answer.set_data(_decode(answer))
            assert leaks(answer, world.secrets) == [], (url, headers)
    # The same browser after signing out is an anonymous reader again.
    token = CSRF_RE.search(staff.get("/logout").get_data(as_text=True))[1]
    assert staff.post("/logout", data={"csrf_token": token}).status_code == 200
    for url in urls:
        assert leaks(staff.get(url), world.secrets) == [], url


def _decode(response) -> bytes:
    import gzip

    import brotli

    data = response.get_data()
    return brotli.decompress(data) if response.headers["Content-Encoding"] == "br" else gzip.decompress(data)


def _feed_token(world, username: str) -> str:
    with world.sessions() as s:
        token = accounts.rotate_feed_token(s, accounts.user_by_username(s, username))
        s.commit()
    return token


# --- staff do see them -----------------------------------------------------------------------------------------------

def test_signed_in_staff_see_staff_only_posts_with_the_lock(world):
    staff = world.staff()  # office: Lyon
    pages = walk(staff, "/")
    seen = "".join(readable(p) for p in pages)
    raw = "".join(p.get_data(as_text=True) for p in pages)
    missing = [t for t in world.allhands + world.lyon if t not in seen]
    assert missing == []
    assert QUOTE_SECRET in seen and "@HPL_AllHands" in seen
    # A lock on each staff-only post, and one on the quote of @HPL_AllHands inside the public post.
    assert raw.count(LOCK) == len(world.allhands) + len(world.lyon) + 1
    quote_card = raw[raw.index(f'id="p{QUOTING_ID}"'):].split("</article>", 1)[0]
    assert quote_card.count(LOCK) == 1 and QUOTE_SECRET in html.unescape(quote_card)
    assert "Staff only" in seen
    # A reader of another office sees the company-wide staff-only posts, not Lyon's.
    columbus = "".join(readable(p) for p in walk(world.staff("columbus.reader"), "/"))
    assert all(t in columbus for t in world.allhands)
    assert not any(t in columbus for t in world.lyon)


# --- a source turning protected --------------------------------------------------------------------------------------

def _protect_directly(s, source):
    source.protected = True
    bump_content_version(s)


def _protect_by_profile_check(s, source):
    # What the poller's profile check does when X reports the account as protected now.
    apply_profile(source, User(source.x_id, source.username, source.display_name, source.avatar_url, protected=True))


@pytest.mark.parametrize("protect", [_protect_directly, _protect_by_profile_check], ids=["flag+bump", "profile-check"])
def test_a_source_turning_protected_disappears_from_public_surfaces_at_once(world, protect):
    columbus = secret_texts(world.sessions, lambda _p, _s, username: username == "HPL_Columbus")
    assert len(columbus) >= 8
    anonymous = world.anonymous()
    urls = ["/offices/columbus", "/offices/columbus/feed.rss", "/offices/columbus/feed.json"]
    before = {}
    for url in urls:
        pages = walk(anonymous, url) if "feed." not in url else [anonymous.get(url)]
        text = "".join(readable(p) for p in pages)
        assert any(t in text for t in columbus), url  # public until now
        before[url] = pages[0].headers["ETag"]

    with world.sessions() as s:
        protect(s, s.scalars(select(Source).where(Source.username == "HPL_Columbus")).one())
        s.commit()

    for url in urls:
        fresh = anonymous.get(url, headers={"If-None-Match": before[url]})
        assert fresh.status_code == 200, url  # not a 304 for the copy that held them
        pages = walk(anonymous, url) if "feed." not in url else [fresh]
        assert leaks("".join(readable(p) for p in pages), columbus) == [], url
    staff = "".join(readable(p) for p in walk(world.staff("columbus.reader"), "/offices/columbus"))
    assert all(t in staff for t in columbus)
