"""Readership without tracking: view/open counts, POST /reach, feed readers, the <5 rule, `stats`, the console."""

from __future__ import annotations

import json
import threading
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import select, text, update

from feedapp import readership
from feedapp import reach_report as report
from feedapp.models import FeedReader, FeedSubscribers, Post, ReadCount, SiteSetting, Source
from feedapp.web.reach import REACH_LIMIT
from tests.test_admin import make_user, signed_in

DAY = date(2030, 3, 5)
FEEDLY = "Feedly/1.0 (+http://www.feedly.com/fetcher.html; 123 subscribers; like FeedFetcher-Google)"


@pytest.fixture
def demo(runner):
    result = runner.invoke(args=["demo"])
    assert result.exit_code == 0, result.output


def ids_of(sessions, username: str) -> list[int]:
    with sessions() as s:
        return list(s.scalars(select(Post.id).join(Source).where(Source.username == username).order_by(Post.id)))


def counts(sessions, kind: str = "view") -> dict[tuple[int, int], int]:
    """{(post id, office id): count} of every day."""
    with sessions() as s:
        return {(r.post_id, r.office_id): r.count
                for r in s.scalars(select(ReadCount).where(ReadCount.kind == kind))}


def office_id(sessions, slug: str) -> int:
    with sessions() as s:
        return s.scalar(text("SELECT id FROM offices WHERE slug = :slug"), {"slug": slug})


# --- counting views and opens ---------------------------------------------------------------------------------------

def test_views_count_only_posts_the_page_could_show(demo, sessions):
    company, lyon, columbus = (ids_of(sessions, u) for u in ("HarborPineNews", "HPL_Lyon", "HPL_Columbus"))
    lyon_id = office_id(sessions, "lyon")
    with sessions() as s:
        hidden = company[1]
        s.execute(update(Post).where(Post.id == hidden).values(hidden_at=Post.created_at))
        counted = readership.record_views(s, DAY, lyon_id, [company[0], company[0], lyon[0], columbus[0], hidden, 42],
                                          "view")
        # The company feed shows company-wide posts only.
        counted_company = readership.record_views(s, DAY, 0, [company[0], lyon[0]], "view")
        opened = readership.record_views(s, DAY, 0, [columbus[0], 42], "open")
        s.commit()
    assert (counted, counted_company, opened) == (2, 1, 1)
    assert counts(sessions) == {(company[0], lyon_id): 1, (lyon[0], lyon_id): 1, (company[0], 0): 1}
    assert counts(sessions, "open") == {(columbus[0], 0): 1}


def test_a_batch_is_capped_and_each_id_counts_once(demo, sessions):
    company = ids_of(sessions, "HarborPineNews") + ids_of(sessions, "HarborPineSafe") + ids_of(sessions, "HarborPineHR")
    assert len(company) > 3
    assert readership.valid_ids(list(range(200, 0, -1))) == list(range(151, 201))  # the first 50, sorted
    with sessions() as s:
        readership.record_views(s, DAY, 0, company + company, "view")
        s.commit()
    assert set(counts(sessions).values()) == {1}


