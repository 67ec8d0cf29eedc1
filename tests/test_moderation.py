"""Moderation, pins and shout-outs: every surface, the caches, the review queue, the CLI, and who may do what.

The demo company on SQLite and PostgreSQL: company-wide sources (@HarborPineNews, @HarborPineSafe,
@HPL_AllHands, @HarborPineHR staff-only) and office ones (@HPL_Lyon, @HPL_Columbus).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import feedparser
import pytest
from sqlalchemy import select

from feedapp import moderation
from feedapp.ingest.store import store_posts
from feedapp.models import AuditEvent, Pin, Post, Source
from feedapp.roles import Actor, Forbidden
from feedapp.xapi.types import XPost, XUser

from .auth_helpers import PASSWORD, csrf, login, make_staff, path_of

FEEDS = ["/feed.rss", "/feed.atom", "/feed.json", "/offices/lyon/feed.rss", "/offices/lyon/feed.json"]


@pytest.fixture
def demo(runner):
    assert runner.invoke(args=["demo"]).exit_code == 0


def newest(sessions, username: str, *, plain: bool = True) -> int:
    """The id of a source's newest post (plain: not a repost, reply or thread part)."""
    with sessions() as s:
        stmt = select(Post.id).join(Source).where(Source.username == username)
        if plain:
            stmt = stmt.where(Post.repost_of_id.is_(None), Post.reply_to_id.is_(None))
        return s.scalar(stmt.order_by(Post.id.desc()))


LYON = ("/offices/lyon", "/offices/lyon/feed.rss", "/offices/lyon/feed.atom", "/offices/lyon/feed.json",
        "/offices/lyon/local/feed.rss")


def surfaces(client, post_id: int, extra: tuple[str, ...] = (), urls=("/", *FEEDS)) -> dict[str, bool]:
    """Where the post shows for this client: each page and feed -> whether its id is in the body."""
    found = {}
    for url in (*urls, *extra):
        response = client.get(url)
        assert response.status_code == 200, url
        found[url] = str(post_id) in response.get_data(as_text=True)
    found["post page"] = client.get(f"/posts/{post_id}").status_code == 200
    return found


def staff_client(app, sessions, username="reader", **kw):
    make_staff(sessions, username, **kw)
    client = app.test_client()
    assert login(client, username, PASSWORD).status_code == 303
    return client


def console_post(client, path: str, data: dict | None = None):
    """POST a console form with a fresh CSRF token from the posts page."""
    token = csrf(client, "/admin/posts")
    return client.post(path, data={"csrf_token": token, **(data or {})})


# --- hiding ------------------------------------------------------------------------------------------------------------

def test_a_hidden_post_leaves_every_surface_at_once_and_comes_back(demo, app, client, sessions, runner):
    post_id = newest(sessions, "HarborPineNews")
    staff = staff_client(app, sessions)
    token = runner.invoke(args=["users", "feed-url", "reader"]).output.strip()
    private = path_of(token)
    assert all(surfaces(client, post_id).values())
    assert all(surfaces(staff, post_id, (private,)).values())
    etags = {url: client.get(url).headers["ETag"] for url in ("/", *FEEDS)}

    result = runner.invoke(args=["posts", "hide", str(post_id), "--reason", "wrong date"])
    assert result.exit_code == 0, result.output
    assert not any(surfaces(client, post_id).values())
    assert not any(surfaces(staff, post_id, (private,)).values())
    for url, etag in etags.items():  # the 304 fast path and the render cache answer the new content
        again = client.get(url, headers={"If-None-Match": etag})
        assert again.status_code == 200 and str(post_id) not in again.get_data(as_text=True), url
    removed = client.get("/removed.json").get_json()["ids"]
    assert str(post_id) in removed
    with sessions() as s:
        post = s.get(Post, post_id)
        assert (post.hidden_reason, post.hidden_by) == ("wrong date", "cli")
        assert s.scalars(select(AuditEvent.action).where(AuditEvent.target == str(post_id))).all() == ["hide_post"]

    assert runner.invoke(args=["posts", "unhide", str(post_id)]).exit_code == 0
    assert all(surfaces(client, post_id).values())
    assert str(post_id) not in client.get("/removed.json").get_json()["ids"]


