"""Must-read posts and acknowledgements: who may mark them, who sees them, "Got it" once per person, the reach counts.

The demo company on SQLite and PostgreSQL: company-wide sources (@HarborPineNews, @HarborPineHR staff-only)
and office ones (@HPL_Lyon, @HPL_Columbus).
"""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import feedparser
import pytest
from sqlalchemy import func, select

from feedapp import accounts, mustread
from feedapp.models import Acknowledgement, AuditEvent, MustRead, Office, User, utcnow
from feedapp.moderation import ModerationError
from feedapp.roles import Actor, Forbidden

from .auth_helpers import csrf, make_staff, set_active
from .test_moderation import console_post, newest, staff_client

SECTION = re.compile(r'<section class="mustread".*?</section>', re.S)


@pytest.fixture
def demo(runner):
    assert runner.invoke(args=["demo"]).exit_code == 0


def mark(runner, post_id: int, *args: str):
    result = runner.invoke(args=["posts", "must-read", str(post_id), *args])
    assert result.exit_code == 0, result.output
    return result.output


def section(html: str) -> str:
    """The page's "Must read" section ("" when there is none)."""
    found = SECTION.search(html)
    return found[0] if found else ""


def acks(sessions, post_id: int) -> int:
    with sessions() as s:
        return s.scalar(select(func.count()).select_from(Acknowledgement).where(Acknowledgement.post_id == post_id))


def row(sessions, post_id: int) -> MustRead | None:
    with sessions() as s:
        found = s.get(MustRead, post_id)
        s.expunge_all()
        return found


def ack(client, post_id: int, page: str = "/", **data):
    token = csrf_from(client, page)
    return client.post(f"/posts/{post_id}/ack", data={"csrf_token": token, "next": page, **data})


def csrf_from(client, page: str) -> str:
    html = client.get(page).get_data(as_text=True)
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    if found:
        return found[1]
    return csrf(client, "/account") if client.get("/account").status_code == 200 else csrf(client, "/login")


# --- marking: who may, and what it writes ------------------------------------------------------------------------

@pytest.mark.parametrize("role, office, source, allowed", [
    ("admin", None, "HPL_Columbus", True),
    ("editor", None, "HarborPineNews", True),  # a company editor: any post
    ("editor", "lyon", "HPL_Lyon", True),  # an office editor: their office's posts
    ("editor", "lyon", "HPL_Columbus", False),
    ("editor", "lyon", "HarborPineNews", False),  # not the company's either
    ("staff", None, "HarborPineNews", False),
])
def test_who_may_mark_and_end_a_must_read(demo, app, sessions, runner, role, office, source, allowed):
    post_id = newest(sessions, source)
    editor = staff_client(app, sessions, "someone", office=office, role=role)
    if role == "staff":  # not in the console at all
        assert editor.get("/admin/posts").status_code == 403
        token = csrf_from(editor, "/")
        answer = editor.post(f"/admin/posts/{post_id}/must-read", data={"csrf_token": token})
    else:
        answer = console_post(editor, f"/admin/posts/{post_id}/must-read")
    if not allowed:
        assert answer.status_code == 403
        assert row(sessions, post_id) is None
        mark(runner, post_id)  # the CLI (an admin) marks it, then the same person may not end it either
        end = (console_post(editor, f"/admin/posts/{post_id}/end-must-read") if role != "staff" else
               editor.post(f"/admin/posts/{post_id}/end-must-read", data={"csrf_token": token}))
        assert end.status_code == 403
        assert row(sessions, post_id).ended_at is None
        return
    assert answer.status_code == 303
    marked = row(sessions, post_id)
    assert marked.marked_by == "someone" and marked.announced_at is None and marked.ended_at is None
    with sessions() as s:
        office_id = s.scalar(select(Office.id).where(Office.slug == office)) if source.startswith("HPL") else None
        if source == "HPL_Columbus":
            office_id = s.scalar(select(Office.id).where(Office.slug == "columbus"))
    assert marked.office_id == office_id and marked.staff_only is False
    assert marked.remind_at is not None and timedelta(hours=23) < marked.remind_at - marked.marked_at <= timedelta(hours=24)
    assert "Must read" in editor.get(f"/admin/must-read").get_data(as_text=True)
    assert console_post(editor, f"/admin/posts/{post_id}/end-must-read").status_code == 303
    assert row(sessions, post_id).ended_at is not None
    with sessions() as s:
        actions = list(s.scalars(select(AuditEvent.action).where(AuditEvent.target == str(post_id))
                                 .order_by(AuditEvent.id)))
    assert actions == ["mark_must_read", "end_must_read"]


