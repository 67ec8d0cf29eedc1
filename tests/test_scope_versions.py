"""Per-scope content versions: a write moves the validators of the responses that show it, and of no other."""

from __future__ import annotations

from datetime import datetime, timezone
from email.utils import format_datetime

import pytest
from alembic import command
from sqlalchemy import insert, select, text, update

from feedapp import accounts
from feedapp.content_scopes import EVERY_OFFICE, SITE, posts_scope
from feedapp.db import make_engine
from feedapp.ingest.store import bump_content_version, store_posts
from feedapp.migrate import alembic_config, upgrade
from feedapp.models import Office, ScopeVersion, Source, User
from feedapp.web.http import cached_response
from feedapp.web.variant import variant
from feedapp.xapi.types import XPost, XUser
from tests.auth_helpers import PASSWORD, login, make_staff

PUBLIC = ["/", "/offices/columbus", "/offices/lyon", "/feed.rss", "/feed.json", "/offices/columbus/feed.atom",
          "/offices/lyon/feed.rss", "/feeds.opml"]
COLUMBUS = {"/offices/columbus", "/offices/columbus/feed.atom"}
LONG_AGO = datetime(2026, 1, 5, 9, 30, tzinfo=timezone.utc)


@pytest.fixture
def demo(runner):
    assert runner.invoke(args=["demo"]).exit_code == 0


def add_post(sessions, username: str, pid: str) -> None:
    """A new post of the source username, stored as the poller does."""
    with sessions() as s:
        src = s.scalars(select(Source).where(Source.username == username)).one()
        store_posts(s, src, [XPost(id=pid, author=XUser("", "", ""), text=f"news {pid}", links=(), media=(),
                                   created_at=datetime(2030, 1, 1, tzinfo=timezone.utc))])
        s.commit()


def etags(client, urls) -> dict[str, str]:
    answers = {url: client.get(url) for url in urls}
    assert all(a.status_code == 200 for a in answers.values()), {u: a.status_code for u, a in answers.items()}
    return {url: answer.headers["ETag"] for url, answer in answers.items()}


def changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {url for url in before if before[url] != after[url]}


def private_feed(sessions, username: str, office: str) -> str:
    """The private RSS path of a new staff member of office."""
    make_staff(sessions, username, office=office)
    with sessions() as s:
        token = accounts.rotate_feed_token(s, s.scalars(select(User).where(User.username == username)).one())
        s.commit()
    return f"/private/{token}/feed.rss"


def fastpath(app):
    return app.extensions["feedapp.fastpath"]


def test_an_office_post_moves_that_offices_validators_only(demo, client, sessions):
    before = etags(client, PUBLIC)
    add_post(sessions, "HPL_Columbus", "2900000000000000101")
    after = etags(client, PUBLIC)
    assert changed(before, after) == COLUMBUS
    assert b"2900000000000000101" in client.get("/offices/columbus/feed.atom").data
    assert b"2900000000000000101" not in client.get("/feed.rss").data


@pytest.mark.parametrize("username, office_wide", [("HPL_AllHands", False), ("HPL_Lyon", True)],
                         ids=["company-staff-only", "office-staff-only"])
def test_a_staff_only_post_moves_no_public_validator_and_the_private_ones_that_show_it(
        demo, app, client, sessions, username, office_wide):
    if office_wide:
        with sessions() as s:  # what `sources add HPL_Lyon --office lyon --staff-only` stores
            s.scalars(select(Source).where(Source.username == "HPL_Lyon")).one().staff_only = True
            bump_content_version(s, [SITE])
            s.commit()
    lyon_feed, columbus_feed = private_feed(sessions, "lyon.reader", "lyon"), private_feed(sessions, "ohio", "columbus")
    staff = app.test_client()
    assert login(staff, "lyon.reader", PASSWORD).status_code in (302, 303)
    private = [lyon_feed, columbus_feed]
    before, before_private, before_page = etags(client, PUBLIC), etags(client, private), etags(staff, ["/"])

    add_post(sessions, username, "2900000000000000102")

    assert changed(before, etags(client, PUBLIC)) == set()
    after_private = etags(client, private)
    assert changed(before_private, after_private) == ({lyon_feed} if office_wide else {lyon_feed, columbus_feed})
    assert changed(before_page, etags(staff, ["/"])) == {"/"}  # a signed-in reader's page shows it too
    assert b"2900000000000000102" in client.get(lyon_feed).data