def test_hiding_a_post_hides_its_reposts_and_copies_that_arrive_later(demo, sessions, app):
    with sessions() as s:
        repost = s.scalar(select(Post).where(Post.repost_of_id.is_not(None)).order_by(Post.id.desc()))
        original = repost.canonical_id
        moderation.hide(s, Actor.cli(), repost.id)
        s.commit()
        assert all(p.hidden_at for p in s.scalars(select(Post).where(Post.canonical_id == original)))
        # Another company account reposts it later: the new row arrives hidden.
        source = s.scalar(select(Source).where(Source.username == "HarborPineSafe"))
        late = XPost(id=str(original + 7), created_at=datetime.now(timezone.utc), text="RT",
                     author=XUser(id="9", username="someone", name="Someone"), repost_of_id=str(original),
                     links=[], media=[])
        assert store_posts(s, source, [late]) == [original + 7]
        s.commit()
        assert s.get(Post, original + 7).hidden_at is not None
    assert str(original) not in app.test_client().get("/").get_data(as_text=True)


def test_the_service_worker_list_names_public_posts_only_to_the_public(demo, app, client, sessions):
    hr = newest(sessions, "HPL_AllHands")  # protected on X: staff-only
    news = newest(sessions, "HarborPineNews")
    with sessions() as s:
        moderation.hide(s, Actor.cli(), hr)
        moderation.hide(s, Actor.cli(), news)
        s.commit()
    with sessions() as s:
        hr_rows = {str(i) for i in s.scalars(select(Post.id).where(Post.canonical_id == hr))}
        news_rows = {str(i) for i in s.scalars(select(Post.id).where(Post.canonical_id == news))}
    public = client.get("/removed.json")
    assert set(public.get_json()["ids"]) == news_rows and public.headers["Cache-Control"] == "private, no-cache"
    assert client.get("/removed.json", headers={"If-None-Match": public.headers["ETag"]}).status_code == 304
    staff = staff_client(app, sessions)
    assert set(staff.get("/removed.json").get_json()["ids"]) == hr_rows | news_rows


# --- review before publishing ------------------------------------------------------------------------------------------

def test_a_source_under_review_publishes_nothing_until_approved(demo, app, client, sessions, runner):
    with sessions() as s:
        source = s.scalar(select(Source).where(Source.username == "HPL_Lyon"))
        source.review = True
        post = XPost(id="2199999999999999999", created_at=datetime.now(timezone.utc), text="Canteen closed Friday",
                     author=XUser(id=source.x_id, username=source.username, name=source.display_name),
                     links=[], media=[])
        store_posts(s, source, [post])
        s.commit()
    post_id = 2199999999999999999
    staff = staff_client(app, sessions, office="lyon")
    assert not any(surfaces(client, post_id, urls=LYON).values())
    assert not any(surfaces(staff, post_id, urls=LYON).values())
    listed = runner.invoke(args=["posts", "list", "--pending"])
    assert f"{post_id}\t" in listed.output and "pending" in listed.output
    assert runner.invoke(args=["posts", "approve", str(post_id)]).exit_code == 0
    assert all(surfaces(client, post_id, urls=LYON).values())
    again = runner.invoke(args=["posts", "approve", str(post_id)])
    assert again.exit_code == 1 and "not waiting for review" in again.output


# --- pins and shout-outs -----------------------------------------------------------------------------------------------

def card_ids(html: str) -> list[str]:
    import re

    return re.findall(r'<article class="post[^"]*" id="p(\d+)"', html)


