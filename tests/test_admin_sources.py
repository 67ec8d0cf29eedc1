"""/admin/sources and /admin/offices: every action for every role, forged forms included, and the pages' words."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select

from feedapp.models import ApiRead, AuditEvent, Office, Post, RateWindow, Source, SourceRequest, utcnow
from feedapp.source_health import spend
from feedapp.xapi.limits import TIMELINES
from tests.test_admin import csrf, make_user, signed_in

ROLES = ("admin", "company", "lyon", "leeds", "staff", "anonymous")


@pytest.fixture
def world(runner, sessions):
    """Offices lyon, leeds and an empty one; a company-wide, a Lyon and a Leeds source with a post each;
    an account for every role."""
    for slug, name in (("lyon", "Lyon"), ("leeds", "Leeds"), ("spare", "Spare")):
        assert runner.invoke(args=["offices", "add", slug, name]).exit_code == 0
    ids = {}
    with sessions() as s:
        office = {o.slug: o for o in s.scalars(select(Office))}
        for i, (name, slug) in enumerate((("hq_news", None), ("lyon_hub", "lyon"), ("leeds_hub", "leeds")), 1):
            src = Source(x_id=str(1000 + i), username=name, display_name=name.title(),
                         office_id=office[slug].id if slug else None, error_count=0)
            s.add(src)
            s.flush()
            s.add(Post(id=5000 + i, source_id=src.id, created_at=utcnow(), author_id=src.x_id,
                       author_username=name, text="hello", links=[], raw={}))
            ids[name] = src.id
        ids.update({f"office_{slug}": o.id for slug, o in office.items()})
        s.commit()
    make_user(sessions, "boss", admin=True)
    make_user(sessions, "writer", role="editor")
    make_user(sessions, "lyonnais", role="editor", office="lyon")
    make_user(sessions, "leedser", role="editor", office="leeds")
    make_user(sessions, "deckhand", office="lyon")
    return ids


USERS = {"admin": "boss", "company": "writer", "lyon": "lyonnais", "leeds": "leedser", "staff": "deckhand"}


def client_for(app, role):
    """A signed-in client for role and a CSRF token valid in its session."""
    client = app.test_client()
    if role == "anonymous":
        return client, csrf(client.get("/login").get_data(as_text=True))
    signed_in(client, USERS[role])
    page = "/account" if role == "staff" else "/admin/sources"
    return client, csrf(client.get(page).get_data(as_text=True))


def snapshot(sessions) -> dict:
    """Everything a sources or offices action could change."""
    with sessions() as s:
        return {
            "sources": [(x.id, x.office_id, x.staff_only, x.review, x.no_replies, x.no_reposts, x.paused)
                        for x in s.scalars(select(Source).order_by(Source.id))],
            "offices": [(o.id, o.slug, o.name, o.language) for o in s.scalars(select(Office).order_by(Office.id))],
            "requests": s.scalar(select(func.count()).select_from(SourceRequest)),
            "posts": s.scalar(select(func.count()).select_from(Post)),
        }


ALL_EDITORS = {"admin", "company", "lyon"}
COMPANY = {"admin", "company"}
# (name, path, form, roles it succeeds for, what an editor outside the scope gets)
ACTIONS = [
    ("add to Lyon", "/admin/sources", {"usernames": "newbie", "office": "lyon"}, ALL_EDITORS, 400),
    ("add company-wide", "/admin/sources", {"usernames": "newbie", "office": ""}, COMPANY, 400),
    ("change a Lyon source", "/admin/sources/{lyon_hub}", {"office": "lyon", "review": "y"}, ALL_EDITORS, 403),
    # Lyon's editor: an office the form does not offer (400); Leeds's: a source outside its office (403).
    ("move a Lyon source company-wide", "/admin/sources/{lyon_hub}", {"office": ""}, COMPANY, {"lyon": 400}),
    ("move a Lyon source to Leeds", "/admin/sources/{lyon_hub}", {"office": "leeds"}, COMPANY, {"lyon": 400}),
    ("pause a Lyon source", "/admin/sources/{lyon_hub}/pause", {}, ALL_EDITORS, 403),
    ("check a Lyon source", "/admin/sources/{lyon_hub}/check", {}, ALL_EDITORS, 403),
    ("remove a Lyon source", "/admin/sources/{lyon_hub}/remove", {}, ALL_EDITORS, 403),
    ("pause a company source", "/admin/sources/{hq_news}/pause", {}, COMPANY, 403),
    ("check a company source", "/admin/sources/{hq_news}/check", {}, COMPANY, 403),
    ("change a company source", "/admin/sources/{hq_news}", {"office": "lyon"}, COMPANY, 403),
    ("remove a company source", "/admin/sources/{hq_news}/remove", {}, COMPANY, 403),
    ("create an office", "/admin/offices", {"slug": "paris", "name": "Paris", "language": "fr"}, COMPANY, 403),
    ("rename Lyon", "/admin/offices/{office_lyon}", {"name": "Lyon Hub", "language": "fr"}, ALL_EDITORS, 403),
    ("delete an empty office", "/admin/offices/{office_spare}/delete", {}, COMPANY, 403),
]


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("name, path, form, allowed, outside", ACTIONS, ids=[a[0] for a in ACTIONS])
def test_every_action_for_every_role(app, sessions, world, role, name, path, form, allowed, outside):
    client, token = client_for(app, role)
    before = snapshot(sessions)
    response = client.post(path.format(**world), data={**form, "csrf_token": token})
    if role in allowed:
        assert response.status_code == 303, response.get_data(as_text=True)
        assert snapshot(sessions) != before
        return
    if isinstance(outside, dict):
        outside = outside.get(role, 403)
    expected = {"anonymous": 302, "staff": 403}.get(role, outside)
    assert response.status_code == expected, response.get_data(as_text=True)
    assert snapshot(sessions) == before


@pytest.mark.parametrize("role", ["lyon", "leeds"])
def test_an_office_editor_sees_its_own_sources_and_office_only(app, world, role):
    client, _ = client_for(app, role)
    page = client.get("/admin/sources").get_data(as_text=True)
    mine, other = ("lyon_hub", "leeds_hub") if role == "lyon" else ("leeds_hub", "lyon_hub")
    assert f"@{mine}" in page and f"@{other}" not in page and "@hq_news" not in page
    assert 'value=""' not in page.split('id="office"')[1].split("</select>")[0]  # no company-wide choice
    assert client.get(f"/admin/sources/{world[other]}").status_code == 403
    assert client.get(f"/admin/sources/{world['hq_news']}/remove").status_code == 403
    offices = client.get("/admin/offices").get_data(as_text=True)
    assert ("Lyon" in offices) == (role == "lyon") and "Spare" not in offices
    assert "Add an office" not in offices
    assert client.get(f"/admin/offices/{world['office_spare']}").status_code == 403
    assert client.get(f"/admin/offices/{world['office_' + role]}/delete").status_code == 403


def test_a_forged_source_id_of_another_office_is_refused_with_nothing_changed(app, sessions, world):
    client, token = client_for(app, "lyon")
    before = snapshot(sessions)
    for path in ("/admin/sources/{leeds_hub}", "/admin/sources/{leeds_hub}/pause", "/admin/sources/{leeds_hub}/check",
                 "/admin/sources/{leeds_hub}/remove", "/admin/offices/{office_leeds}"):
        response = client.post(path.format(**world), data={"csrf_token": token, "office": "lyon", "name": "Mine"})
        assert response.status_code == 403, path
    # A forged office slug the form never offered, for an own source and for a new one.
    for path, form in (("/admin/sources/{lyon_hub}", {"office": "leeds"}),
                       ("/admin/sources", {"usernames": "newbie", "office": "leeds"}),
                       ("/admin/sources", {"usernames": "newbie", "office": "nowhere"})):
        assert client.post(path.format(**world), data={"csrf_token": token, **form}).status_code == 400
    assert snapshot(sessions) == before


def test_adding_queues_one_request_per_account_with_the_settings(app, sessions, world):
    client, token = client_for(app, "lyon")
    response = client.post("/admin/sources", data={
        "csrf_token": token, "usernames": "@Alpha, https://x.com/beta\nalpha  gamma_3", "office": "lyon",
        "review": "y", "no_replies": "y", "no_reposts": "y"}, follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "3 account(s) queued" in page and page.count("<strong>pending</strong>") == 3
    with sessions() as s:
        rows = s.scalars(select(SourceRequest).order_by(SourceRequest.id)).all()
        assert [(r.kind, r.username, r.office_id, r.review, r.no_replies, r.no_reposts, r.staff_only, r.state,
                 r.requested_by) for r in rows] == [
            ("add", name, world["office_lyon"], True, True, True, False, "pending", "lyonnais")
            for name in ("Alpha", "beta", "gamma_3")]
        assert s.scalar(select(AuditEvent.action).order_by(AuditEvent.id.desc())) == "queue_add_source"


def test_names_that_are_not_usernames_are_refused_whole(app, sessions, world):
    client, token = client_for(app, "admin")
    response = client.post("/admin/sources", data={"csrf_token": token, "usernames": "good, not a/name!, x" * 1,
                                                   "office": ""})
    assert response.status_code == 400
    assert "Not X usernames or profile links" in response.get_data(as_text=True)
    assert snapshot(sessions)["requests"] == 0


def test_removing_says_how_many_posts_go_first(app, sessions, world):
    client, token = client_for(app, "admin")
    confirm = client.get(f"/admin/sources/{world['lyon_hub']}/remove").get_data(as_text=True)
    assert "Its stored posts go with it, from every page and feed: 1." in confirm
    done = client.post(f"/admin/sources/{world['lyon_hub']}/remove", data={"csrf_token": token}, follow_redirects=True)
    assert "@lyon_hub removed with its 1 stored posts." in done.get_data(as_text=True)
    with sessions() as s:
        assert s.get(Source, world["lyon_hub"]) is None
        assert s.scalar(select(func.count()).select_from(Post).where(Post.id == 5002)) == 0


def test_an_office_with_sources_or_staff_cannot_be_deleted_and_says_why(app, sessions, world):
    client, token = client_for(app, "admin")
    confirm = client.get(f"/admin/offices/{world['office_lyon']}/delete").get_data(as_text=True)
    assert "sources (1) and staff accounts (2) still belong to it" in confirm
    assert "Delete the office</button>" not in confirm
    refused = client.post(f"/admin/offices/{world['office_lyon']}/delete", data={"csrf_token": token},
                          follow_redirects=True)
    assert "Lyon still has 1 source and 2 staff accounts: move or remove them first" in refused.get_data(as_text=True)
    with sessions() as s:
        assert s.get(Office, world["office_lyon"]) is not None


def test_office_changes_bump_the_site_version(app, sessions, world):
    from feedapp.models import ScopeVersion

    def site():
        with sessions() as s:
            return s.get(ScopeVersion, "site").version

    client, token = client_for(app, "lyon")
    before = site()
    client.post(f"/admin/offices/{world['office_lyon']}", data={"csrf_token": token, "name": "Lyon Hub",
                                                                "language": "fr"})
    assert site() > before  # every web worker re-reads the office list
    with sessions() as s:
        office = s.get(Office, world["office_lyon"])
        assert (office.name, office.language) == ("Lyon Hub", "fr")
    assert "Lyon Hub" in app.test_client().get("/offices/lyon").get_data(as_text=True)


# --- health and spend ------------------------------------------------------------------------------------------------

def test_health_lines_in_words_and_the_failing_flag(app, sessions, world):
    now = utcnow()
    with sessions() as s:
        def src(name):
            return s.get(Source, world[name])
        src("hq_news").last_success_at = now - timedelta(minutes=5)
        src("hq_news").next_check_at = now + timedelta(minutes=5)
        src("lyon_hub").paused = True
        leeds = src("leeds_hub")
        leeds.error_count, leeds.last_error = 4, "X server error (503)"
        leeds.last_success_at, leeds.last_error_at = now - timedelta(days=2), now
        for i, (error, protected) in enumerate((("X rejected FEEDAPP_X_BEARER_TOKEN (401 Unauthorized): no", False),
                                                ("protected on X: skipped until the reader account …", True),
                                                (None, True))):
            s.add(Source(x_id=str(9000 + i), username=f"extra{i}", error_count=1 if error else 0, last_error=error,
                         protected=protected, created_at=now - timedelta(hours=1),
                         last_success_at=now - timedelta(hours=1)))
        s.add(RateWindow(credential="reader:abc", endpoint=TIMELINES, reset_at=now + timedelta(minutes=10),
                         remaining=0, limit=900))
        s.commit()
    client, _ = client_for(app, "admin")
    page = " ".join(client.get("/admin/sources").get_data(as_text=True).split())
    assert '<li class="ok">' in page and "<strong class=\"st\">ok</strong> · posts in 7 days: 1" in page
    assert "<strong class=\"st\">paused</strong>" in page
    assert "<strong class=\"st\">backing off after 4 failures</strong>" in page
    assert "<strong class=\"st\">credential problem</strong>" in page
    reset = (now + timedelta(minutes=10)).strftime("%H:%M")
    assert f"<strong class=\"st\">rate-limited until {reset} UTC</strong>" in page  # extra2: protected, reader limit
    # extra1 is protected and failing with no reader account; the reader window is used up too: rate-limited first.
    assert "Last error" in page and "X server error (503)" in page
    flag = page.split('<div class="alert" role="alert">')[1].split("</div>")[0]
    assert "Failing for more than a day: 1" in flag and "@leeds_hub" in flag and "extra0" not in flag


def test_protected_without_access_is_named(app, sessions, world):
    with sessions() as s:
        s.add(Source(x_id="9100", username="locked", protected=True, error_count=2,
                     last_error="protected on X: skipped until the OAuth 1.0a reader account is configured"))
        s.commit()
    client, _ = client_for(app, "admin")
    assert "<strong class=\"st\">protected, no access</strong>" in client.get("/admin/sources").get_data(as_text=True)


def test_spend_counts_the_ledger_today_and_this_month_with_a_projection(app, sessions, world):
    today = utcnow().date()
    with sessions() as s:
        rows = [ApiRead(day=today, kind="post", object_id=str(i)) for i in range(30)]
        rows += [ApiRead(day=today, kind="user", object_id=str(i)) for i in range(4)]
        if today.day > 1:  # earlier this month
            rows += [ApiRead(day=today.replace(day=1), kind="post", object_id=str(i)) for i in range(70)]
        rows += [ApiRead(day=today.replace(day=1) - timedelta(days=1), kind="post", object_id=str(i))
                 for i in range(500)]  # last month: not counted
        s.add_all(rows)
        s.commit()
        got = spend(s, 0.005, 0.01, today)
    month_posts = 30 + (70 if today.day > 1 else 0)
    assert (got.post_today, got.user_today, got.post_month, got.user_month) == (30, 4, month_posts, 4)
    assert got.cost_today == pytest.approx(30 * 0.005 + 4 * 0.01)
    client, _ = client_for(app, "company")
    page = client.get("/admin/sources").get_data(as_text=True)
    assert f"30 post reads, 4 user reads: ${30 * 0.005 + 0.04:.2f}" in page
    assert f"{month_posts} post reads, 4 user reads" in page


def test_the_projection_is_month_to_date_over_days_elapsed_times_days_in_month(sessions, world):
    with sessions() as s:
        s.add_all([ApiRead(day=date(2026, 4, d), kind="post", object_id=str(i)) for d in (1, 10) for i in range(500)])
        s.add_all([ApiRead(day=date(2026, 4, 10), kind="user", object_id=str(i)) for i in range(100)])
        s.commit()
        got = spend(s, 0.005, 0.01, date(2026, 4, 10))
    assert got.cost_month == pytest.approx(6.0)  # 1000 posts × $0.005 + 100 users × $0.01
    assert got.cost_today == pytest.approx(3.5)
    assert got.projection == pytest.approx(6.0 / 10 * 30)


def test_prices_are_settings(make_app, sessions, world):
    app = make_app(FEEDAPP_X_PRICE_POST_READ=0.5, FEEDAPP_X_PRICE_USER_READ=2)
    with sessions() as s:
        s.add(ApiRead(day=utcnow().date(), kind="post", object_id="1"))
        s.commit()
    client, _ = client_for(app, "admin")
    assert "1 post reads, 0 user reads: $0.50" in client.get("/admin/sources").get_data(as_text=True)
    french = client.get("/admin/sources", headers={"Accept-Language": "fr"}).get_data(as_text=True)
    assert "1 lectures de messages, 0 lectures de comptes : 0,50\xa0$US" in french
    assert "2,00\xa0$US par compte lu" in french  # prices in the reader's format, every digit kept ($0.005)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the markup does not depend on the engine: once
def test_console_pages_are_valid_html(app, sessions, world, tmp_path, db_url):
    import shutil

    from tests.conftest import server_missing
    from tests.test_html_valid import vnu_problems

    if shutil.which("java") is None:
        server_missing("no java: the Nu HTML validator needs it (`make browser` installs it)")
    with sessions() as s:
        s.add(SourceRequest(kind="add", username="newbie", requested_by="boss", state="pending"))
        s.add(SourceRequest(kind="add", username="gone", requested_by="boss", state="failed", outcome="not found"))
        s.add(SourceRequest(kind="add", username="hq_news", source_id=world["hq_news"], requested_by="boss",
                            state="done", outcome="Hq_News"))
        leeds = s.get(Source, world["leeds_hub"])
        leeds.error_count, leeds.last_error, leeds.last_error_at = 3, "X server error (503)", utcnow() - timedelta(days=2)
        s.commit()
    client, _ = client_for(app, "admin")
    pages = {"sources": "/admin/sources", "source": f"/admin/sources/{world['lyon_hub']}",
             "remove": f"/admin/sources/{world['lyon_hub']}/remove", "offices": "/admin/offices",
             "office": f"/admin/offices/{world['office_lyon']}",
             "delete": f"/admin/offices/{world['office_lyon']}/delete",
             "delete-empty": f"/admin/offices/{world['office_spare']}/delete"}
    files = []
    for name, url in pages.items():
        answer = client.get(url)
        assert answer.status_code == 200, (name, url)
        path = tmp_path / f"{name}.html"
        path.write_bytes(answer.data)
        files.append(str(path))
    problems = vnu_problems(files)
    assert problems == [], "\n".join(problems)


@pytest.mark.parametrize("method, path", [
    ("get", "/admin/sources/99999999999999999999"),
    ("get", "/admin/sources/2147483648"),  # past PostgreSQL's INTEGER
    ("post", "/admin/sources/2147483648/pause"),
    ("get", "/admin/offices/9999999999"),
    ("post", "/admin/offices/9999999999/delete"),
    ("get", "/admin/users/99999999999999999999"),
    ("post", "/admin/posts/9223372036854775808/unhide"),  # past BIGINT
    ("post", "/admin/posts/99999999999999999999/hide"),
])
def test_an_id_too_large_for_its_column_is_a_404_not_a_500(app, world, method, path):
    client, token = client_for(app, "admin")
    assert getattr(client, method)(path, data={"csrf_token": token}).status_code == 404


def test_an_audit_page_cursor_too_large_for_its_column_is_ignored(app, world):
    client, _ = client_for(app, "admin")
    assert client.get("/admin/audit?before=99999999999999999999").status_code == 200