@pytest.mark.parametrize("change", [["offices", "add", "depot-9", "Depot 9"], ["sources", "remove", "HPL_Lyon"]],
                         ids=["office-added", "source-removed"])
def test_a_site_change_moves_every_validator(demo, client, runner, sessions, change):
    private = [private_feed(sessions, "ohio", "columbus")]
    before = etags(client, PUBLIC + private)
    result = runner.invoke(args=change)
    assert result.exit_code == 0, result.output
    assert changed(before, etags(client, PUBLIC + private)) == set(PUBLIC + private)


def test_the_fast_path_keeps_answering_for_scopes_a_write_left_alone(demo, app, client, sessions):
    company, office = "/feed.rss", "/offices/columbus/feed.atom"
    first = {url: client.get(url) for url in (company, office)}  # through Flask: remembered
    add_post(sessions, "HPL_Columbus", "2900000000000000103")

    hits = fastpath(app).hits
    again = client.get(company, headers={"If-None-Match": first[company].headers["ETag"]})
    assert again.status_code == 304 and fastpath(app).hits == hits + 1
    body = client.get(company)
    assert body.status_code == 200 and body.data == first[company].data and fastpath(app).hits == hits + 2

    fresh = client.get(office, headers={"If-None-Match": first[office].headers["ETag"]})
    assert fresh.status_code == 200 and fastpath(app).hits == hits + 2  # its scope moved: Flask answered
    assert b"2900000000000000103" in fresh.data
    assert client.get(office, headers={"If-None-Match": fresh.headers["ETag"]}).status_code == 304
    assert fastpath(app).hits == hits + 3  # and the new answer is remembered


def test_last_modified_is_the_newest_change_among_the_scopes_shown(demo, client, sessions):
    with sessions() as s:  # every scope last changed long ago (a new version, so the workers re-read it)
        s.execute(update(ScopeVersion).values(version=ScopeVersion.version + 1, changed_at=LONG_AGO))
        s.commit()
    long_ago = format_datetime(LONG_AGO, usegmt=True)
    assert {client.get(url).headers["Last-Modified"] for url in PUBLIC} == {long_ago}

    add_post(sessions, "HPL_Columbus", "2900000000000000104")
    with sessions() as s:
        columbus_id = s.scalar(select(Office.id).where(Office.slug == "columbus"))
        written = s.scalar(select(ScopeVersion.changed_at).where(ScopeVersion.scope == f"public:office:{columbus_id}"))
    assert written > LONG_AGO
    for url in PUBLIC:
        expected = written if url in COLUMBUS else LONG_AGO
        answer = client.get(url)
        assert answer.headers["Last-Modified"] == format_datetime(expected.replace(microsecond=0), usegmt=True), url
        # A reader that only sends If-Modified-Since still gets its 304 where nothing it shows changed.
        again = client.get(url, headers={"If-Modified-Since": long_ago})
        assert again.status_code == (200 if url in COLUMBUS else 304), url


@pytest.fixture
def probe(demo, app):
    """/probe: a cached response whose Variant takes office, company and a reader from the query."""

    def show_probe():
        from flask import request
        args = request.args
        reader = 1 if args.get("staff") else None  # stands in for a private feed's owner
        return cached_response(variant(page=False, office=args.get("office"), reader=reader,
                                       company=not args.get("no_company")),
                               lambda: b"probe", content_type="text/plain", cache_control="public, max-age=60")

    app.add_url_rule("/probe", "probe", show_probe)
    return app.test_client()