def test_pins_head_the_page_in_their_order_and_feeds_keep_date_order(demo, client, sessions, runner):
    # Pinned oldest first: the pins' order, not the posts' dates, orders the block.
    older = newest(sessions, "HarborPineNews")
    news = newest(sessions, "HarborPineSafe")
    assert older < news
    for args in (["posts", "pin", str(older)], ["posts", "pin", str(news)], ["posts", "pin", str(lyon := newest(sessions, "HPL_Lyon")), "--office", "lyon"]):
        result = runner.invoke(args=args)
        assert result.exit_code == 0, result.output
    front = card_ids(client.get("/").get_data(as_text=True))
    assert front[:2] == [str(older), str(news)] and front.count(str(older)) == 1
    assert str(lyon) not in front  # an office pin stays on that office's page
    lyon_page = card_ids(client.get("/offices/lyon").get_data(as_text=True))
    assert lyon_page[:3] == [str(older), str(news), str(lyon)]
    html = client.get("/").get_data(as_text=True)
    assert html.count('<span class="badge bpin">') == 2
    # Feeds: date order, the pin a category.
    parsed = feedparser.parse(client.get("/feed.atom").data)
    ids = [e.id.rsplit("/", 1)[1] for e in parsed.entries]
    assert ids == sorted(ids, key=int, reverse=True)
    pinned = {e.id.rsplit("/", 1)[1] for e in parsed.entries if "Pinned" in [t.term for t in e.get("tags", [])]}
    assert pinned == {str(older), str(news)}
    item = next(i for i in client.get("/offices/lyon/feed.json").get_json()["items"] if i["id"].endswith(str(lyon)))
    assert item["tags"] == ["Épinglé"]  # the Lyon office reads French: its feeds' labels too
    # Second pages keep plain date order: no pin block.
    second = client.get("/?before=" + str(int(front[-1]))).get_data(as_text=True)
    assert 'class="pins"' not in second


def test_a_pin_with_an_end_unpins_itself(demo, client, sessions, runner):
    post_id = newest(sessions, "HarborPineSafe")
    with sessions() as s:
        moderation.pin(s, Actor.cli(), post_id, None, datetime.now(timezone.utc) + timedelta(hours=1))
        s.commit()
    assert card_ids(client.get("/").get_data(as_text=True))[0] == str(post_id)
    etag = client.get("/").headers["ETag"]
    with sessions() as s:
        assert moderation.expire_pins(s, datetime.now(timezone.utc) + timedelta(hours=2)) == 1
        s.commit()
        assert s.scalars(select(Pin)).all() == []
    again = client.get("/", headers={"If-None-Match": etag})
    assert again.status_code == 200 and 'class="pins"' not in again.get_data(as_text=True)
    past = runner.invoke(args=["posts", "pin", str(post_id), "--until", "2001-01-01"])
    assert past.exit_code == 1 and "already past" in past.output


def test_a_pin_until_the_last_day_a_calendar_has_is_refused_not_a_crash(demo, app, sessions, runner):
    post_id = newest(sessions, "HarborPineSafe")
    editor = staff_client(app, sessions, "chief", role="admin")
    answer = console_post(editor, f"/admin/posts/{post_id}/pin", {"where": "", "until": "9999-12-31"})
    assert answer.status_code == 400
    cli = runner.invoke(args=["posts", "pin", str(post_id), "--until", "9999-12-31"])
    assert cli.exit_code == 1 and "use YYYY-MM-DD" in cli.output  # one line, no traceback
    with sessions() as s:
        assert s.scalars(select(Pin)).all() == []


@pytest.mark.parametrize("command", ["hide", "unhide", "approve", "pin", "unpin", "highlight"])
def test_a_post_id_past_bigint_is_no_stored_post_on_the_command_line(demo, runner, command):
    result = runner.invoke(args=["posts", command, "99999999999999999999"])
    assert result.exit_code == 1 and "no stored post 99999999999999999999" in result.output


def test_a_shout_out_has_a_badge_and_a_feed_category(demo, client, sessions, runner):
    post_id = newest(sessions, "HPL_Columbus")
    assert runner.invoke(args=["posts", "highlight", str(post_id)]).exit_code == 0
    html = client.get("/offices/columbus").get_data(as_text=True)
    assert f'<article class="post hl" id="p{post_id}">' in html and "Shout-out" in html
    rss = feedparser.parse(client.get("/offices/columbus/feed.rss").data)
    entry = next(e for e in rss.entries if e.id.endswith(str(post_id)))
    assert [t.term for t in entry.tags] == ["Shout-out"]
    assert runner.invoke(args=["posts", "highlight", str(post_id), "--off"]).exit_code == 0
    assert "Shout-out" not in client.get("/offices/columbus").get_data(as_text=True)


# --- who may do what -----------------------------------------------------------------------------------------------------

ROLES = {  # name: (role, office)
    "admin": ("admin", None),
    "editor": ("editor", None),
    "lyon_editor": ("editor", "lyon"),
    "columbus_editor": ("editor", "columbus"),
    "staff": ("staff", "lyon"),
}
ALLOWED = {  # (who, whose post) -> may act
    ("admin", "company"): True, ("admin", "lyon"): True,
    ("editor", "company"): True, ("editor", "lyon"): True,
    ("lyon_editor", "company"): False, ("lyon_editor", "lyon"): True,
    ("columbus_editor", "company"): False, ("columbus_editor", "lyon"): False,
}


