"""Break-room screens over the CLI, the console and HTTP, on SQLite and PostgreSQL: tokens, scope, staff-only
rules, hidden posts, pins, ETags, framing, the RSS for signage players, and the pure helpers."""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta

import feedparser
import pytest
from sqlalchemy import select, update

from feedapp import moderation, mustread, screens
from feedapp.db import sessions as app_sessions
from feedapp.accounts import hash_secret
from feedapp.models import AuditEvent, Office, Post, Screen, Source
from feedapp.roles import Actor
from tests.feed_clients import w3c_problems
from tests.test_admin import csrf, make_user, signed_in

BASE = "https://feed.example.com"
URL_RE = re.compile(r"https://feed\.example\.com(/screen/([A-Za-z0-9_-]{43}))\n")


@pytest.fixture
def app(make_app):
    """The demo company (company-wide, Columbus, Lyon; HPL_AllHands is staff-only) with a public address."""
    made = make_app(FEEDAPP_BASE_URL=BASE)
    result = made.test_cli_runner().invoke(args=["demo"])
    assert result.exit_code == 0, result.output
    return made


def add(runner, *args: str) -> tuple[str, str]:
    """`screens add` through the real CLI: (path, token) of the URL it printed."""
    result = runner.invoke(args=["screens", "add", *args])
    assert result.exit_code == 0, result.output
    match = URL_RE.search(result.output)
    assert match, result.output
    return match[1], match[2]


def posts_json(client, path: str) -> dict:
    response = client.get(path + "/posts.json")
    assert response.status_code == 200, response.status_code
    return response.json


def handles(data: dict) -> set[str]:
    return {p["handle"] for p in data["posts"]}


# --- the CLI ---------------------------------------------------------------------------------------------------------

def test_cli_adds_lists_and_removes_a_screen_whose_token_is_stored_hashed(app, runner, client, sessions):
    path, token = add(runner, "Depot 7 break room", "--office", "columbus", "--staff-only")
    with sessions() as s:
        row = s.scalars(select(Screen)).one()
        assert row.token_hash == hash_secret(token) and token not in (row.token_hash, row.name)
        assert (row.created_by, row.staff_only, row.last_seen_at) == ("cli", True, None)
        assert s.get(Office, row.office_id).slug == "columbus"
    listed = runner.invoke(args=["screens", "list"]).output
    assert "Depot 7 break room\tcompany-wide + columbus, staff-only posts too\tlast fetched never fetched" in listed

    assert client.get(path).status_code == 200
    listed = runner.invoke(args=["screens", "list"]).output
    assert re.search(r"last fetched \d{4}-\d\d-\d\d \d\d:\d\d UTC", listed), listed

    never = "x" * 43
    unknown = client.get("/screen/" + never)
    removed = runner.invoke(args=["screens", "remove", "Depot 7 break room"])
    assert removed.exit_code == 0 and "removed" in removed.output
    for suffix in ("", "/posts.json", "/feed.rss", "/qr/1.svg"):
        gone = client.get(path + suffix)
        assert gone.status_code == 404, suffix
    # A removed screen's page answers exactly as a token that never existed (the page names its own path).
    gone = client.get(path)
    assert (gone.status_code, gone.data.replace(token.encode(), b"T"), dict(gone.headers)) == (
        unknown.status_code, unknown.data.replace(never.encode(), b"T"), dict(unknown.headers))
    with sessions() as s:
        actions = [(e.actor, e.action, e.target) for e in s.scalars(select(AuditEvent).order_by(AuditEvent.id))
                   if "screen" in e.action]
    assert actions == [("cli", "add_screen", "Depot 7 break room"), ("cli", "remove_screen", "Depot 7 break room")]


@pytest.mark.parametrize("args, message", [
    (["add", "Hall", "--office", "nowhere"], "no office 'nowhere'"),
    (["add", "a/b"], "without slashes"),
    (["remove", "Nope"], "no screen named 'Nope'"),
])
def test_cli_refuses_bad_input_in_one_line(app, runner, args, message):
    result = runner.invoke(args=["screens", *args])
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output


def test_a_second_screen_of_the_same_name_is_refused(app, runner):
    add(runner, "Hall")
    result = runner.invoke(args=["screens", "add", "Hall"])
    assert result.exit_code == 1 and "exists already" in result.output


# --- what a screen shows ---------------------------------------------------------------------------------------------