def test_marking_refuses_unpublished_posts_twice_active_ones_and_reopens_ended_ones(demo, sessions):
    post_id = newest(sessions, "HarborPineNews")
    cli = Actor.cli()
    with sessions() as s:
        mustread.mark(s, cli, post_id, remind_hours=0)
        s.commit()
        with pytest.raises(ModerationError) as again:
            mustread.mark(s, cli, post_id)
        assert again.value.code == "already"
        assert s.get(MustRead, post_id).remind_at is None  # FEEDAPP_MUST_READ_REMIND 0: no reminder
        mustread.end(s, cli, post_id)
        s.get(MustRead, post_id).announced_at = utcnow()
        s.commit()
        mustread.mark(s, cli, post_id, remind_hours=2)  # re-opened: a new push is due
        s.commit()
        reopened = s.get(MustRead, post_id)
        assert reopened.ended_at is None and reopened.announced_at is None and reopened.remind_at is not None
        hidden = newest(sessions, "HPL_Lyon")
        from feedapp import moderation

        moderation.hide(s, cli, hidden)
        s.commit()
        with pytest.raises(ModerationError) as unpublished:
            mustread.mark(s, cli, hidden)
        assert unpublished.value.code == "unpublished"
        with pytest.raises(Forbidden):
            mustread.mark(s, Actor("lyon-ed", "editor", s.scalar(select(Office.id).where(Office.slug == "lyon"))),
                          newest(sessions, "HPL_Columbus"))


# --- who sees it ---------------------------------------------------------------------------------------------------

def test_an_office_must_read_heads_that_office_only_and_staff_only_ones_stay_with_staff(demo, app, client, sessions,
                                                                                        runner):
    lyon, hr = newest(sessions, "HPL_Lyon"), newest(sessions, "HPL_AllHands")
    mark(runner, lyon)
    mark(runner, hr)
    assert str(lyon) in section(client.get("/offices/lyon").get_data(as_text=True))
    assert str(lyon) not in client.get("/offices/columbus").get_data(as_text=True)
    assert section(client.get("/").get_data(as_text=True)) == ""  # company page, no office chosen
    for url in ("/", "/offices/lyon", "/feed.rss", "/feed.json", "/offices/lyon/feed.atom"):
        assert str(hr) not in client.get(url).get_data(as_text=True), url
    staff = staff_client(app, sessions, "reader", office="lyon")
    page = section(staff.get("/").get_data(as_text=True))
    assert str(hr) in page and str(lyon) in page and page.count("Got it") == 2
    assert "Must read" in page and 'class="badge bmr"' in page
    # Anonymous readers see the must-read but never a button.
    assert "/ack" not in client.get("/offices/lyon").get_data(as_text=True)


def test_a_must_read_comes_first_in_feeds_with_its_category(demo, client, sessions, runner):
    with sessions() as s:
        from feedapp.models import Post, Source

        oldest = s.scalar(select(Post.id).join(Source).where(Source.username == "HarborPineNews",
                                                                 Post.repost_of_id.is_(None)).order_by(Post.id))
    mark(runner, oldest, "--until", (utcnow() + timedelta(days=3)).strftime("%Y-%m-%d"))
    items = client.get("/feed.json").get_json()["items"]
    assert items[0]["id"].endswith(str(oldest)) or str(oldest) in items[0]["url"]
    assert "Must read" in items[0]["tags"] and all("Must read" not in i.get("tags", []) for i in items[1:])
    for url in ("/feed.rss", "/feed.atom", "/offices/lyon/feed.rss"):
        parsed = feedparser.parse(client.get(url).get_data())
        first = parsed.entries[0]
        assert str(oldest) in first.link, url
        label = "À lire" if "lyon" in url else "Must read"  # Lyon's feeds are in French
        assert label in [t.term for t in first.get("tags", [])], url
        assert all(label not in [t.term for t in e.get("tags", [])] for e in parsed.entries[1:]), url
    mark(runner, oldest, "--end")
    first = feedparser.parse(client.get("/feed.rss").get_data()).entries[0]
    assert str(oldest) not in first.link


