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
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import feedparser
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from lxml import etree
from sqlalchemy import JSON, column, insert, select, table
from werkzeug.security import generate_password_hash

from feedapp import accounts, create_app
from feedapp.content_scopes import SITE
from feedapp.db import make_engine, make_session_factory
from feedapp.db import sessions as app_sessions
from feedapp.ingest.sources import apply_profile
from feedapp.ingest.store import bump_content_version, store_posts
from feedapp.migrate import alembic_config, upgrade
from feedapp.models import Office, Post, ScopeVersion, SeenAccount, Source, UTCDateTime
from feedapp.queries import posts_for_feed
from feedapp.xapi.types import XPost, XQuotedPost, XUser
from tests.fakemedia import with_upstreams
from tests.helpers import follow, poll

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
    # Image URLs of our /media/ route name their X URL in base64: written out, so no leak hides in one.
    return with_upstreams(html.unescape(html.unescape(body)))


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
        return sign_in(self.app, username, remember)


def sign_in(app, username: str, remember: bool = False):
    """A test client signed in as username (made by make_staff)."""
    client = app.test_client()
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
    """conftest's fresh database; for the demo world on SQLite a copy that already holds the demo (0.3 s a test)."""
    if db_url.startswith("sqlite:///") and "world" in request.fixturenames:
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
        secret = XQuotedPost("2990000000000000000",
                            XUser("1610468823349927936", "HPL_AllHands", "H&P All Hands (internal)", protected=True),
                            f"{QUOTE_SECRET}: Q4 margin 3.1 %, do not share", (), (),
                            datetime.now(timezone.utc) - timedelta(hours=2))
        store_posts(s, news, [XPost(id=str(QUOTING_ID), author=XUser("", "", ""), lang="en",
                                       text="Proud of every team this quarter. Thank you!", links=(), media=(),
                                       created_at=datetime.now(timezone.utc) - timedelta(minutes=1), quoted=secret)])
        lyon = s.scalars(select(Source).where(Source.username == "HPL_Lyon")).one()
        lyon.staff_only = True  # what an admin's `sources add HPL_Lyon --staff-only` stores
        bump_content_version(s, [SITE])
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
    bump_content_version(s, [SITE])


def _protect_by_profile_check(s, source):
    # What the poller's profile check does when X reports the account as protected now.
    apply_profile(source, XUser(source.x_id, source.username, source.display_name, source.avatar_url, protected=True))


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


# --- staff-only text through public accounts, through the real poll path ---------------------------------------------
#
# Accounts on the fake X API: @hp_news (company-wide) and @hp_depot (office depot7) are public and followed;
# @hp_board is public on X but followed --staff-only; @hp_vault is protected on X (read with the reader account);
# @hp_audit is public and followed, @hp_partner public and not followed, and both turn protected later.

BOARD = "Board minutes: the Leith depot closes in March"
VAULT = "Vault memo: pay review numbers for 2027"
PARTNER = "Partner note: joint bid for the port contract"
AUDIT = "Audit finding: cash handling at the quay store"
HIDDEN_NAMES = ["hp_board", "Board Room Private", "BoardSecretPhoto", "hp_vault", "Vault Internal", "VaultSecretPhoto"]
NOT_AVAILABLE = "Quoted post not available"
PHOTOS = "https://pbs.twimg.com/media"
BASE = 2_800_000_000_000_000_000  # ids of the posts the migration test writes
ITEM_ID_RE = re.compile(r"/status/(\d+)$")
POST_ID_RE = re.compile(r'<article class="post" id="p(\d+)"')


class Reposts:
    """Ids of the posts published on the fake X API, by name (see `reposts`)."""

    def __init__(self, **ids):
        self.__dict__.update({name: int(value) for name, value in ids.items()})