def test_scope_is_company_wide_plus_its_office_and_staff_only_posts_only_on_staff_only_screens(app, runner, client):
    public_lyon, _ = add(runner, "Lyon lobby", "--office", "lyon")
    staff_lyon, _ = add(runner, "Lyon break room", "--office", "lyon", "--staff-only")
    company, _ = add(runner, "HQ lobby")

    assert {"HPL_Lyon", "HarborPineNews"} <= handles(posts_json(client, public_lyon))
    assert not handles(posts_json(client, public_lyon)) & {"HPL_Columbus", "HPL_AllHands"}
    assert {"HPL_Lyon", "HPL_AllHands"} <= handles(posts_json(client, staff_lyon))
    assert "HPL_Columbus" not in handles(posts_json(client, staff_lyon))
    assert not handles(posts_json(client, company)) & {"HPL_Lyon", "HPL_Columbus", "HPL_AllHands"}
    # The RSS carries the same scope.
    feed = client.get(public_lyon + "/feed.rss").get_data(as_text=True)
    assert "HPL_AllHands" not in feed and "/posts/" in feed


def test_a_staff_only_screens_images_load_without_cookies_and_stop_when_it_is_removed(app, runner, client):
    path, _ = add(runner, "Break room", "--staff-only")
    images = [p["image"] for p in posts_json(client, path)["posts"] if p["image"]]
    assert images and all(re.match(r"^/media/screen/k\d+-[0-9a-f]{16}/", url) for url in images)
    response = client.get(images[0])
    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    assert response.headers["Cache-Control"].startswith("private")
    runner.invoke(args=["screens", "remove", "Break room"])
    assert client.get(images[0]).status_code == 404
    # A public screen's images are the public ones.
    public, _ = add(runner, "Lobby")
    assert all(p["image"].startswith("/media/screen/p/") for p in posts_json(client, public)["posts"] if p["image"])


def test_hidden_and_pending_posts_never_appear(app, runner, client, sessions):
    path, _ = add(runner, "Break room", "--staff-only")
    first = posts_json(client, path)["posts"][0]
    with sessions() as s:
        moderation.hide(s, Actor.cli(), int(first["id"]), "test")
        other = s.scalars(select(Post).where(Post.hidden_at.is_(None)).order_by(Post.id.desc())).first()
        s.execute(update(Post).where(Post.id == other.id).values(pending=True))
        moderation.bump_content_version(s, ["site"])
        s.commit()
    ids = {p["id"] for p in posts_json(client, path)["posts"]}
    assert first["id"] not in ids and str(other.id) not in ids
    assert str(first["id"]) not in client.get(path + "/feed.rss").get_data(as_text=True)


def test_pinned_posts_come_first_and_come_back_more_often(app, runner, client, sessions):
    path, _ = add(runner, "Break room")
    data = posts_json(client, path)
    oldest = data["posts"][-1]["id"]
    with sessions() as s:
        moderation.pin(s, Actor.cli(), int(oldest))
        s.commit()
    data = posts_json(client, path)
    assert data["posts"][0]["id"] == oldest and data["posts"][0]["pinned"]
    assert not any(p["pinned"] for p in data["posts"][1:])
    assert data["order"][0] == 0 and data["order"].count(0) > 1
    assert sorted(set(data["order"])) == list(range(len(data["posts"])))
    items = feedparser.parse(client.get(path + "/feed.rss").data).entries
    assert items[0].link == f"{BASE}/posts/{oldest}" and items[0].tags[0].term == "Pinned"


def test_a_videos_poster_is_its_picture_on_the_screen_and_in_the_rss(app, runner, client, sessions):
    import base64

    path, _ = add(runner, "Break room")
    with sessions() as s:  # the demo's video (HarborPineSafe), pinned so that it is on the screen
        video = next(post for post in s.scalars(select(Post).join(Source).where(Source.username == "HarborPineSafe"))
                     if any(m.type == "video" for m in post.media))
        poster = next(m.preview_url for m in video.media if m.type == "video")
        moderation.pin(s, Actor.cli(), video.id)
        s.commit()
    shown = posts_json(client, path)["posts"][0]
    assert shown["id"] == str(video.id) and shown["video"] is True and shown["image"], shown
    encoded = shown["image"].rsplit("/", 1)[1]
    assert base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)).decode() == poster
    response = client.get(shown["image"])
    assert response.status_code == 200 and response.mimetype.startswith("image/")
    items = feedparser.parse(client.get(path + "/feed.rss").data).entries
    assert [e.href for e in items[0].enclosures] == [BASE + shown["image"]]