def test_a_hidden_must_read_leaves_the_section_and_cannot_be_acknowledged(demo, app, client, sessions, runner):
    post_id = newest(sessions, "HarborPineNews")
    mark(runner, post_id)
    staff = staff_client(app, sessions, "reader")
    token = csrf_from(staff, "/")
    assert str(post_id) in section(client.get("/").get_data(as_text=True))
    assert runner.invoke(args=["posts", "hide", str(post_id)]).exit_code == 0
    assert section(client.get("/").get_data(as_text=True)) == ""
    assert section(staff.get("/").get_data(as_text=True)) == ""
    assert str(post_id) not in client.get("/feed.rss").get_data(as_text=True)
    assert staff.post(f"/posts/{post_id}/ack", data={"csrf_token": token}).status_code == 404
    assert acks(sessions, post_id) == 0


def test_an_ended_or_expired_must_read_stops_showing(demo, client, sessions, runner):
    post_id = newest(sessions, "HarborPineNews")
    mark(runner, post_id)
    with sessions() as s:
        s.get(MustRead, post_id).ends_at = utcnow() + timedelta(minutes=5)
        s.commit()
    assert str(post_id) in section(client.get("/").get_data(as_text=True))
    with sessions() as s:
        assert mustread.expire(s, utcnow() + timedelta(minutes=6)) == 1
        s.commit()
    assert section(client.get("/").get_data(as_text=True)) == ""
    assert row(sessions, post_id).ended_at is not None


# --- "Got it" ----------------------------------------------------------------------------------------------------

def test_got_it_once_per_person_changes_only_that_persons_page(demo, app, client, sessions, runner):
    post_id = newest(sessions, "HarborPineNews")
    mark(runner, post_id)
    a, b, c = (staff_client(app, sessions, name, office="lyon") for name in ("ann", "bob", "cat"))
    assert ack(c, post_id).status_code == 303  # cat acknowledged earlier: her page is cached again
    c.get("/")
    cat_etag = c.get("/").headers["ETag"]
    anonymous = client.get("/")
    anonymous_etag = anonymous.headers["ETag"]

    before = a.get("/")
    assert before.headers["Cache-Control"] == "private, no-store"  # a form with this session's token
    assert 'action="/posts/%d/ack"' % post_id in section(before.get_data(as_text=True))
    answer = ack(a, post_id)
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/")
    assert ack(a, post_id).status_code == 303  # a second tap: no second row
    assert acks(sessions, post_id) == 2  # cat's and ann's

    after = a.get("/")
    html = after.get_data(as_text=True)
    assert section(html) == "" and f'id="p{post_id}"' in html
    assert '<p class="ack done">Got it</p>' in html and f'/posts/{post_id}/ack' not in html
    assert "ETag" in a.get("/").headers  # cached again for her

    assert f"/posts/{post_id}/ack" in section(b.get("/").get_data(as_text=True))  # bob still has his button
    assert c.get("/", headers={"If-None-Match": cat_etag}).status_code == 304  # cat's page did not move
    assert client.get("/", headers={"If-None-Match": anonymous_etag}).status_code == 304
    assert str(post_id) in section(client.get("/").get_data(as_text=True))  # still at the top for the public
    # The post's own page: badge, and the form or the line.
    assert "Got it</p>" in a.get(f"/posts/{post_id}").get_data(as_text=True)
    page = b.get(f"/posts/{post_id}").get_data(as_text=True)
    assert "badge bmr" in page and f'action="/posts/{post_id}/ack"' in page