def test_concurrent_batches_add_up(demo, sessions):
    """Threads adding to the same rows at once: every one counts (count = count + excluded.count in the database)."""
    posts = ids_of(sessions, "HarborPineNews")[:5]
    threads, rounds = 6, 15
    start = threading.Barrier(threads)
    errors = []

    def reader():
        try:
            start.wait()
            for _ in range(rounds):
                with sessions() as s:
                    readership.record_views(s, DAY, 0, list(reversed(posts)), "view")
                    s.commit()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    workers = [threading.Thread(target=reader) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert errors == []
    assert counts(sessions) == {(p, 0): threads * rounds for p in posts}


# --- POST /reach ----------------------------------------------------------------------------------------------------

def beacon(client, body, content_type="text/plain;charset=UTF-8", **kw):
    return client.post("/reach", data=body if isinstance(body, (str, bytes)) else json.dumps(body),
                       content_type=content_type, **kw)


def test_reach_stores_views_and_opens_without_any_cookie(demo, client, sessions):
    company, lyon = ids_of(sessions, "HarborPineNews"), ids_of(sessions, "HPL_Lyon")
    client.set_cookie("office", "lyon")  # whatever the browser holds, the view neither reads nor sets one
    response = beacon(client, {"office": "lyon", "views": [str(company[0]), str(lyon[0]), "99"],
                               "opens": [str(lyon[1])]})
    assert response.status_code == 204, response.get_data(as_text=True)
    assert "Set-Cookie" not in response.headers
    assert response.headers["Cache-Control"] == "no-store"
    response = beacon(client, {"office": None, "views": [company[0]]}, content_type="application/json")
    assert response.status_code == 204
    lyon_id = office_id(sessions, "lyon")
    assert counts(sessions) == {(company[0], lyon_id): 1, (lyon[0], lyon_id): 1, (company[0], 0): 1}
    assert counts(sessions, "open") == {(lyon[1], 0): 1}


@pytest.mark.parametrize("body", [
    "not json", "[1, 2]", '{"views": "123"}', '{"views": [-1]}', '{"views": ["12a"]}', '{"views": [true]}',
    '{"office": "atlantis", "views": []}', '{"office": 3}', '{"opens": [99999999999999999999]}', b"\xff\xfe",
    "[" * 2000 + "]" * 2000,  # nesting past Python's recursion limit, within MAX_BODY
])
def test_reach_refuses_malformed_input(demo, client, sessions, body):
    response = beacon(client, body)
    assert response.status_code == 400
    assert response.get_json()["error"] == "Bad request"
    assert counts(sessions) == {} and counts(sessions, "open") == {}


def test_reach_refuses_large_bodies_and_other_types(demo, client):
    assert beacon(client, json.dumps({"views": [], "pad": "x" * 5000})).status_code == 413
    assert beacon(client, "{}", content_type="application/x-www-form-urlencoded").status_code == 415


def test_reach_is_throttled_per_client_address(demo, client, sessions):
    post = ids_of(sessions, "HarborPineNews")[0]
    for _ in range(REACH_LIMIT.count):
        assert beacon(client, {"views": [str(post)]}).status_code == 204
    refused = beacon(client, {"views": [str(post)]})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert counts(sessions) == {(post, 0): REACH_LIMIT.count}
    other = beacon(client, {"views": [str(post)]}, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 204


# --- feed readers ---------------------------------------------------------------------------------------------------

def feed(client, path="/feed.rss", address="10.1.1.1", agent="NetNewsWire (RSS Reader; https://netnewswire.com/)",
         **headers):
    return client.get(path, headers={"User-Agent": agent, **headers}, environ_base={"REMOTE_ADDR": address})


def readers(sessions) -> dict[str, int]:
    with sessions() as s:
        rows = s.scalars(select(FeedReader)).all()
    found: dict[str, int] = {}
    for row in rows:
        found[row.feed] = found.get(row.feed, 0) + 1
    return found


def test_distinct_feed_readers_per_feed(demo, client, sessions):
    assert feed(client).status_code == 200
    assert feed(client).status_code == 200  # the same client again: still one
    assert feed(client, address="10.1.1.2").status_code == 200
    assert feed(client, agent="Reeder/5").status_code == 200  # another app on the same address: another reader
    assert feed(client, "/offices/lyon/feed.atom").status_code == 200
    assert feed(client, "/offices/lyon/local/feed.json").status_code == 200
    assert feed(client, "/offices/atlantis/feed.rss").status_code == 404  # not a feed: not counted
    assert readers(sessions) == {"company": 3, "office:lyon": 1, "local:lyon": 1}
    with sessions() as s:  # the first client's rows of three feeds share no hash: they cannot be joined up
        hashes = s.scalars(select(FeedReader.client)).all()
    assert len(set(hashes)) == len(hashes) == 5


def test_304_answers_count_too(demo, client, sessions):
    first = feed(client)
    etag = first.headers["ETag"]
    again = feed(client, address="10.1.1.2", **{"If-None-Match": etag})
    assert again.status_code == 304
    # The third is answered by the fast path (feedapp.web.fastpath), before Flask runs.
    hits = client.application.extensions["feedapp.fastpath"].hits
    third = feed(client, address="10.1.1.3", **{"If-None-Match": etag})
    assert third.status_code == 304 and client.application.extensions["feedapp.fastpath"].hits == hits + 1
    assert readers(sessions) == {"company": 3}


def test_private_feeds_count_under_one_key(demo, app, runner, sessions):
    make_user(sessions, "deckhand", office="lyon")
    url = runner.invoke(args=["users", "feed-url", "deckhand"]).output.strip()
    path = url[url.index("/private/"):]
    client = app.test_client()
    assert feed(client, path).status_code == 200
    with sessions() as s:
        assert [r.feed for r in s.scalars(select(FeedReader))] == ["private"]


def test_aggregators_count_by_their_subscribers_not_as_a_client(demo, client, sessions):
    assert feed(client, agent=FEEDLY).status_code == 200
    assert feed(client, agent=FEEDLY.replace("123", "120")).status_code == 200  # the day's highest is kept
    assert feed(client, agent="NewsBlur Feed Fetcher - 12 subscribers - http://www.newsblur.com/site/1/x").status_code == 200
    with sessions() as s:
        subs = {(r.feed, r.aggregator): r.subscribers for r in s.scalars(select(FeedSubscribers))}
    assert subs == {("company", "Feedly"): 123, ("company", "NewsBlur"): 12}
    assert readers(sessions) == {}
    with sessions() as s:
        readership.record_subscribers(s, DAY, "company", "Feedly", 150)
        readership.record_subscribers(s, DAY, "company", "Feedly", 140)
        s.commit()
        assert s.scalar(select(FeedSubscribers.subscribers).where(FeedSubscribers.day == DAY)) == 150


def test_the_raw_address_and_user_agent_are_never_stored(demo, client, sessions):
    address, agent = "203.0.113.77", "SecretReader/9.9 (unique-agent-string)"
    assert feed(client, address=address, agent=agent).status_code == 200
    with sessions() as s:
        stored = []
        for table in ("feed_readers", "feed_subscribers", "read_counts", "site_settings", "audit_events"):
            stored += [repr(tuple(row)) for row in s.execute(text(f"SELECT * FROM {table}"))]
    dump = "\n".join(stored)
    assert readers(sessions) == {"company": 1}
    for secret in (address, agent, "unique-agent-string", "203.0.113"):
        assert secret not in dump


def every_row(sessions) -> str:
    """Every row of every table, as text."""
    from sqlalchemy import inspect

    with sessions() as s:
        return "\n".join(repr(tuple(row)) for table in inspect(s.get_bind()).get_table_names()
                         for row in s.execute(text(f'SELECT * FROM "{table}"')))


def test_a_beacon_leaves_its_address_in_no_table(demo, client, sessions):
    # Not even for the throttle: a row naming the address, written beside the counts it added, would say
    # who was reading at that moment (and on PostgreSQL, by transaction ids, what).
    post = ids_of(sessions, "HarborPineNews")[0]
    for address in ("203.0.113.78", "2001:db8:77:1::5"):
        assert beacon(client, {"views": [str(post)]}, environ_base={"REMOTE_ADDR": address}).status_code == 204
    dump = every_row(sessions)
    assert counts(sessions) == {(post, 0): 2}
    for secret in ("203.0.113.78", "2001:db8:77:1"):
        assert secret not in dump


def test_the_salt_rotates_each_day_and_old_rows_go(demo, app, client, sessions):
    counter = app.extensions["feedapp.feed_readers"]
    counter.today = lambda: DAY
    with sessions() as s:
        s.add(FeedReader(day=DAY - timedelta(days=readership.READER_DAYS + 1), feed="company", client="old"))
        s.add(FeedReader(day=DAY - timedelta(days=3), feed="company", client="recent"))
        s.commit()
    assert feed(client).status_code == 200
    with sessions() as s:
        first_salt = s.get(SiteSetting, readership.SALT_KEY).value
        first_hash = s.scalar(select(FeedReader.client).where(FeedReader.day == DAY))
    assert first_salt.startswith(DAY.isoformat() + ":")
    counter.today = lambda: DAY + timedelta(days=1)
    assert feed(client).status_code == 200
    with sessions() as s:
        second_salt = s.get(SiteSetting, readership.SALT_KEY).value
        second_hash = s.scalar(select(FeedReader.client).where(FeedReader.day == DAY + timedelta(days=1)))
        kept = set(s.scalars(select(FeedReader.client).where(FeedReader.day < DAY)))
    assert second_salt.startswith((DAY + timedelta(days=1)).isoformat() + ":")
    assert second_salt.partition(":")[2] != first_salt.partition(":")[2]
    assert first_salt.partition(":")[2] not in second_salt  # yesterday's salt is gone: its hashes cannot be remade
    assert second_hash != first_hash  # the same client is another pseudonym each day
    assert kept == {"recent"}


def test_workers_share_one_salt_per_day(demo, sessions):
    with sessions() as a, sessions() as b:
        assert readership.daily_salt(a, DAY) == readership.daily_salt(b, DAY)
        assert readership.daily_salt(a, DAY + timedelta(days=1)) == readership.daily_salt(b, DAY + timedelta(days=1))
        assert readership.daily_salt(a, DAY) != readership.daily_salt(b, DAY + timedelta(days=2))


def stored_salt(sessions) -> str | None:
    with sessions() as s:
        row = s.get(SiteSetting, readership.SALT_KEY)
        return row.value if row is not None else None


def test_only_a_salt_whose_day_is_over_is_dropped(app, sessions):
    with sessions() as s:
        assert readership.drop_stale_salt(s, DAY) is False  # none stored
        salt = readership.daily_salt(s, DAY)
        assert readership.drop_stale_salt(s, DAY) is False
        assert readership.drop_stale_salt(s, DAY - timedelta(days=1)) is False  # a clock behind: still not over
        s.commit()
    assert stored_salt(sessions) == f"{DAY.isoformat()}:{salt.hex()}"
    with sessions() as s:
        assert readership.drop_stale_salt(s, DAY + timedelta(days=1)) is True
        s.commit()
    assert stored_salt(sessions) is None


def test_the_poller_deletes_a_finished_days_salt_on_a_quiet_site(app, sessions):
    """No feed answer after midnight (which would replace it): the poll cycle still takes the day's salt away, so
    neither the database nor a backup of it can recompute that day's client hashes from guessed addresses."""
    from feedapp.ingest.poll import PollSettings, poll_cycle
    from feedapp.xapi import XClient, XSettings

    with sessions() as s:
        salt = readership.daily_salt(s, DAY)
    x_client, settings = XClient(XSettings.from_config(app.config)), PollSettings.from_config(app.config)
    last_second = datetime(DAY.year, DAY.month, DAY.day, 23, 59, 59, tzinfo=timezone.utc)
    try:
        poll_cycle(sessions, x_client, settings, now=last_second)
        assert stored_salt(sessions) == f"{DAY.isoformat()}:{salt.hex()}"  # its day is not over: kept
        poll_cycle(sessions, x_client, settings, now=last_second + timedelta(seconds=1))
    finally:
        x_client.close()
    assert stored_salt(sessions) is None
    with sessions() as s:
        assert readership.daily_salt(s, DAY + timedelta(days=1)) != salt  # the next feed answer makes a new one


def test_old_reader_rows_go_when_the_poller_dropped_the_salt_first(app, sessions):
    """The poller deletes a finished day's salt (drop_stale_salt) before the next day's first feed answer: a new
    day's salt is then inserted, not replaced, and rows past READER_DAYS must still go (the README's 400 days)."""
    with sessions() as s:
        readership.daily_salt(s, DAY)
        s.add(FeedReader(day=DAY - timedelta(days=readership.READER_DAYS), feed="company", client="old"))
        s.add(FeedReader(day=DAY - timedelta(days=3), feed="company", client="recent"))
        s.commit()
        assert readership.drop_stale_salt(s, DAY + timedelta(days=1)) is True
        s.commit()
        readership.daily_salt(s, DAY + timedelta(days=1))
    with sessions() as s:
        assert set(s.scalars(select(FeedReader.client))) == {"recent"}


@pytest.mark.parametrize("agent, expected", [
    (FEEDLY, ("Feedly", 123)),
    ("Mozilla/5.0 (compatible; Inoreader/1.0; +http://www.inoreader.com/feed-fetcher; 45 subscribers; )",
     ("Inoreader", 45)),
    ("NewsBlur Feed Fetcher - 12 subscribers - http://www.newsblur.com/site/1234/x", ("NewsBlur", 12)),
    ("Feedbin feed-id:1373711 - 7 subscribers", ("Feedbin", 7)),
    ("Mozilla/5.0 (compatible; theoldreader.com; 9 subscribers; feed-id=abc)", ("The Old Reader", 9)),
    ("Tiny Tiny RSS/22.08 (Unsupported) (https://tt-rss.org/)", ("Tiny Tiny RSS", None)),
    ("Bloglovin/1.0 (http://www.bloglovin.com; 30 readers)", ("Bloglovin", 30)),
    ("Mozilla/5.0 (compatible; FeedHQ/1.0; 1 subscriber)", ("FeedHQ", 1)),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120", None),
    ("NetNewsWire (RSS Reader; https://netnewswire.com/)", None),
    ("", None),
])
def test_parse_aggregator(agent, expected):
    assert readership.parse_aggregator(agent) == expected


def test_an_aggregator_without_a_count_is_one_client(demo, client, sessions):
    assert feed(client, agent="Tiny Tiny RSS/22.08 (https://tt-rss.org/)").status_code == 200
    assert readers(sessions) == {"company": 1}


# --- shown with the <5 rule ------------------------------------------------------------------------------------------

def test_small_groups_merge_into_other_and_small_counts_never_show():
    assert report.shown(0) == 0 and report.shown(4) is None and report.shown(5) == 5
    assert report.merge_small({1: 9, 2: 5, 3: 1, 0: 6}) == [(1, 9), (0, 6), ("other", 6)]
    # "other" under 5 would be the total minus the rest: the smallest shown group joins it.
    assert report.merge_small({1: 9, 2: 3, 3: 1, 0: 5}) == [(1, 9), ("other", 9)]
    assert report.merge_small({1: 6, 2: 2}) == [("other", 8)]
    assert report.merge_small({1: 3, 2: 2}) == [("other", 5)]
    assert report.merge_small({1: 7}) == [(1, 7)]


def seed_counts(sessions) -> tuple[int, int, int]:
    """Views of one company post: 7 on the Lyon feed, 5 on the company feed, 2 on Columbus; 3 opens."""
    post = ids_of(sessions, "HarborPineNews")[0]
    lyon, columbus = office_id(sessions, "lyon"), office_id(sessions, "columbus")
    with sessions() as s:
        for office, n in ((lyon, 7), (0, 5), (columbus, 2)):
            for _ in range(n):
                readership.record_views(s, date.today(), office, [post], "view")
        for _ in range(3):
            readership.record_views(s, date.today(), 0, [post], "open")
        for n in range(6):
            readership.record_feed_reader(s, date.today(), "company", f"client{n}")
        readership.record_feed_reader(s, date.today(), "office:lyon", "client0")
        readership.record_subscribers(s, date.today(), "company", "Feedly", 123)
        s.commit()
    return post, lyon, columbus


def test_stats_prints_counts_with_small_groups_merged(demo, runner, sessions):
    post, _, _ = seed_counts(sessions)
    result = runner.invoke(args=["stats", "--days", "2"])
    assert result.exit_code == 0, result.output
    out = result.output
    line = next(l for l in out.splitlines() if l.strip().startswith(str(post)))
    assert "views 14" in line and "opens <5" in line and "[lyon 7, other 7]" in line
    # Columbus's 2 views merge into "other", and the company feed's 5 with them: "other 2" would be 14 - 7 - 5.
    assert "columbus" not in out and "company-feed" not in line
    assert "Post pages opened: <5" in out
    assert "company\treaders 6\tFeedly 123" in out and "office:lyon\treaders <5" in out
    assert "Must-read acknowledgements" in out
    assert runner.invoke(args=["stats", "--days", "0"]).exit_code != 0


def test_stats_counts_acknowledgements_with_the_rule(demo, runner, sessions):
    from feedapp.models import Acknowledgement, MustRead

    post = ids_of(sessions, "HarborPineNews")[0]
    offices = ["lyon"] * 6 + ["columbus"] * 5 + [None] * 2
    users = [make_user(sessions, f"crew{n}", office=office, password=None) for n, office in enumerate(offices)]
    with sessions() as s:
        s.add(MustRead(post_id=post, marked_by="cli"))
        s.flush()
        s.add_all(Acknowledgement(post_id=post, user_id=u) for u in users)
        s.commit()
    out = runner.invoke(args=["stats"]).output
    # The console's figures: acknowledged / staff in scope; the 2 without an office are too few to show.
    assert f"{post}\tactive\t[Columbus Depot (Ohio) 5/5, Lyon Saint-Priest Hub 6/6, other <5]" in out


# --- the console -----------------------------------------------------------------------------------------------------

def test_the_console_shows_reach_by_office_with_the_rule(demo, client, sessions):
    post, _, _ = seed_counts(sessions)
    make_user(sessions, "boss", admin=True)
    signed_in(client, "boss")
    page = client.get("/admin/reach").get_data(as_text=True)
    assert "Lyon Saint-Priest Hub: 7" in page and "Other offices: 7" in page and "Company feed: 5" not in page
    assert "Opened: fewer than 5" in page
    assert "Columbus" not in page.split("<h2>", 1)[1]  # merged, not named
    assert "Feedly: 123" in page and f"/posts/{post}" in page
    assert client.get("/admin/reach?days=30").status_code == 200


def test_an_office_editor_sees_their_office_and_company_wide_posts_only(demo, client, sessions):
    seed_counts(sessions)
    columbus_post = ids_of(sessions, "HPL_Columbus")[0]
    with sessions() as s:
        for _ in range(6):
            readership.record_views(s, date.today(), office_id(sessions, "columbus"), [columbus_post], "view")
        s.commit()
    make_user(sessions, "ed", office="lyon", role="editor")
    signed_in(client, "ed")
    page = client.get("/admin/reach").get_data(as_text=True)
    assert f"/posts/{columbus_post}" not in page
    assert "Lyon Saint-Priest Hub: 7" in page and "Columbus" not in page.split("<h2>", 1)[1]
    assert "Feedly: 123" in page  # the company feed is theirs too


def test_anonymous_readers_cannot_see_the_console(demo, client):
    assert client.get("/admin/reach").status_code in (302, 303, 401, 403)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the markup does not depend on the engine: once
def test_reach_page_and_the_pages_that_count_are_valid_html(demo, client, sessions, tmp_path, db_url):
    import shutil

    from tests.conftest import server_missing
    from tests.test_html_valid import vnu_problems

    if shutil.which("java") is None:
        server_missing("no java: the Nu HTML validator needs it (`make browser` installs it)")
    post, _, _ = seed_counts(sessions)
    files = []
    for name, url in (("feed", "/offices/lyon"), ("post", f"/posts/{post}")):
        files.append(tmp_path / f"{name}.html")
        files[-1].write_bytes(client.get(url).data)
    assert b'data-reach="/reach" data-office="lyon"' in files[0].read_bytes()
    assert f'data-reach="/reach" data-open="{post}"'.encode() in files[1].read_bytes()
    make_user(sessions, "boss", admin=True)
    signed_in(client, "boss")
    files.append(tmp_path / "reach.html")
    files[-1].write_bytes(client.get("/admin/reach").data)
    assert b"data-reach" not in files[-1].read_bytes()  # console pages count nothing
    problems = vnu_problems([str(f) for f in files])
    assert problems == [], "\n".join(problems)


def test_the_post_list_shows_each_posts_reach(demo, client, sessions):
    post, _, _ = seed_counts(sessions)
    make_user(sessions, "boss", admin=True)
    signed_in(client, "boss")
    page = client.get(f"/admin/posts?before={post + 1}").get_data(as_text=True)
    card = page[page.index(f'id="p{post}"'):]
    card = card[:card.index("</article>")]
    assert "Last 7 days: seen 14, opened fewer than 5" in card
