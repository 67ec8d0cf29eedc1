"""Threads, one copy of a post reached twice, reposters and reply parents, as the queries give them to pages and feeds.

Posts come from the fake X API through `poll`, on SQLite and PostgreSQL (the db_url fixture).
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from feedapp.ingest.store import store_posts
from feedapp.migrate import upgrade
from feedapp.db import make_engine
from feedapp.models import Office, Post, Source
from feedapp.queries import post_with_thread, posts_for_feed
from feedapp.xapi.types import XPost, XUser
from tests.helpers import follow, poll


def office_id(sessions, slug: str) -> int:
    with sessions() as s:
        return s.scalar(select(Office.id).where(Office.slug == slug))


def ids_of(posts) -> list[int]:
    return [p.id for p in posts]


@pytest.fixture
def company(fake_x, runner):
    """@hq (company-wide), @depot (office depot7), @outsider (not followed)."""
    fake_x.add_user("hq", name="Headquarters")
    fake_x.add_user("depot", name="Depot Seven")
    fake_x.add_user("outsider", name="Someone Else")
    assert runner.invoke(args=["offices", "add", "depot7", "Depot 7"]).exit_code == 0
    return fake_x


def follow_and_poll(runner):
    follow(runner, "hq")
    follow(runner, "depot", "--office", "depot7")
    result = poll(runner, "--all")
    assert result.exit_code == 0 and "error" not in result.output, result.output


def test_an_accounts_replies_to_itself_are_one_thread_in_order(company, runner, sessions):
    head = int(company.post("hq", "Winter schedule, a thread: 1"))
    other = int(company.post("depot", "Unrelated depot news"))
    two = int(company.post("hq", "2: pickups move to 7:00", reply_to=head))
    three = int(company.post("hq", "3: the canteen opens at 6:30", reply_to=two))
    follow_and_poll(runner)
    with sessions() as s:
        posts = {p.id: p for p in posts_for_feed(s, office_id(sessions, "depot7"))}
        assert set(posts) == {head, other, two, three}  # parts stay in the feed; pages fold them
        first = posts[head]
        assert ids_of(first.thread_parts) == [two, three]
        assert [(p.thread_position, p.thread_total) for p in (first, posts[two], posts[three])] == [(1, 3), (2, 3), (3, 3)]
        assert posts[two].thread_head is first and posts[three].thread_head is first
        assert posts[two].is_thread_part and not first.is_thread_part
        assert posts[two].reply_parent is None  # a thread part, not a reply
        assert posts[other].thread_position is None and posts[other].thread_parts == ()


def test_a_part_arriving_later_joins_its_thread(company, runner, sessions):
    head = int(company.post("hq", "Safety walk, a thread"))
    follow_and_poll(runner)
    two = int(company.post("hq", "2: bring your vest", reply_to=head))
    assert poll(runner, "--all").exit_code == 0
    with sessions() as s:
        first = post_with_thread(s, head, staff=False)
        assert ids_of(first.thread_parts) == [two] and first.thread_total == 2
        # A page that holds only the new part still numbers it and names its first post.
        part = posts_for_feed(s, None, limit=1)[0]
        assert (part.id, part.thread_position, part.thread_total, part.thread_head.id) == (two, 2, 2, head)


def test_parts_stored_before_their_parent_are_moved_under_the_first_post(company, runner, sessions):
    """A catch-up reads newest first: part 3 can be stored a page before part 2 names the first post."""
    follow_and_poll(runner)
    with sessions() as s:
        hq = s.scalar(select(Source).where(Source.username == "hq"))
        author = XUser(id=hq.x_id, username="hq", name="Headquarters")
        when = datetime(2030, 1, 1, tzinfo=timezone.utc)

        def part(post_id: int, parent: int | None) -> XPost:
            return XPost(id=str(post_id), author=author, text=f"part {post_id}", links=(), media=(), created_at=when,
                         reply_to_id=str(parent) if parent else None, reply_to_user_id=hq.x_id if parent else None)

        store_posts(s, hq, [part(9003, 9002)])  # its parent is not stored yet: it stands in as the first post
        assert s.get(Post, 9003).thread_id == 9002
        store_posts(s, hq, [part(9002, 9001), part(9001, None)])
        s.commit()
        assert [s.get(Post, i).thread_id for i in (9001, 9002, 9003)] == [None, 9001, 9001]
        first = post_with_thread(s, 9003, staff=False).thread_head
        assert first.id == 9001 and ids_of(first.thread_parts) == [9002, 9003]


def test_a_reply_to_another_account_keeps_its_parent(company, runner, sessions):
    question = int(company.post("depot", "When does the winter schedule start?"))
    answer = int(company.post("hq", "Monday!", reply_to=question))
    stranger = int(company.post("outsider", "Is the depot hiring?"))
    unknown_parent = int(company.post("hq", "Yes, see the jobs page", reply_to=stranger))
    follow_and_poll(runner)
    with sessions() as s:
        posts = {p.id: p for p in posts_for_feed(s, office_id(sessions, "depot7"))}
        assert posts[answer].reply_parent.id == question and posts[answer].thread_position is None
        assert posts[unknown_parent].reply_parent is None  # not stored: the label alone says it is a reply
        # Outside the office's scope the parent is still a public post: shown, with its text.
        assert post_with_thread(s, answer, staff=False).reply_parent.text == "When does the winter schedule start?"


def test_a_staff_only_parent_is_not_shown_to_public_readers(company, runner, sessions):
    company.add_user("board", name="Board")
    question = int(company.post("board", "Board-only question about the merger"))
    answer = int(company.post("hq", "We cannot say yet", reply_to=question))
    follow(runner, "board", "--staff-only")
    follow_and_poll(runner)
    with sessions() as s:
        assert post_with_thread(s, answer, staff=False).reply_parent is None
        assert post_with_thread(s, answer, staff=True).reply_parent.id == question
        assert post_with_thread(s, question, staff=False) is None  # like an unknown id
        assert post_with_thread(s, question, staff=True).id == question


def test_a_company_post_reposted_by_an_office_appears_once_in_that_office(company, runner, sessions):
    original = int(company.post("hq", "Record safety month"))
    repost = int(company.post("depot", retweet_of=original))
    follow_and_poll(runner)
    depot7 = office_id(sessions, "depot7")
    with sessions() as s:
        office = posts_for_feed(s, depot7)
        assert ids_of(office) == [repost]  # where it last appeared, naming who reposted it
        assert office[0].reposted_by == ("depot",)
        assert ids_of(posts_for_feed(s, None)) == [original]  # the company feed has no office repost
        assert posts_for_feed(s, None)[0].reposted_by == ()


def test_one_post_reposted_by_two_sources_appears_once_naming_both(company, runner, sessions):
    outside = int(company.post("outsider", "Great work, Harbor team"))
    by_hq = int(company.post("hq", retweet_of=outside))
    by_depot = int(company.post("depot", retweet_of=outside))
    follow_and_poll(runner)
    with sessions() as s:
        office = posts_for_feed(s, office_id(sessions, "depot7"))
        assert ids_of(office) == [by_depot] and office[0].reposted_by == ("depot", "hq")
        company_feed = posts_for_feed(s, None)
        assert ids_of(company_feed) == [by_hq] and company_feed[0].reposted_by == ("hq",)
        # The original's own id finds the post too (its page), though only its reposts are stored.
        assert post_with_thread(s, int(outside), staff=False).id == by_depot


def test_an_office_only_feed_leaves_what_the_company_sources_carry_to_the_company_feed(company, runner, sessions):
    original = int(company.post("hq", "Record safety month"))
    company.post("depot", retweet_of=original)  # the office reposts a company post
    office_post = int(company.post("depot", "Depot open day"))
    company.post("hq", retweet_of=office_post)  # the company amplifies an office post
    outside = int(company.post("outsider", "Great work, depot team"))
    by_depot = int(company.post("depot", retweet_of=outside))
    own = int(company.post("depot", "Canteen menu"))
    follow_and_poll(runner)
    depot7 = office_id(sessions, "depot7")
    with sessions() as s:
        local = posts_for_feed(s, depot7, company=False)
        assert ids_of(local) == [own, by_depot]  # not the office's repost, nor the post the company reposted
        assert local[1].reposted_by == ("depot",)
        company_ids = {p.canonical_id for p in posts_for_feed(s, None)}
        assert company_ids & {p.canonical_id for p in local} == set()
        combined = {p.canonical_id for p in posts_for_feed(s, depot7)}
        assert combined == company_ids | {p.canonical_id for p in local}


def test_keyset_pages_stay_exact_with_copies_dropped(company, runner, sessions):
    """Every post once, in order, across pages of every size, while copies sit between them."""
    originals = [int(company.post("hq", f"company post {i}")) for i in range(12)]
    for i in (1, 4, 5, 9):
        company.post("depot", retweet_of=originals[i])
    for i in range(6):
        company.post("depot", f"depot post {i}")
    follow_and_poll(runner)
    depot7 = office_id(sessions, "depot7")
    with sessions() as s:
        everything = ids_of(posts_for_feed(s, depot7, limit=100))
        keys = [s.get(Post, i).repost_of_id or str(i) for i in everything]
        assert len(everything) == 12 + 6 and len(set(keys)) == len(keys)
        for size in (1, 2, 3, 5, 7):
            walked, before = [], None
            while page := posts_for_feed(s, depot7, before=before, limit=size):
                assert len(page) == size or len(walked) + len(page) == len(everything), size
                walked += ids_of(page)
                before = page[-1].id
            assert walked == everything, size


def test_migration_fills_threads_and_copies_of_stored_posts(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    upgrade(url, "0006_visibility")
    engine = make_engine(url)
    now = "2030-01-01 00:00:00"
    with engine.begin() as conn:
        conn.exec_driver_sql("INSERT INTO sources (id, x_id, username, display_name, staff_only, protected, "
                             "error_count, created_at) VALUES (1, '77', 'hq', 'HQ', 0, 0, 0, ?)", (now,))
        rows = [  # id, author, repost_of, reply_to, reply_to_user
            (10, "77", None, None, None), (11, "77", None, "10", "77"), (12, "77", None, "11", "77"),
            (13, "77", None, "99", "88"), (14, "55", "500", None, None), (15, "77", None, "20", "77"),
        ]
        for post_id, author, repost_of, reply_to, reply_user in rows:
            conn.exec_driver_sql(
                "INSERT INTO posts (id, source_id, created_at, author_id, author_username, author_name, text, links, "
                "possibly_sensitive, repost_of_id, reply_to_id, reply_to_user_id, raw, fetched_at) "
                "VALUES (?, 1, ?, ?, 'hq', 'HQ', 't', '[]', 0, ?, ?, ?, '{}', ?)",
                (post_id, now, author, repost_of, reply_to, reply_user, now))
    engine.dispose()
    upgrade(url)
    engine = make_engine(url)
    with engine.connect() as conn:
        got = conn.exec_driver_sql("SELECT id, thread_id, canonical_id FROM posts ORDER BY id").all()
        installation = conn.exec_driver_sql("SELECT value FROM site_settings WHERE key = 'installation_id'").scalar()
    engine.dispose()
    assert got == [(10, None, 10), (11, 10, 11), (12, 10, 12), (13, None, 13), (14, None, 500), (15, 20, 15)]
    assert len(installation) == 36