@pytest.mark.parametrize("query, moved_by", [
    # A post's own page (/posts/ID) may show any office's post: EVERY_OFFICE.
    (f"office={EVERY_OFFICE}", {"HPL_Columbus", "HPL_Lyon", "HarborPineNews"}),
    (f"office={EVERY_OFFICE}&staff=1", {"HPL_Columbus", "HPL_Lyon", "HarborPineNews", "HPL_AllHands"}),
    ("office=columbus&no_company=1", {"HPL_Columbus"}),  # an office-only feed
    ("no_company=1", set()),  # no posts at all (a list of feeds): the site scope only
], ids=["every-office", "every-office-staff", "office-only", "no-posts"])
def test_the_variant_names_the_scopes_a_response_shows(probe, sessions, query, moved_by):
    url = f"/probe?{query}"
    before = etags(probe, [url])
    for i, username in enumerate(["HPL_Columbus", "HPL_Lyon", "HarborPineNews", "HPL_AllHands"]):
        add_post(sessions, username, f"290000000000000020{i}")
        after = etags(probe, [url])
        assert bool(changed(before, after)) == (username in moved_by), username
        before = after


def test_store_posts_bumps_the_scope_of_its_source(db_url, sessions):
    with sessions() as s:
        office = Office(slug="depot", name="Depot")
        s.add(office)
        s.flush()
        sources = {
            "company": Source(x_id="1", username="company", error_count=0),
            "office": Source(x_id="2", username="office", office_id=office.id, error_count=0),
            "staff": Source(x_id="3", username="staff", office_id=office.id, staff_only=True, error_count=0),
            "protected": Source(x_id="4", username="protected", protected=True, error_count=0),
        }
        s.add_all(sources.values())
        s.commit()
        expected = {"company": "public:company", "office": f"public:office:{office.id}",
                    "staff": f"staff:office:{office.id}", "protected": "staff:company"}
        for n, (name, source) in enumerate(sources.items()):
            before = dict(s.execute(select(ScopeVersion.scope, ScopeVersion.version)).all())
            post = XPost(str(2900000000000000300 + n), XUser("", "", ""), "text", (), (), datetime.now(timezone.utc))
            assert store_posts(s, source, [post]) and store_posts(s, source, [post]) == []  # the second stores nothing
            s.commit()
            after = dict(s.execute(select(ScopeVersion.scope, ScopeVersion.version)).all())
            assert posts_scope(source.office_id, source.is_staff_only) == expected[name]
            moved = {scope for scope in after if after[scope] != before.get(scope, 0)}
            assert moved == {expected[name]} and after[expected[name]] == before.get(expected[name], 0) + 1, name


def test_migration_carries_the_version_into_every_scope_and_back(db_url):
    """0008_scope_versions: every scope starts where the one counter was; downgrading lands above them all."""
    config = alembic_config(db_url)
    engine = make_engine(db_url)
    sqlite = engine.dialect.name == "sqlite"
    stamp = LONG_AGO.replace(tzinfo=None) if sqlite else LONG_AGO
    try:
        command.downgrade(config, "0007_threads")
        with engine.begin() as conn:
            ids = conn.execute(insert(Office.__table__).returning(Office.__table__.c.id), [
                {"slug": "a", "name": "A", "created_at": LONG_AGO}, {"slug": "b", "name": "B", "created_at": LONG_AGO}]).scalars().all()
            conn.execute(text("UPDATE content_version SET version = 41, changed_at = :at"), {"at": stamp})
        upgrade(db_url)
        with engine.connect() as conn:
            rows = {scope: (version, changed_at) for scope, version, changed_at in conn.execute(
                select(ScopeVersion.scope, ScopeVersion.version, ScopeVersion.changed_at))}
        scopes = {SITE, "public:company", "staff:company"} | {f"{a}:office:{i}" for a in ("public", "staff") for i in ids}
        assert rows == {scope: (41, LONG_AGO) for scope in scopes}  # 2 × offices + 3 rows

        with engine.begin() as conn:
            conn.execute(text("UPDATE scope_versions SET version = 50 WHERE scope = :s"), {"s": f"staff:office:{ids[1]}"})
        command.downgrade(config, "0007_threads")
        with engine.connect() as conn:
            version, changed_at = conn.execute(text("SELECT version, changed_at FROM content_version WHERE id = 1")).one()
        assert version == 51  # above every scope's version: no ETag made before comes back
        if isinstance(changed_at, str):  # SQLite keeps a naive UTC text
            changed_at = datetime.fromisoformat(changed_at).replace(tzinfo=timezone.utc)
        assert changed_at == LONG_AGO
    finally:
        upgrade(db_url)  # back to the head whatever happened: the next tests share this database
        engine.dispose()