@pytest.fixture
def reposts(fake_x, runner, sessions) -> Reposts:
    """The accounts above, their posts, reposts and quotes, all followed with the CLI and polled once."""
    fake = fake_x
    fake.add_user("hp_news", name="Harbor News")
    fake.add_user("hp_depot", name="Depot Seven")
    fake.add_user("hp_board", name="Board Room Private")
    fake.add_user("hp_vault", name="Vault Internal", protected=True)
    fake.add_user("hp_audit", name="Audit Office")
    fake.add_user("hp_partner", name="Partner Outside")
    board = fake.post("hp_board", BOARD, media=[{"type": "photo", "url": f"{PHOTOS}/BoardSecretPhoto.jpg"}])
    vault = fake.post("hp_vault", VAULT, media=[{"type": "photo", "url": f"{PHOTOS}/VaultSecretPhoto.jpg"}])
    audit, partner = fake.post("hp_audit", AUDIT), fake.post("hp_partner", PARTNER)
    ids = dict(
        board=board, vault=vault, audit=audit, partner=partner,
        rt_board=fake.post("hp_news", retweet_of=board),
        q_board=fake.post("hp_news", "News words on the board quote", quote_of=board),
        rt_vault=fake.post("hp_news", retweet_of=vault),
        q_vault=fake.post("hp_news", "News words on the vault quote", quote_of=vault),
        rt_audit=fake.post("hp_news", retweet_of=audit),
        q_audit=fake.post("hp_news", "News words on the audit quote", quote_of=audit),
        rt_partner=fake.post("hp_news", retweet_of=partner),
        q_partner=fake.post("hp_news", "News words on the partner quote", quote_of=partner),
        depot_rt_board=fake.post("hp_depot", retweet_of=board),
        depot_q_vault=fake.post("hp_depot", "Depot words on the vault quote", quote_of=vault),
    )
    assert runner.invoke(args=["offices", "add", "depot7", "Depot 7"]).exit_code == 0
    follow(runner, "hp_news")
    follow(runner, "hp_depot", "--office", "depot7")
    follow(runner, "hp_board", "--staff-only")
    assert "protected on X: staff-only" in follow(runner, "hp_vault").output
    follow(runner, "hp_audit")
    result = poll(runner, "--all")
    assert result.exit_code == 0 and "error" not in result.output, result.output
    make_staff(sessions, "depot.reader", "depot7")
    return Reposts(**ids)


def public_views(client) -> list[tuple[str, str, list[int]]]:
    """Every anonymous surface that lists posts, as (url, what a reader sees, post ids in it, newest first).

    The feed pages (every older page too) and the feeds in all three formats of the company's
    feed and each office's combined feed (the OPML lists each office's own posts, a subset of
    the combined feed: test_an_office_only_feed_shows_no_staff_only_words checks those). A feed
    item's id is the post's own X id, the original's for a repost: its ids here are the stored
    rows it stands for (item_rows).
    """
    opml = client.get("/feeds.opml")
    assert opml.status_code == 200
    outlines = list(etree.fromstring(opml.data).iter("outline"))
    assert len(outlines) >= 2  # the company feed and depot7's
    views = []
    for outline in outlines:
        page_url = urlsplit(outline.get("htmlUrl")).path
        for page in walk(client, page_url):
            views.append((page_url, readable(page), [int(i) for i in POST_ID_RE.findall(page.get_data(as_text=True))]))
        rss = urlsplit(outline.get("xmlUrl")).path.replace("/local/feed.", "/feed.")
        for url in (rss, rss.replace(".rss", ".atom"), rss.replace(".rss", ".json")):
            feed = client.get(url)
            assert feed.status_code == 200, url
            if url.endswith(".json"):
                item_ids = [item["id"] for item in json.loads(feed.data)["items"]]
            else:
                parsed = feedparser.parse(feed.data)
                assert parsed.bozo == 0, (url, parsed.get("bozo_exception"))
                item_ids = [entry.id for entry in parsed.entries]
            views.append((url, readable(feed), item_rows(client, [int(ITEM_ID_RE.search(i)[1]) for i in item_ids])))
    return views


def item_rows(client, item_ids: list[int]) -> list[int]:
    """The stored rows feed items stand for (every row of each item's post: the original and its reposts), newest first."""
    with app_sessions(client.application)() as s:
        rows = s.execute(select(Post.canonical_id, Post.id).where(Post.canonical_id.in_(item_ids))).all()
    by_item: dict[int, list[int]] = {}
    for canonical_id, row_id in rows:
        by_item.setdefault(canonical_id, []).append(row_id)
    return [row for item_id in item_ids for row in sorted(by_item.get(item_id, [item_id]), reverse=True)]


def test_an_office_only_feed_shows_no_staff_only_words(reposts, client):
    for fmt in ("rss", "atom", "json"):
        feed = client.get(f"/offices/depot7/local/feed.{fmt}")
        assert feed.status_code == 200
        text = readable(feed)
        assert secrets_in(text, [BOARD, VAULT, *HIDDEN_NAMES]) == [], fmt
        assert "Depot words on the vault quote" in text and NOT_AVAILABLE in text, fmt
        assert "News words" not in text, fmt  # the company's posts are in the company feed only


