"""posts_for_feed at 1,000 sources in one scope: exact keyset pages, every statement of bounded size.

The sources are created directly in the database (quick); their posts go through store_posts.
Every page is compared with a brute-force answer computed in Python from all stored rows, on
both read paths: the recent-posts window (a page of a busy scope) and the per-source ranges
(a scope with a small share of the posts, the end of a feed, or the window turned off).
"""

from __future__ import annotations

import random
import re
import shutil
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, event, insert, select, text

from feedapp.db import make_engine, make_session_factory
from feedapp.ingest.store import store_posts
from feedapp.migrate import upgrade
from feedapp.models import Office, Post, Source
from feedapp import queries
from feedapp.queries import posts_for_feed
from feedapp.xapi.types import XPost, XQuotedPost, XUser

SOURCES = 1000  # all in the scope of office "depot": 10 company-wide, 990 of the office
COMPANY_WIDE = 10  # a small share of the posts: the scope of `/` alone is read by per-source ranges
STAFF_ONLY = 10  # the last depot sources: followed --staff-only, reposted and quoted by public ones
WHEN = datetime(2026, 11, 1, tzinfo=timezone.utc)
BASE_ID = 1_900_000_000_000_000_000
ENGINES = ["sqlite", "postgresql"]
# The most UNION terms one statement may hold: SQLite refuses more than 500, and a statement
# that grows with the source count is the cost this bounds.
MAX_TERMS = 200


def x_id(n: int) -> str:
    return str(5_000_000_000 + n)


def _post(post_id: int, n: int, hidden: list[str], rng: random.Random) -> XPost:
    me = XUser(x_id(n), f"acct_{n}", f"Account {n}")
    roll = rng.random()
    if roll < 0.08:  # a repost of a staff-only source's post: stored with that author
        other = rng.choice(hidden)
        return XPost(str(post_id), XUser(other, f"acct_{other}", "Staff only account"), "internal", (), (),
                        WHEN, repost_of_id=str(post_id - 1))
    quoted = None
    if roll < 0.14:  # a quote of one
        other = rng.choice(hidden)
        quoted = XQuotedPost(str(post_id - 3), XUser(other, f"acct_{other}", "Staff only account"), "internal", (), (),
                            WHEN - timedelta(hours=1))
    return XPost(str(post_id), me, f"post {post_id}", (), (), WHEN, quoted=quoted)


class Oracle:
    """The expected answers, from every stored row."""

    def __init__(self, rows, flags, hidden: set[str], office_id: int):
        self.rows, self.flags, self.hidden, self.office_id = rows, flags, hidden, office_id

    def ids(self, office_id=None, *, staff=False, before=None, limit=None, company=True) -> list[int]:
        keep = []
        for post_id, source_id, author_id, _ in self.rows:
            office, staff_only = self.flags[source_id]
            scope = (None, office_id) if company else (office_id,)
            if office not in scope or (before is not None and post_id >= before):
                continue
            if not staff and (staff_only or author_id in self.hidden):
                continue
            keep.append(post_id)
        keep.sort(reverse=True)
        return keep if limit is None else keep[:limit]

    def quote_hidden(self, post_id: int) -> bool:
        return next(q for i, _, _, q in self.rows if i == post_id) in self.hidden


@pytest.fixture(scope="module", params=ENGINES)
def big(request, tmp_path_factory):
    """A database per engine holding the 1,000 sources and their posts, made once for this module (tests only read)."""
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("big") / "big.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        url, drop = f"sqlite:///{path}", None
    else:  # a database of its own: the other modules' tests empty the shared one between tests
        server = create_engine(request.getfixturevalue("pg_url"), isolation_level="AUTOCOMMIT")
        name = f"feedapp_test_big_{uuid.uuid4().hex[:12]}"
        with server.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url, drop = server.url.set(database=name).render_as_string(hide_password=False), name
        upgrade(url)
    sessions = make_session_factory(make_engine(url))
    oracle = _seed(sessions)
    oracle.sessions = sessions
    yield oracle
    sessions.kw["bind"].dispose()
    if drop:
        with server.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{drop}" WITH (FORCE)'))
        server.dispose()


def _seed(sessions) -> Oracle:
    """The 1,000 sources, created directly, and 4,000 posts, stored by store_posts."""
    rng = random.Random(8)
    with sessions() as s:
        office = Office(slug="depot", name="Depot")
        s.add(office)
        s.flush()
        s.execute(insert(Source), [
            {"x_id": x_id(n), "username": f"acct_{n}", "display_name": f"Account {n}", "error_count": 0,
             "office_id": None if n < COMPANY_WIDE else office.id, "staff_only": n >= SOURCES - STAFF_ONLY,
             "protected": False, "since_id": None if n % 3 else BASE_ID + n}  # some with a position, some not
            for n in range(SOURCES)])
        sources = {src.x_id: src for src in s.scalars(select(Source))}
        hidden = [x_id(n) for n in range(SOURCES - STAFF_ONLY, SOURCES)]
        # Post ids interleave across sources; a few sources are busy, most post a couple of times.
        weights = [40 if n % 97 == 0 else 1 for n in range(SOURCES)]
        owners = rng.choices(range(SOURCES), weights=weights, k=4000)
        ids = rng.sample(range(0, 10**9, 7), len(owners))
        by_source: dict[int, list[XPost]] = {}
        for post_id, n in zip(ids, owners):
            by_source.setdefault(n, []).append(_post(BASE_ID + post_id, n, hidden, rng))
        for n, posts in by_source.items():
            store_posts(s, sources[x_id(n)], sorted(posts, key=lambda p: -int(p.id)))
        s.commit()
        rows = s.execute(select(Post.id, Post.source_id, Post.author_id, Post.quoted_author_id)).all()
        flags = {src.id: (src.office_id, src.staff_only) for src in sources.values()}
    return Oracle(rows, flags, set(hidden), office.id)