def test_must_read_posts_head_the_rotation_marked_so(app, runner, client, sessions):
    path, _ = add(runner, "Break room")
    data = posts_json(client, path)
    oldest, second = data["posts"][-1]["id"], data["posts"][-2]["id"]
    with sessions() as s:
        moderation.pin(s, Actor.cli(), int(second))
        mustread.mark(s, Actor.cli(), int(oldest))
        s.commit()
    data = posts_json(client, path)
    assert [(p["id"], p["label"]) for p in data["posts"][:2]] == [(oldest, "Must read"), (second, "Pinned")]
    assert not any(p["label"] for p in data["posts"][2:])
    assert data["order"].count(0) > 1  # it comes back more often, like a pin
    items = feedparser.parse(client.get(path + "/feed.rss").data).entries
    assert [(i.link, i.tags[0].term) for i in items[:2]] == [(f"{BASE}/posts/{oldest}", "Must read"),
                                                            (f"{BASE}/posts/{second}", "Pinned")]
    with sessions() as s:  # ended: an ordinary post again
        mustread.end(s, Actor.cli(), int(oldest))
        s.commit()
    assert posts_json(client, path)["posts"][0]["id"] == second


def test_at_most_a_few_pinned_posts_head_the_rotation(app, runner, client, sessions):
    path, _ = add(runner, "Break room")
    ids = [p["id"] for p in posts_json(client, path)["posts"]]
    assert len(ids) > screens.HEADS_MAX + 2
    with sessions() as s:
        for post_id in ids[: screens.HEADS_MAX + 2]:
            moderation.pin(s, Actor.cli(), int(post_id))
        s.commit()
    data = posts_json(client, path)
    assert sum(p["pinned"] for p in data["posts"]) == screens.HEADS_MAX
    assert sorted(p["id"] for p in data["posts"]) == sorted(ids)  # the pins past the cap show as ordinary posts