def _prepare(sessions, action: str, post_id: int) -> None:
    """Put the post in the state the action needs."""
    with sessions() as s:
        post = s.get(Post, post_id)
        if action == "unhide":
            post.hidden_at = datetime.now(timezone.utc)
        if action == "approve":
            post.pending = True
        if action == "unpin":
            s.add(Pin(post_id=post_id, office_id=post.source.office_id, position=1, pinned_by="test"))
        s.commit()


def _state(sessions, post_id: int):
    with sessions() as s:
        post = s.get(Post, post_id)
        pins = s.scalars(select(Pin.office_id).where(Pin.post_id == post_id)).all()
        return post.hidden_at is not None, post.pending, post.highlighted, sorted(pins, key=str)


@pytest.mark.parametrize("action", ["hide", "unhide", "approve", "pin", "unpin", "highlight"])
def test_each_console_action_checks_role_and_office_for_every_post(demo, app, sessions, action):
    posts = {"company": newest(sessions, "HarborPineNews"), "lyon": newest(sessions, "HPL_Lyon")}
    for who, (role, office) in ROLES.items():
        make_staff(sessions, who, office=office, role=role)
    for (who, whose), allowed in [*ALLOWED.items(), (("staff", "company"), False), (("staff", "lyon"), False)]:
        post_id = posts[whose]
        _prepare(sessions, action, post_id)
        before = _state(sessions, post_id)
        client = app.test_client()
        assert login(client, who, PASSWORD).status_code == 303
        data = {"on": "1"} if action == "highlight" else {}
        if action == "pin":
            data = {"where": "lyon" if whose == "lyon" else ""}
        if who == "staff":  # no console at all: not even a token to forge with
            token = csrf(client, "/account")
            response = client.post(f"/admin/posts/{post_id}/{action}", data={"csrf_token": token, **data})
            assert response.status_code == 403
        else:
            response = console_post(client, f"/admin/posts/{post_id}/{action}", data)
            assert response.status_code == (303 if allowed else 403), (who, whose, action, response.status_code)
        after = _state(sessions, post_id)
        assert (after != before) == allowed, (who, whose, action, before, after)
        with sessions() as s:  # back to a published, unpinned, plain post for the next person
            post = s.get(Post, post_id)
            post.hidden_at, post.pending, post.highlighted = None, False, False
            for pin in s.scalars(select(Pin).where(Pin.post_id == post_id)):
                s.delete(pin)
            s.commit()


def test_an_office_editor_cannot_pin_a_company_post_on_their_office_nor_anything_on_the_company_feed(demo, sessions):
    company, lyon = newest(sessions, "HarborPineNews"), newest(sessions, "HPL_Lyon")
    with sessions() as s:
        lyon_office = s.get(Source, s.get(Post, lyon).source_id).office
        editor = Actor("lyon_editor", "editor", lyon_office.id)
        with pytest.raises(Forbidden):
            moderation.pin(s, editor, company, lyon_office)
        with pytest.raises(Forbidden):
            moderation.pin(s, editor, lyon, None)
        with pytest.raises(moderation.ModerationError):  # an office post on the company feed: never shown there
            moderation.pin(s, Actor.cli(), lyon, None)
        moderation.pin(s, editor, lyon, lyon_office)
        s.commit()
        assert s.scalars(select(Pin.office_id)).all() == [lyon_office.id]


def test_the_console_lists_only_the_editors_posts_and_its_review_queue(demo, app, sessions):
    lyon, company = newest(sessions, "HPL_Lyon"), newest(sessions, "HarborPineNews")
    with sessions() as s:
        s.get(Post, lyon).pending = True
        s.commit()
    editor = staff_client(app, sessions, "lyon_editor", office="lyon", role="editor")
    page = editor.get("/admin/posts").get_data(as_text=True)
    assert f'id="p{lyon}"' in page and f'id="p{company}"' not in page
    queue = editor.get("/admin/posts?state=pending").get_data(as_text=True)
    assert f'id="p{lyon}"' in queue and "Waiting for review (1)" in queue
    response = console_post(editor, f"/admin/posts/{lyon}/approve", {"state": "pending"})
    assert response.status_code == 303 and response.headers["Location"].endswith("/admin/posts?state=pending")
    assert "Post published." in editor.get("/admin/posts?state=pending").get_data(as_text=True)