@pytest.fixture(params=["recent-window", "source-ranges"])
def path(request, monkeypatch) -> list[int]:
    """Each test runs with the recent-posts window on (the default) and off; yields the per-source reads seen."""
    if request.param == "source-ranges":
        monkeypatch.setattr(queries, "RECENT_PAGES", 0)
    ranges, read = [], queries._newest_ids

    def spy(session, source_ids, *args):
        ranges.append(len(source_ids))
        return read(session, source_ids, *args)

    monkeypatch.setattr(queries, "_newest_ids", spy)
    return ranges


@pytest.fixture
def statements(big):
    """The SQL of every statement run on the big database's engine from now on."""
    seen: list[str] = []
    engine = big.sessions.kw["bind"]

    def record(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def ids_of(posts) -> list[int]:
    return [p.id for p in posts]


@pytest.mark.parametrize("staff", [False, True], ids=["public", "staff"])
def test_first_page_and_before_pages_are_exact_at_1000_sources(big, path, staff):
    depot = big.office_id
    everything = big.ids(depot, staff=staff)
    assert len(everything) > 3000 and len(big.ids(depot, staff=True)) > len(big.ids(depot))  # some hidden
    with big.sessions() as s:
        for limit in (1, 21, 150):
            assert ids_of(posts_for_feed(s, depot, staff=staff, limit=limit)) == everything[:limit], limit
        cursors = [everything[0], everything[20], everything[-1], everything[-2], everything[1500] + 1,
                   everything[0] + 1, 2**63 - 1, BASE_ID]  # stored ids, ids between posts, beyond both ends
        for before in cursors:
            expected = big.ids(depot, staff=staff, before=before, limit=21)
            assert ids_of(posts_for_feed(s, depot, staff=staff, before=before, limit=21)) == expected, before


def test_walking_every_page_gives_each_post_once_in_order(big, path):
    page_size = 100
    for office_id in (big.office_id, None):  # 1,000 sources; 10 with 1% of the posts
        expected = big.ids(office_id)
        walked, before, pages = [], None, 0
        path.clear()
        with big.sessions() as s:
            while True:
                page = ids_of(posts_for_feed(s, office_id, before=before, limit=page_size))
                # A filtered page is full whenever enough posts remain below its cursor.
                assert len(page) == min(page_size, len(expected) - len(walked)), (office_id, before)
                if not page:
                    break
                walked += page
                before = page[-1]
                pages += 1
        assert walked == expected
        if queries.RECENT_PAGES == 0 or office_id is None:  # both paths are walked, not only one
            assert len(path) == pages + 1
        else:  # a busy scope: the window holds every full page, the ranges answer the last ones only
            assert len(path) <= 2 < pages


@pytest.mark.parametrize("staff", [False, True], ids=["public", "staff"])
def test_an_office_only_feed_walks_the_offices_own_posts_exactly(big, path, staff):
    expected = big.ids(big.office_id, staff=staff, company=False)
    assert len(expected) < len(big.ids(big.office_id, staff=staff))  # the company-wide posts are left out
    walked, before = [], None
    with big.sessions() as s:
        while page := ids_of(posts_for_feed(s, big.office_id, staff=staff, before=before, limit=150, company=False)):
            walked += page
            before = page[-1]
    assert walked == expected


def test_each_post_says_whether_its_quote_may_be_shown(big, path):
    with big.sessions() as s:
        posts = posts_for_feed(s, big.office_id, limit=400)
    quotes = [p for p in posts if p.quoted]
    assert quotes and any(p.quote_hidden for p in quotes)
    assert all(p.quote_hidden is big.quote_hidden(p.id) for p in posts)
    assert all(p.author_hidden is False for p in posts)  # public: reposts of staff-only authors are left out


def test_no_statement_grows_with_the_number_of_sources(big, path, statements):
    with big.sessions() as s:
        posts_for_feed(s, big.office_id, limit=21)
        posts_for_feed(s, big.office_id, staff=True, before=big.ids(big.office_id)[700], limit=21)
        posts_for_feed(s, None, limit=21)  # the per-source ranges whatever the path
    assert statements
    terms = [len(re.findall(r"\bUNION ALL\b", sql)) + 1 for sql in statements]
    assert max(terms) <= MAX_TERMS, max(terms)