def feed_item_html(client, url: str, post_id: int) -> str:
    """The content of one item of a feed (RSS and Atom through feedparser, JSON Feed through json)."""
    feed = client.get(url)
    if url.endswith(".json"):
        items = {ITEM_ID_RE.search(item["id"])[1]: item["content_html"] for item in json.loads(feed.data)["items"]}
    else:
        items = {ITEM_ID_RE.search(e.id)[1]: e.content[0].value if "content" in e else e.summary
                 for e in feedparser.parse(feed.data).entries}
    by_row = {row: html for item_id, html in items.items() for row in item_rows(client, [int(item_id)])}
    return by_row[post_id]


def secrets_in(text: str, secrets: list[str]) -> list[str]:
    lowered = text.lower()
    return [s for s in secrets if s.lower() in lowered]


def test_reposts_and_quotes_of_staff_only_accounts_never_reach_public_readers(reposts, client):
    views = public_views(client)
    depot = [v for v in views if "depot7" in v[0]]
    assert len(views) == 8 and len(depot) == 4  # "/" and /offices/depot7, each with its three feeds
    for url, text, ids in views:
        assert secrets_in(text, [BOARD, VAULT, *HIDDEN_NAMES]) == [], url
        assert {reposts.rt_board, reposts.rt_vault, reposts.depot_rt_board} & set(ids) == set(), url
        # The public accounts' own posts quoting them are there, with their own words and no quote.
        assert {reposts.q_board, reposts.q_vault} <= set(ids), url
        assert "News words on the board quote" in text and "News words on the vault quote" in text, url
        assert NOT_AVAILABLE in text, url
        # Public accounts reposted and quoted by them stay visible: nothing is hidden that need not be.
        assert {reposts.rt_audit, reposts.q_audit, reposts.rt_partner, reposts.q_partner} <= set(ids), url
        assert AUDIT in text and PARTNER in text, url
    for url, _, ids in depot:
        assert reposts.depot_q_vault in ids, url
    for url in ("/feed.rss", "/feed.atom", "/feed.json", "/offices/depot7/feed.rss"):
        content = feed_item_html(client, url, reposts.q_vault)
        assert "News words on the vault quote" in content and NOT_AVAILABLE in content, url
        assert "News words on the audit quote" in feed_item_html(client, url, reposts.q_audit), url
        assert AUDIT in feed_item_html(client, url, reposts.q_audit), url


def test_staff_and_private_feeds_get_them_with_the_lock(reposts, app, sessions):
    staff = sign_in(app, "depot.reader")
    pages = walk(staff, "/")
    raw = "".join(p.get_data(as_text=True) for p in pages)
    seen = with_upstreams(html.unescape(raw))
    ids = [int(i) for i in POST_ID_RE.findall(raw)]
    assert {reposts.rt_vault, reposts.depot_rt_board, reposts.q_board, reposts.q_vault} <= set(ids)
    assert reposts.rt_board not in ids  # the same post as the depot's newer repost: shown once, there
    assert BOARD in seen and VAULT in seen and "BoardSecretPhoto" in seen
    for post_id in (reposts.rt_vault, reposts.depot_rt_board, reposts.q_board, reposts.q_vault):
        card = raw[raw.index(f'id="p{post_id}"'):].split("</article>", 1)[0]
        assert card.count(LOCK) == 1 and NOT_AVAILABLE not in card, post_id
    for post_id in (reposts.rt_audit, reposts.q_audit):  # public all along: no lock
        assert LOCK not in raw[raw.index(f'id="p{post_id}"'):].split("</article>", 1)[0]
    with sessions() as s:
        token = accounts.rotate_feed_token(s, accounts.user_by_username(s, "depot.reader"))
        s.commit()
    for fmt in FORMATS:
        private = app.test_client().get(f"/private/{token}/feed.{fmt}")
        assert private.status_code == 200 and BOARD in readable(private) and VAULT in readable(private), fmt
        assert VAULT in feed_item_html(app.test_client(), f"/private/{token}/feed.{fmt}", reposts.q_vault), fmt