@pytest.mark.parametrize("path", ["hide", "unhide", "approve", "pin", "unpin", "highlight"])
def test_every_console_action_needs_the_csrf_token(demo, app, sessions, path):
    post_id = newest(sessions, "HarborPineNews")
    admin = staff_client(app, sessions, "boss", admin=True)
    before = _state(sessions, post_id)
    response = admin.post(f"/admin/posts/{post_id}/{path}", data={"where": "", "on": "1"})
    assert response.status_code == 400
    assert _state(sessions, post_id) == before


def test_unknown_posts_and_impossible_actions_say_so(demo, app, sessions, runner):
    admin = staff_client(app, sessions, "boss", admin=True)
    assert console_post(admin, "/admin/posts/1234/hide").status_code == 404
    post_id = newest(sessions, "HarborPineNews")
    refused = console_post(admin, f"/admin/posts/{post_id}/unhide")
    assert refused.status_code == 400 and "That post is not hidden." in refused.get_data(as_text=True)
    result = runner.invoke(args=["posts", "hide", "1234"])
    assert result.exit_code == 1 and "no stored post 1234" in result.output


def test_the_poll_cycle_ends_pins_past_their_end(demo, app, client, sessions, runner):
    post_id = newest(sessions, "HarborPineSafe")
    with sessions() as s:
        s.add(Pin(post_id=post_id, office_id=None, position=1, pinned_by="test",
                  ends_at=datetime.now(timezone.utc) - timedelta(minutes=1)))
        s.commit()
    assert runner.invoke(args=["poll"]).exit_code == 0
    with sessions() as s:
        assert s.scalars(select(Pin)).all() == []


def test_the_audit_log_lists_and_filters_console_and_cli_actions(demo, app, sessions, runner):
    post_id = newest(sessions, "HarborPineNews")
    admin = staff_client(app, sessions, "boss", admin=True)
    assert console_post(admin, f"/admin/posts/{post_id}/hide", {"reason": "typo <b>"}).status_code == 303
    assert runner.invoke(args=["posts", "unhide", str(post_id)]).exit_code == 0
    page = admin.get(f"/admin/audit?target={post_id}").get_data(as_text=True)
    assert "<td>boss</td><td>hide_post</td>" in page and "<td>cli</td><td>unhide_post</td>" in page
    assert "typo &lt;b&gt;" in page and "typo <b>" not in page
    only = admin.get("/admin/audit?action=unhide_post").get_data(as_text=True)
    assert "hide_post</td>" not in only.replace("unhide_post</td>", "")
    editor = staff_client(app, sessions, "writer", role="editor")
    assert editor.get("/admin/audit").status_code == 403


def test_a_quote_of_a_hidden_post_shows_as_unavailable_to_everyone(demo, app, client, sessions):
    with sessions() as s:
        quoting = s.scalar(select(Post).where(Post.quoted_author_id.is_not(None)).order_by(Post.id.desc()))
        quoted_id = int(quoting.quoted["id"])
        quoted_text = quoting.quoted["text"][:30]
        stored = s.get(Post, quoted_id)
        office = quoting.source.office.slug if quoting.source.office else None
    assert stored is not None, "the demo stores the post it quotes"
    page = f"/offices/{office}" if office else "/"
    staff = staff_client(app, sessions)
    html = client.get(f"/posts/{quoting.id}").get_data(as_text=True)
    assert quoted_text.split()[0] in html
    with sessions() as s:
        moderation.hide(s, Actor.cli(), quoted_id)
        s.commit()
    for reader in (client, staff):
        for url in (f"/posts/{quoting.id}", f"{page}?before={quoting.id + 1}"):
            body = reader.get(url).get_data(as_text=True)
            assert f'id="p{quoting.id}"' in body, url
            assert "Quoted post not available" in body or "Message cité indisponible" in body, url
        feed = reader.get(f"/offices/{office}/feed.json" if office else "/feed.json").get_json()
        item = next(i for i in feed["items"] if i["id"].endswith(str(quoting.id)))
        assert quoted_text not in item["content_html"]