def test_the_json_answers_304_until_what_it_shows_changes(app, runner, client, sessions):
    path, _ = add(runner, "Break room")
    first = client.get(path + "/posts.json")
    etag = first.headers["ETag"]
    assert first.headers["Cache-Control"] == "private, no-cache"
    again = client.get(path + "/posts.json", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    with sessions() as s:  # a post of another office changes nothing here
        post = s.scalars(select(Post).join(Source).where(Source.username == "HPL_Columbus")).first()
        moderation.hide(s, Actor.cli(), post.id)
        s.commit()
    assert client.get(path + "/posts.json", headers={"If-None-Match": etag}).status_code == 304
    with sessions() as s:
        moderation.hide(s, Actor.cli(), int(first.json["posts"][0]["id"]))
        s.commit()
    changed = client.get(path + "/posts.json", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


def test_last_fetch_is_written_at_most_once_a_minute(app, runner, client, sessions):
    path, _ = add(runner, "Break room")
    client.get(path + "/posts.json")
    with sessions() as s:
        seen = s.scalars(select(Screen)).one().last_seen_at
    assert seen is not None
    client.get(path + "/posts.json")
    with sessions() as s:
        assert s.scalars(select(Screen)).one().last_seen_at == seen
        s.execute(update(Screen).values(last_seen_at=seen - timedelta(minutes=2)))
        s.commit()
    client.get(path)
    with sessions() as s:
        assert s.scalars(select(Screen)).one().last_seen_at > seen - timedelta(minutes=2)


def test_long_text_is_cut_at_a_sentence_and_says_more_on_the_phone(app, runner, client, sessions):
    path, _ = add(runner, "Break room")
    chosen = next(p for p in posts_json(client, path)["posts"] if not p["image"])
    with sessions() as s:
        post = s.get(Post, int(chosen["id"]))
        post.text = ("The depot closes early on Friday. " * 40).strip()
        post.links = []
        moderation.bump_content_version(s, ["site"])
        s.commit()
    shown = next(p for p in posts_json(client, path)["posts"] if p["id"] == str(post.id))
    assert shown["more"] and shown["text"].endswith("Friday.") and len(shown["text"]) <= 600
    assert shown["seconds"] > app.config["FEEDAPP_SCREEN_SECONDS"]


# --- the page --------------------------------------------------------------------------------------------------------

def test_the_screen_page_alone_may_be_framed(app, runner, client):
    path, _ = add(runner, "Break room")
    page = client.get(path)
    assert page.status_code == 200
    assert "X-Frame-Options" not in page.headers
    assert "frame-ancestors *" in page.headers["Content-Security-Policy"]
    assert page.headers["Referrer-Policy"] == "no-referrer" and "Set-Cookie" not in page.headers
    for _ in range(2):  # the second time from the fast path where it answers: the same headers
        for other in ("/", "/feed.rss", "/login", path + "/posts.json", "/screen/" + "y" * 43):
            response = client.get(other)
            assert response.headers["X-Frame-Options"] == "DENY", other
            assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"], other
        again = client.get(path)
        assert "X-Frame-Options" not in again.headers and "frame-ancestors *" in again.headers["Content-Security-Policy"]
    # Nothing of a screen (its URL is a secret) is kept by the fast path, while the public pages are.
    remembered = [key[0] for key in app.extensions["feedapp.fastpath"].entries]
    assert "/" in remembered and not any(key.startswith("/screen/") for key in remembered)


def test_who_may_frame_a_screen_is_a_setting_and_a_bad_value_stops_the_app(make_app):
    app = make_app(FEEDAPP_BASE_URL=BASE, FEEDAPP_SCREEN_FRAME_ANCESTORS="'self' https://signage.example.com")
    screen_path, _ = add(app.test_cli_runner(), "Hall")
    policy = app.test_client().get(screen_path).headers["Content-Security-Policy"]
    assert "frame-ancestors 'self' https://signage.example.com" in policy
    with pytest.raises(RuntimeError, match="FEEDAPP_SCREEN_FRAME_ANCESTORS"):
        make_app(FEEDAPP_SCREEN_FRAME_ANCESTORS="*; script-src *")


DATA_BLOCK_RE = re.compile(r'<script type="application/json" id="screen-data">(.*?)</script>', re.S)


def test_the_page_is_light_and_carries_its_posts(app, runner, client):
    path, _ = add(runner, "Break room")
    page = client.get(path).get_data(as_text=True)
    assert DATA_BLOCK_RE.search(page) and "data-initial" not in page and "<link rel=\"manifest\"" not in page
    assert '"/sw.js"' not in page  # the site's worker is not the screen's
    bodies = {}
    for asset in re.findall(r'(?:href|src)="(/static/[^"]+\.(?:css|js))"', page):
        with client.get(asset) as response:
            bodies[asset] = response.get_data(as_text=True)
    assert len(bodies) == 2
    total = len(page.encode()) + sum(len(body.encode()) for body in bodies.values())
    assert total < 50_000, total  # without images, uncompressed
    assert "@font-face" not in "".join(bodies.values())


def test_the_screens_service_worker_is_served_from_screen_for_that_scope_with_its_own_strict_policy(app, runner,
                                                                                                   client):
    path, _ = add(runner, "Break room")
    page = client.get(path)
    policy = page.headers["Content-Security-Policy"]
    # Registering /screen/sw.js needs nothing looser: worker-src falls back to script-src 'self' (CSP 3).
    assert "script-src 'self'" in policy and "unsafe" not in policy and "worker-src" not in policy
    assert 'data-worker="/screen/sw.js"' in page.get_data(as_text=True)
    worker = client.get("/screen/sw.js")
    assert worker.status_code == 200 and worker.mimetype == "text/javascript"
    assert worker.headers["Content-Security-Policy"] == "default-src 'self'"
    assert worker.headers["Cache-Control"] == "no-cache"
    body = worker.get_data(as_text=True)
    assets = re.findall(r'(?:href|src)="(/static/[^"]+\.(?:css|js))"', page.get_data(as_text=True))
    assert assets and all(f'"{asset}"' in body for asset in assets)  # kept for a reload with the server down
    assert "/screen/" + "x" * 43 not in body and "Set-Cookie" not in worker.headers  # one file for all screens
    assert client.get("/screen/sw.js", headers={"If-None-Match": worker.headers["ETag"]}).status_code == 304
    assert client.get("/sw.js").status_code == 200  # the site's own worker, scope /, as it was


HOSTILE = ('</script><script>alert(1)</script> <!--<script> </SCRIPT > & &amp; "quoted" \u2028 \u2029 '
           "<img src=x onerror=alert(2)>")


def test_hostile_post_text_stays_inert_text_in_the_pages_data(app, runner, client, sessions):
    path, _ = add(runner, "Break room")
    chosen = next(p for p in posts_json(client, path)["posts"] if not p["image"])
    with sessions() as s:
        post = s.get(Post, int(chosen["id"]))
        post.text, post.links = HOSTILE, []
        moderation.bump_content_version(s, ["site"])
        s.commit()
    page = client.get(path).get_data(as_text=True)
    block = DATA_BLOCK_RE.findall(page)
    # One data block, and nothing in it an HTML parser could take for markup: it ends at its own </script>.
    assert len(block) == 1 and not re.search(r"[<>&\u2028\u2029]", block[0]), block
    assert len(re.findall(r"<script\b", page, re.I)) == 2  # screen.js and the data block, no third element
    shown = next(p for p in json.loads(block[0])["posts"] if p["id"] == chosen["id"])
    # The same characters back, nothing lost or doubly escaped (line and paragraph separators are the post's lines).
    assert shown["text"].split() == HOSTILE.replace("\u2028", " ").replace("\u2029", " ").split()
    # posts.json: the same JSON (the service worker may put it in a page saved for offline use).
    raw = client.get(path + "/posts.json").get_data(as_text=True)
    assert not re.search(r"[<>&\u2028\u2029]", raw) and json.loads(raw)["posts"] == json.loads(block[0])["posts"]


def test_script_json_escapes_what_could_end_a_script_element_and_nothing_else():
    from feedapp.web.screens import script_json

    text = 'é 日本 📦 </script> <!-- & \u2028\u2029 "'
    out = script_json({"t": text})
    assert out == '{"t":"é 日本 📦 \\u003c/script\\u003e \\u003c!-- \\u0026 \\u2028\\u2029 \\""}'
    assert json.loads(out) == {"t": text}


# The longest posts a screen shows (600 characters, no photo; no sentence end, so cut at a word) in three scripts:
# one byte a character for English, some two-byte letters and four-byte emoji for French, three bytes for Japanese
# (in UTF-8; six, twelve for an emoji, as \u escapes). Each post's own words in its own order (below): 28 copies
# of one text would compress to almost nothing and prove nothing.
WORST_WORDS = {
    "en": "the depot on Harbor Road closes early Friday for stock count so please finish your deliveries by three "
          "and leave keys at front desk new rota starts Monday canteen hours change next week safety briefing in "
          "room twelve forklift training parking behind building B thanks everyone who helped during the storm",
    "fr": "le dépôt de la rue du Port ferme tôt vendredi 📦 pour l’inventaire merci d’achever vos livraisons avant "
          "15 h ✅ et déposer les clés à l’accueil 🔑 café offert ☕ nouveau planning dès lundi 🗓️ horaires de la "
          "cantine changent semaine prochaine sécurité réunion salle douze formation chariot élévateur 🚜 bravo 🎉",
    "ja": "港 通り 倉庫 金曜日 棚卸し 早く 閉まります 配達 三時 までに 終えて 鍵 受付 返して ください 休憩室 "
          "コーヒー 用意 しました 新しい 勤務表 月曜日 から 始まります 食堂 営業時間 来週 変わります 安全 説明会 "
          "十二番 会議室 フォークリフト 研修 駐車場 建物 裏側 嵐 協力 皆さん ありがとう 注意 点検 出荷 予定",
}


def _worst_text(lang: str, seed: int) -> str:
    """A post of well over 600 characters, its words drawn in an order of its own, with no sentence end."""
    import random

    words, rng = WORST_WORDS[lang].split(), random.Random(seed)
    joiner = "" if lang == "ja" else " "  # Japanese has no spaces; the cut then falls at a character
    return joiner.join(rng.choice(words) for _ in range(400))


def _worst_case(client, sessions, path: str, lang: str) -> dict:
    """Fill the screen with the most it shows: HEADS_MAX pinned and RECENT recent posts, each cut at 600 characters."""
    recent = [int(p["id"]) for p in posts_json(client, path)["posts"]]
    with sessions() as s:
        # Company-wide posts (pinned to the company feed, so on every screen), older than the recent ones.
        older = [p.id for p in s.scalars(select(Post).join(Source).where(Post.id.not_in(recent),
                                                                         Source.office_id.is_(None))
                                         .order_by(Post.id.desc()))]
        for post_id in older[: screens.HEADS_MAX]:
            moderation.pin(s, Actor.cli(), post_id)
        s.flush()
        for seed, post_id in enumerate(recent + older[: screens.HEADS_MAX]):
            post = s.get(Post, post_id)
            post.text, post.links, post.media, post.lang = _worst_text(lang, seed), [], [], lang
        moderation.bump_content_version(s, ["site"])
        s.commit()
    data = posts_json(client, path)
    assert len(data["posts"]) == screens.HEADS_MAX + screens.RECENT, len(data["posts"])
    assert all(len(p["text"]) >= 590 and not p["image"] for p in data["posts"]), [len(p["text"]) for p in data["posts"]]
    return data


def _page_cost(client, path: str, encoding: str) -> tuple[int, int]:
    """(raw bytes, bytes on the wire with this Accept-Encoding) of the page, its stylesheet and its script."""
    raw = wire = 0
    page = client.get(path, headers={"Accept-Encoding": encoding})
    assert page.headers.get("Content-Encoding") == encoding
    raw += len(client.get(path, headers={"Accept-Encoding": "identity"}).data)
    wire += len(page.data)
    html_text = client.get(path).get_data(as_text=True)
    for asset in re.findall(r'(?:href|src)="(/static/[^"]+\.(?:css|js))"', html_text):
        with client.get(asset, headers={"Accept-Encoding": encoding}) as response:
            assert response.headers.get("Content-Encoding") == encoding, asset
            wire += len(response.get_data())
        with client.get(asset, headers={"Accept-Encoding": "identity"}) as response:
            raw += len(response.get_data())
    return raw, wire


@pytest.mark.parametrize("lang", WORST_WORDS)
def test_the_fullest_screen_costs_under_50_kb_over_the_wire(app, runner, client, sessions, lang, capsys):
    path, _ = add(runner, "Break room", "--office", "lyon", "--staff-only")
    _worst_case(client, sessions, path, lang)
    raw, br = _page_cost(client, path, "br")
    _, gz = _page_cost(client, path, "gzip")
    with capsys.disabled():  # the numbers, for the record (-s not needed)
        print(f"\nscreen page worst case {lang}: raw {raw} B, gzip {gz} B, br {br} B (page + CSS + JS)")
    # Both codings: an old player may not take br.
    assert br < 50_000 and gz < 50_000, (raw, gz, br)


def test_qr_codes_name_the_posts_page(app, runner, client):
    import zxingcpp
    from PIL import Image

    path, _ = add(runner, "Break room")
    post = posts_json(client, path)["posts"][0]
    svg = client.get(post["qr"])
    assert svg.mimetype == "image/svg+xml"
    # Rendered by Chromium in tests/test_browser_screens.py; here the SVG's rectangles drawn with PIL.
    size = int(re.search(r'viewBox="0 0 (\d+) \d+"', svg.get_data(as_text=True))[1])
    image = Image.new("L", (size * 8, size * 8), 255)
    for x, y, w, h in _rects(svg.get_data(as_text=True)):
        image.paste(0, (int(x * 8), int(y * 8), int((x + w) * 8), int((y + h) * 8)))
    found = zxingcpp.read_barcodes(image)
    assert [r.text for r in found] == [f"{BASE}/posts/{post['id']}"] == [post["url"]]


def _rects(svg: str):
    """The dark modules of qrcode's SvgPathFillImage path ("Mx,yHx2Vy2Hxz" per module)."""
    for x, y, x2, y2 in re.findall(r"M([\d.]+),([\d.]+)H([\d.]+)V([\d.]+)H[\d.]+z", svg):
        yield float(x), float(y), float(x2) - float(x), float(y2) - float(y)


# --- the RSS for signage players -------------------------------------------------------------------------------------

def test_the_rss_is_plain_text_with_one_image_enclosure_and_short_titles(app, runner, client, tmp_path):
    path, _ = add(runner, "Break room", "--office", "lyon", "--staff-only")  # the demo's photos are staff-only
    response = client.get(path + "/feed.rss")
    assert response.mimetype == "application/rss+xml" and response.headers["Cache-Control"] == "private, no-cache"
    parsed = feedparser.parse(response.data)
    assert parsed.bozo == 0 and parsed.version == "rss20" and parsed.entries
    raw_items = re.findall(r"<item>(.*?)</item>", response.get_data(as_text=True), re.S)
    assert len(raw_items) == len(parsed.entries)
    with_image = 0
    for entry, raw in zip(parsed.entries, raw_items):
        assert len(entry.title) <= 81 and entry.link.startswith(f"{BASE}/posts/")
        description = html.unescape(re.search(r"<description>(.*?)</description>", raw, re.S)[1])
        assert not re.search(r"<[A-Za-z/!]", description) and "\n" not in description  # text, not HTML
        enclosures = re.findall(r"<enclosure [^>]*/>", raw)
        assert len(enclosures) <= 1
        if enclosures:
            with_image += 1
            assert 'length="0"' in enclosures[0] and 'type="image/jpeg"' in enclosures[0]
            url = re.search(r'url="([^"]+)"', enclosures[0])[1]
            assert re.match(rf"^{BASE}/media/screen/k\d+-[0-9a-f]{{16}}/", url)
            assert client.get(url[len(BASE):]).status_code == 200
    assert with_image >= 1
    problems = w3c_problems(tmp_path, {BASE + path + "/feed.rss": response.data})[BASE + path + "/feed.rss"]
    # The one warning allowed: the validator reads every description as HTML, and a demo post's plain text says
    # "Temperatures < 0 °C" (sent as &lt;, which an HTML reader shows as "<" too: "< " is text in HTML).
    assert "&lt; 0" in response.get_data(as_text=True)
    assert [p["type"] for p in problems] in ([], ["NotHtml"]), problems


# --- the console -----------------------------------------------------------------------------------------------------

def test_the_console_adds_a_screen_showing_its_url_once_and_removes_it(app, client, sessions):
    make_user(sessions, "boss", admin=True)
    signed_in(client, "boss")
    page = client.get("/admin/screens")
    assert page.status_code == 200 and "Break-room screens" in page.get_data(as_text=True)
    added = client.post("/admin/screens", data={"csrf_token": csrf(page.get_data(as_text=True)), "name": "Canteen",
                                                "office": "lyon", "staff_only": "y"})
    body = added.get_data(as_text=True)
    assert added.status_code == 200 and added.headers["Cache-Control"] == "no-store"
    url = re.search(r'value="(https://feed\.example\.com/screen/[A-Za-z0-9_-]{43})"', body)[1]
    assert "<svg" in body
    assert client.get(url[len(BASE):]).status_code == 200
    listing = client.get("/admin/screens").get_data(as_text=True)
    assert "Canteen" in listing and url not in listing  # shown once
    with sessions() as s:
        screen = s.scalars(select(Screen)).one()
        assert (screen.created_by, screen.staff_only) == ("boss", True)
    confirm = client.get(f"/admin/screens/{screen.id}/remove").get_data(as_text=True)
    assert client.post(f"/admin/screens/{screen.id}/remove", data={}).status_code == 400  # no CSRF token
    done = client.post(f"/admin/screens/{screen.id}/remove", data={"csrf_token": csrf(confirm)})
    assert done.status_code == 303
    assert client.get(url[len(BASE):]).status_code == 404


def test_office_editors_manage_their_own_offices_screens_only(app, client, sessions, runner):
    add(runner, "Columbus dock", "--office", "columbus")
    add(runner, "HQ lobby")
    make_user(sessions, "lyoned", office="lyon", role="editor")
    signed_in(client, "lyoned")
    page = client.get("/admin/screens").get_data(as_text=True)
    assert "Columbus dock" not in page and "HQ lobby" not in page
    options = re.findall(r'<option[^>]*value="([^"]*)"', page)
    assert options == ["lyon"]
    token = csrf(page)
    refused = client.post("/admin/screens", data={"csrf_token": token, "name": "Sneaky", "office": ""})
    assert refused.status_code == 400
    assert client.post("/admin/screens", data={"csrf_token": token, "name": "Lyon hall",
                                               "office": "lyon"}).status_code == 200
    with sessions() as s:
        other = s.scalar(select(Screen).where(Screen.name == "Columbus dock"))
    assert client.get(f"/admin/screens/{other.id}/remove").status_code == 403
    assert client.post(f"/admin/screens/{other.id}/remove", data={"csrf_token": token}).status_code == 403
    with sessions() as s:
        assert s.scalar(select(Screen).where(Screen.name == "Columbus dock")) is not None
        actor = Actor("lyoned", "editor", s.scalar(select(Office.id).where(Office.slug == "lyon")))
        assert [x.name for x in screens.list_screens(s, actor)] == ["Lyon hall"]


# --- the pure helpers ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("pinned, others, order", [
    (0, 3, [0, 1, 2]),
    (2, 5, [0, 1, 2, 3, 4, 0, 5, 6]),
    (1, 7, [0, 1, 2, 3, 0, 4, 5, 6, 0, 7]),
    (3, 0, [0, 1, 2]),
    (0, 0, []),
])
def test_rotation_puts_pinned_posts_first_and_again_after_every_three(pinned, others, order):
    assert screens.rotation(pinned, others) == order