def test_acknowledging_is_refused_without_csrf_anonymously_and_outside_the_audience(demo, app, client, sessions,
                                                                                   runner):
    lyon = newest(sessions, "HPL_Lyon")
    mark(runner, lyon)
    staff = staff_client(app, sessions, "reader", office="lyon")
    assert staff.post(f"/posts/{lyon}/ack").status_code == 400  # no CSRF token
    token = csrf(client, "/login")
    anonymous = client.post(f"/posts/{lyon}/ack", data={"csrf_token": token})
    assert anonymous.status_code == 303 and f"/login?next=/posts/{lyon}" in anonymous.headers["Location"]
    other = staff_client(app, sessions, "columbus-reader", office="columbus")
    token = csrf_from(other, "/")
    assert other.post(f"/posts/{lyon}/ack", data={"csrf_token": token}).status_code == 404
    assert other.post("/posts/123/ack", data={"csrf_token": token}).status_code == 404  # unknown
    unmarked = newest(sessions, "HarborPineNews")
    assert other.post(f"/posts/{unmarked}/ack", data={"csrf_token": token}).status_code == 404
    assert other.get(f"/posts/{lyon}/ack").status_code == 405
    # A next on another site is not followed.
    answer = ack(staff, lyon, next="//evil.example/")
    assert answer.status_code == 303 and "evil" not in answer.headers["Location"]
    assert acks(sessions, lyon) == 1
    # An account deactivated since signing in is refused by the domain function too.
    set_active(sessions, "reader", False)
    with sessions() as s:
        user = accounts.user_by_username(s, "reader")
        with pytest.raises(ModerationError):
            mustread.acknowledge(s, user, lyon)


def test_concurrent_acknowledgements_leave_one_row(demo, sessions, runner):
    post_id = newest(sessions, "HarborPineNews")
    mark(runner, post_id)
    user_id = make_staff(sessions, "racer")
    barrier = threading.Barrier(4)
    results, errors = [], []

    def tap():
        try:
            with sessions() as s:
                user = s.get(User, user_id)
                barrier.wait()
                results.append(mustread.acknowledge(s, user, post_id))
                s.commit()
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=tap) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert acks(sessions, post_id) == 1
    assert sorted(results) == [False, False, False, True]


# --- reach -----------------------------------------------------------------------------------------------------------

def test_reach_counts_merge_small_groups_and_never_show_a_small_number(demo, app, sessions, runner):
    company, lyon = newest(sessions, "HarborPineNews"), newest(sessions, "HPL_Lyon")
    lyon_ids = [make_staff(sessions, f"lyon{i}", office="lyon") for i in range(6)]
    columbus_ids = [make_staff(sessions, f"col{i}", office="columbus") for i in range(3)]
    make_staff(sessions, "nooffice1")
    make_staff(sessions, "nooffice2")
    make_staff(sessions, "gone", office="lyon")
    set_active(sessions, "gone", False)  # inactive: not in scope
    mark(runner, company)
    mark(runner, lyon)
    with sessions() as s:
        for uid in lyon_ids[:4] + columbus_ids[:1]:
            mustread.acknowledge(s, s.get(User, uid), company)
        for uid in lyon_ids[:2]:
            mustread.acknowledge(s, s.get(User, uid), lyon)
        s.commit()
        groups = mustread.ack_counts(s, company)
        assert [(g.kind, g.name, g.acknowledged, g.in_scope) for g in groups] == [
            ("office", "Lyon Saint-Priest Hub", 4, 6), ("other", "", 1, 5)]  # Columbus (3) + no office (2)
        assert [(g.kind, g.acknowledged, g.in_scope) for g in mustread.ack_counts(s, lyon)] == [("office", 2, 6)]
        # Columbus alone (3 people) for a Columbus post: fewer than 5, no number at all.
        columbus = newest(sessions, "HPL_Columbus")
        mustread.mark(s, Actor.cli(), columbus)
        s.commit()
        only = mustread.ack_counts(s, columbus)
        assert [(g.kind, g.few, g.acknowledged, g.in_scope) for g in only] == [("other", True, None, None)]
    admin = staff_client(app, sessions, "boss", admin=True)
    page = admin.get("/admin/must-read").get_data(as_text=True)
    assert "fewer than 5 people" in page and "<td>4</td><td>6</td>" in page
    assert "Push waiting for the worker" in page