def test_an_account_seen_protected_in_a_later_poll_disappears_from_public_surfaces(reposts, fake_x, runner, client):
    before = public_views(client)
    assert all(PARTNER in text for _, text, _ in before)  # public until now
    fake_x.user("hp_partner")["protected"] = True
    # The reader account sees it: @hp_vault's timeline (read with it) brings @hp_partner's user object along.
    fake_x.post("hp_vault", "Vault words on the partner quote", quote_of=reposts.partner)
    result = poll(runner, "--all")
    assert result.exit_code == 0, result.output

    for url, text, ids in public_views(client):  # the same app: its render cache must not serve the old bodies
        assert secrets_in(text, [PARTNER, "Partner Outside"]) == [], url
        assert reposts.rt_partner not in ids, url
        assert reposts.q_partner in ids and NOT_AVAILABLE in text, url
    content = feed_item_html(client, "/feed.json", reposts.q_partner)
    assert "News words on the partner quote" in content and NOT_AVAILABLE in content
    staff_pages = walk(sign_in(client.application, "depot.reader"), "/")
    staff = html.unescape("".join(p.get_data(as_text=True) for p in staff_pages))
    assert PARTNER in staff and "Vault words on the partner quote" in staff


def test_an_account_nobody_follows_turning_protected_is_hidden_without_being_seen_again(reposts, fake_x, make_app,
                                                                                        client, sessions):
    """Once protected, its posts reach no page's includes: the profile refresh looks it up by id."""
    assert poll(make_app().test_cli_runner(), "--all").exit_code == 0  # the next cycle checks new accounts once
    assert all(PARTNER in text for _, text, _ in public_views(client))
    fake_x.user("hp_partner")["protected"] = True
    assert poll(make_app().test_cli_runner(), "--all").exit_code == 0  # inside the refresh interval: not checked
    with sessions() as s:
        assert s.get(SeenAccount, fake_x.user("hp_partner")["id"]).protected is False
    lookups = len(fake_x.requests)
    refreshing = make_app(FEEDAPP_PROFILE_REFRESH=0)
    result = poll(refreshing.test_cli_runner())
    assert result.exit_code == 0, result.output
    looked_up = [r for r in fake_x.requests[lookups:] if r.path.endswith("/2/users")]
    assert any(fake_x.user("hp_partner")["id"] in r.params.get("ids", "").split(",") for r in looked_up)
    for url, text, ids in public_views(client):
        assert secrets_in(text, [PARTNER, "Partner Outside"]) == [], url
        assert reposts.rt_partner not in ids and reposts.q_partner in ids and NOT_AVAILABLE in text, url
    # An account X no longer returns (suspended) is hidden the same way; one that is public again shows.
    fake_x.user("hp_partner")["protected"] = False
    assert poll(refreshing.test_cli_runner()).exit_code == 0
    assert any(PARTNER in text for _, text, _ in public_views(client))
    fake_x.user("hp_partner")["suspended"] = True
    assert poll(refreshing.test_cli_runner()).exit_code == 0
    assert all(PARTNER not in text for _, text, _ in public_views(client))


def test_a_followed_account_turning_protected_hides_what_others_reposted_and_quoted(reposts, fake_x, make_app, client):
    before = public_views(client)
    assert all(AUDIT in text for _, text, _ in before)  # public until now
    fake_x.user("hp_audit")["protected"] = True
    refreshing = make_app(FEEDAPP_PROFILE_REFRESH=0)  # every poll re-reads the profiles
    result = poll(refreshing.test_cli_runner())
    assert result.exit_code == 0 and "@hp_audit is now protected on X" in result.output, result.output

    for url, text, ids in public_views(client):
        assert secrets_in(text, [AUDIT, "Audit Office"]) == [], url
        assert reposts.rt_audit not in ids, url
        assert reposts.q_audit in ids and NOT_AVAILABLE in text, url
    for url in ("/feed.rss", "/feed.atom"):
        content = feed_item_html(client, url, reposts.q_audit)
        assert "News words on the audit quote" in content and NOT_AVAILABLE in content and AUDIT not in content


def test_an_account_seen_again_protected_bumps_the_site_version_even_with_no_new_post(db_url, sessions):
    """A page read twice (a catch-up resumed) may bring no new post, only news about an account."""
    with sessions() as s:
        news = Source(x_id="100", username="news", display_name="News", error_count=0)
        s.add(news)
        s.flush()

        def quote_of(protected: bool) -> XQuotedPost:
            return XQuotedPost("5", XUser("200", "partner", "Partner", protected=protected), "partner text", (), (),
                              datetime.now(timezone.utc))

        post = XPost("2900000000000000009", XUser("", "", ""), "news text", (), (), datetime.now(timezone.utc),
                        quoted=quote_of(False))
        assert store_posts(s, news, [post]) == [2900000000000000009]
        s.commit()
        site_version = select(ScopeVersion.version).where(ScopeVersion.scope == SITE)
        version = s.scalar(site_version)
        assert store_posts(s, news, [post]) == [] and s.scalar(site_version) == version
        assert store_posts(s, news, [replace(post, quoted=quote_of(True))]) == []
        s.commit()
        assert s.scalar(site_version) > version
        assert s.get(SeenAccount, "200").protected is True
        assert posts_for_feed(s)[0].quote_hidden is True