@pytest.mark.parametrize("text, limit, expected", [
    ("Short.", 100, ("Short.", False)),
    ("One sentence here. Another one follows. A third is too long to fit in.", 45,
     ("One sentence here. Another one follows.", True)),
    ("No sentence end anywhere in this rather long line of words", 30, ("No sentence end anywhere in…", True)),
    ("Tiny. Then a very long second sentence that runs on and on", 40, ("Tiny. Then a very long second sentence…", True)),
    # Chinese and Japanese put no space after 。！？: their sentences end there all the same.
    ("今日は倉庫が早く閉まります。明日は通常どおりです。詳しくは掲示板を見てください。", 30,
     ("今日は倉庫が早く閉まります。明日は通常どおりです。", True)),
    ("「安全第一」と言いました。」次の文はとても長くて入りません入りません入りません", 20, ("「安全第一」と言いました。」", True)),
    ("هل قرأت الرسالة؟ الرسالة التالية طويلة جدا ولا تتسع هنا", 30, ("هل قرأت الرسالة؟", True)),
])
def test_cut_at_sentence(text, limit, expected):
    assert screens.cut_at_sentence(text, limit) == expected
    assert len(screens.cut_at_sentence(text, limit)[0]) <= limit


def test_long_posts_stay_longer_within_a_cap():
    assert screens.seconds_for("a few words", 12) == 12
    assert screens.seconds_for("word " * 60, 12) == 15
    assert screens.seconds_for("word " * 5000, 12) == 24
    assert screens.seconds_for("word " * 5000, 30) == 50