# --- CLI -------------------------------------------------------------------------------------------------------------

def test_cli_marks_lists_and_ends(demo, sessions, runner):
    post_id = newest(sessions, "HarborPineNews")
    output = mark(runner, post_id, "--until", (utcnow() + timedelta(days=2)).strftime("%Y-%m-%d"))
    assert f"post {post_id} is must-read" in output and "worker" in output
    listed = runner.invoke(args=["posts", "list", "--source", "HarborPineNews"]).output
    assert any(line.startswith(str(post_id)) and "must-read until" in line for line in listed.splitlines())
    again = runner.invoke(args=["posts", "must-read", str(post_id)])
    assert again.exit_code != 0 and "already must-read" in again.output
    assert "no longer must-read" in mark(runner, post_id, "--end")
    listed = runner.invoke(args=["posts", "list", "--source", "HarborPineNews"]).output
    assert any(line.startswith(str(post_id)) and "must-read:ended" in line for line in listed.splitlines())
    unknown = runner.invoke(args=["posts", "must-read", "123"])
    assert unknown.exit_code != 0 and "no stored post 123" in unknown.output
    ended = runner.invoke(args=["posts", "must-read", "123", "--end"])
    assert ended.exit_code != 0 and "no stored post 123" in ended.output
    bad = runner.invoke(args=["posts", "must-read", str(post_id), "--until", "tomorrow"])
    assert bad.exit_code != 0 and "YYYY-MM-DD" in bad.output


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the markup does not depend on the engine: once
def test_must_read_pages_are_valid_html(demo, app, client, sessions, runner, tmp_path, db_url):
    from .test_html_valid import VNU, vnu_problems

    if not VNU.exists():
        pytest.skip("no Nu validator")
    company, lyon = newest(sessions, "HarborPineNews"), newest(sessions, "HPL_Lyon")
    mark(runner, company)
    mark(runner, lyon, "--until", (utcnow() + timedelta(days=1)).strftime("%Y-%m-%d"))
    admin = staff_client(app, sessions, "boss", admin=True, office="lyon")
    assert ack(admin, lyon).status_code == 303
    admin.get("/")  # the flash
    pages = {"front": (admin, "/"), "post": (admin, f"/posts/{company}"), "acked": (admin, f"/posts/{lyon}"),
             "public": (client, "/offices/lyon"), "console": (admin, "/admin/must-read"),
             "posts": (admin, "/admin/posts")}
    files = []
    for name, (who, url) in pages.items():
        answer = who.get(url)
        assert answer.status_code == 200, url
        (tmp_path / f"{name}.html").write_bytes(answer.data)
        files.append(str(tmp_path / f"{name}.html"))
    assert "End must-read" in (tmp_path / "posts.html").read_text() and "Mark must-read" in (tmp_path / "posts.html").read_text()
    # The console's cards are articles without headings and its lists share one CSRF field id (as on every
    # console page): only errors count there, beyond the posts page's own forms.
    problems = [p for p in vnu_problems(files[:-1])
                if not (p.startswith("console.html") and ": info: " in p)]
    assert problems == [], "\n".join(problems)


def test_a_pinned_must_read_shows_once_in_the_must_read_section(demo, client, sessions, runner):
    post_id = newest(sessions, "HarborPineNews")
    assert runner.invoke(args=["posts", "pin", str(post_id)]).exit_code == 0
    mark(runner, post_id)
    html = client.get("/").get_data(as_text=True)
    assert html.count(f'id="p{post_id}"') == 1 and f'id="p{post_id}"' in section(html)
    assert 'class="pins"' not in html  # its only pin is the must-read itself
    mark(runner, post_id, "--end")
    html = client.get("/").get_data(as_text=True)
    assert html.count(f'id="p{post_id}"') == 1 and section(html) == "" and 'class="pins"' in html