def test_migration_backfills_quoted_authors_and_the_accounts_seen_from_stored_json(db_url):
    """0006_visibility: posts.quoted_author_id and seen_accounts from the JSON stored before it (newest fetch wins)."""
    config = alembic_config(db_url)
    # The revision before this one (whatever the chain it ends up in), then its rows, then this one.
    command.downgrade(config, ScriptDirectory.from_config(config).get_revision("0006_visibility").down_revision)
    engine = make_engine(db_url)
    try:
        now = datetime.now(timezone.utc)

        def quote(author_id, protected):
            return {"id": "9", "text": "quoted text", "links": [], "media": [], "created_at": None,
                    "author": {"id": author_id, "username": f"user{author_id}", "name": f"XUser {author_id}",
                               "protected": protected}}

        def repost(author_id, protected):
            return {"author_id": author_id, "author_username": f"user{author_id}", "author_name": f"XUser {author_id}",
                    "repost_of_id": "8", "raw": {"tweet": {"id": "1"}, "includes": {"users": [
                        {"id": author_id, "username": f"user{author_id}", "name": f"XUser {author_id}",
                         "protected": protected}]}}}

        rows = [  # (post id, minutes after now it was fetched, columns)
            (1, 0, {"quoted": quote("200", True)}),  # hidden then, seen public later (post 5): public
            (2, 0, {"quoted": quote("300", False)}),  # public then, seen protected later (post 6): hidden
            (3, 0, repost("400", True)),
            (4, 0, repost("500", False)),
            (5, 1, {"quoted": quote("200", False)}),
            (6, 1, repost("300", True)),
            (7, 0, {"quoted": quote("100", True)}),  # the source quoting itself: its row decides
        ]
        # The tables as they were at that revision (the models' own have columns added later).
        sources_then = table("sources", *(column(c) for c in ("id", "x_id", "username", "display_name", "error_count",
                                                              "staff_only", "protected")),
                             column("created_at", UTCDateTime))
        posts_then = table("posts", *(column(c) for c in ("id", "source_id", "author_id", "author_username", "possibly_sensitive",
                                                          "author_name", "repost_of_id", "text")),
                           column("created_at", UTCDateTime), column("fetched_at", UTCDateTime),
                           *(column(c, JSON) for c in ("quoted", "links", "raw")))
        with engine.begin() as conn:
            conn.execute(insert(sources_then), [{"id": 1, "x_id": "100", "username": "news", "display_name": "News",
                                                    "error_count": 0, "staff_only": False, "protected": False,
                                                    "created_at": now}])
            conn.execute(insert(posts_then), [
                {"id": BASE + pid, "source_id": 1, "created_at": now, "fetched_at": now + timedelta(minutes=after),
                 "author_id": "100", "author_username": "news", "author_name": "News", "repost_of_id": None,
                 "quoted": None, "text": f"post {pid}", "links": [], "raw": {}, "possibly_sensitive": False,
                 **columns}
                for pid, after, columns in rows])
    finally:
        upgrade(db_url)  # back to the head whatever happened: the next tests share this database
    with engine.connect() as conn:
        quoted_by = dict(conn.execute(select(Post.id, Post.quoted_author_id)).all())
        seen = dict(conn.execute(select(SeenAccount.id, SeenAccount.protected)).all())
    assert quoted_by == {BASE + 1: "200", BASE + 2: "300", BASE + 3: None, BASE + 4: None, BASE + 5: "200",
                         BASE + 6: None, BASE + 7: "100"}
    assert seen == {"200": False, "300": True, "400": True, "500": False}
    with make_session_factory(engine)() as s:
        posts = {p.id - BASE: p for p in posts_for_feed(s, limit=10)}
    assert sorted(posts) == [1, 2, 4, 5, 7]  # the reposts of @user400 and @user300 are left out
    assert {pid: p.quote_hidden for pid, p in posts.items() if p.quoted} == {1: False, 2: True, 5: False, 7: False}
    engine.dispose()