def test_tokens_in_screen_urls_are_redacted_from_logs():
    from feedapp.redact import redact

    assert redact('"GET /screen/abcDEF123_-xyz/posts.json HTTP/1.1" 200') == \
        '"GET /screen/[redacted]/posts.json HTTP/1.1" 200'


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the markup does not depend on the engine: once
def test_screen_and_console_pages_are_valid_html(app, runner, client, sessions, tmp_path, db_url):
    import shutil

    from tests.conftest import server_missing
    from tests.test_html_valid import vnu_problems

    if shutil.which("java") is None:
        server_missing("no java: the Nu HTML validator needs it (`make browser` installs it)")
    path, _ = add(runner, "Lobby", "--office", "lyon")
    make_user(sessions, "boss", admin=True)
    signed_in(client, "boss")
    pages = {"screen": client.get(path).data, "list": client.get("/admin/screens").data}
    pages["added"] = client.post("/admin/screens", data={
        "csrf_token": csrf(pages["list"].decode()), "name": "Canteen", "office": ""}).data
    with sessions() as s:
        screen_id = s.scalar(select(Screen.id).where(Screen.name == "Canteen"))
    pages["remove"] = client.get(f"/admin/screens/{screen_id}/remove").data
    files = []
    for name, body in pages.items():
        (tmp_path / f"{name}.html").write_bytes(body)
        files.append(str(tmp_path / f"{name}.html"))
    problems = vnu_problems(files)
    assert problems == [], "\n".join(problems)


def test_the_console_says_why_a_name_is_refused(app, client, sessions):
    # A name with a slash (the console's own length and control checks pass it) is refused for what it is,
    # not as a duplicate: the editor would look in vain for the other screen of that name.
    make_user(sessions, "boss", admin=True)
    signed_in(client, "boss")
    token = csrf(client.get("/admin/screens").get_data(as_text=True))
    refused = client.post("/admin/screens", data={"csrf_token": token, "name": "Dock 1/2", "office": ""})
    body = html.unescape(refused.get_data(as_text=True))
    assert refused.status_code == 400
    assert "without slashes" in body and "exists already" not in body
    assert client.post("/admin/screens", data={"csrf_token": token, "name": "Dock 1", "office": ""}).status_code == 200
    again = client.post("/admin/screens", data={"csrf_token": token, "name": " Dock  1 ", "office": ""})
    assert again.status_code == 400 and "exists already" in html.unescape(again.get_data(as_text=True))
    with sessions() as s:
        assert [x.name for x in s.scalars(select(Screen))] == ["Dock 1"]


@pytest.mark.parametrize("name, value", [("FEEDAPP_SCREEN_SECONDS", 0), ("FEEDAPP_SCREEN_SECONDS", float("nan")),
                                         ("FEEDAPP_SCREEN_SECONDS", float("inf")), ("FEEDAPP_SCREEN_REFRESH", -1)])
def test_screen_timings_that_no_screen_could_keep_stop_the_app(make_app, name, value):
    # 0 s a post spins the player's rotation at 1 ms, NaN and infinity are no JSON (the page would not start),
    # a negative refresh polls as fast as it can: refused at start, like a bad frame-ancestors list.
    with pytest.raises(RuntimeError, match=name):
        make_app(**{name: value})


def test_the_clock_is_in_the_zone_the_offices_quiet_hours_use(make_app):
    # An office without a time zone of its own is in FEEDAPP_TIME_ZONE (its quiet hours are read there): so is
    # its screen's clock, and a company-wide screen's. UTC (the default) leaves the clock to the player.
    zone = re.compile(r'data-time-zone="([^"]*)"')
    app = make_app(FEEDAPP_BASE_URL=BASE, FEEDAPP_TIME_ZONE="America/New_York")
    runner = app.test_cli_runner()
    assert runner.invoke(args=["demo"]).exit_code == 0
    client = app.test_client()
    company, _ = add(runner, "HQ lobby")
    lyon, _ = add(runner, "Lyon lobby", "--office", "lyon")
    assert zone.findall(client.get(company).get_data(as_text=True)) == ["America/New_York"]
    assert zone.findall(client.get(lyon).get_data(as_text=True)) == ["America/New_York"]
    with app_sessions(app)() as s:
        s.scalar(select(Office).where(Office.slug == "lyon")).time_zone = "Europe/Paris"
        s.commit()
    assert zone.findall(client.get(lyon).get_data(as_text=True)) == ["Europe/Paris"]
    default = make_app(FEEDAPP_BASE_URL=BASE)
    path, _ = add(default.test_cli_runner(), "Hall")
    assert zone.findall(default.test_client().get(path).get_data(as_text=True)) == []


def test_posts_json_of_no_screen_says_gone_the_same_for_removed_and_unknown_tokens(app, runner, client):
    path, _ = add(runner, "Break room")
    runner.invoke(args=["screens", "remove", "Break room"])
    removed, unknown = client.get(path + "/posts.json"), client.get("/screen/" + "z" * 43 + "/posts.json")
    assert (removed.status_code, removed.json, removed.headers["Cache-Control"]) == (404, {"gone": True}, "no-store")
    assert (removed.data, dict(removed.headers)) == (unknown.data, dict(unknown.headers))
