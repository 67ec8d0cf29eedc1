"""Branding over HTTP: name, logo and theme colour from the console, what they drive, what is refused, and the poster."""

from __future__ import annotations

import html
import io
import json
import re
import struct
import zlib

import feedparser
import pytest
from PIL import Image, PngImagePlugin
from sqlalchemy import func, select

from feedapp.content_scopes import SITE
from feedapp.manage import branding
from feedapp.models import AuditEvent, ScopeVersion, SiteFile, SiteSetting
from tests.test_admin import audit_rows, csrf, make_user, qr_modules, signed_in, svg_modules

THEME_RE = re.compile(r'<meta name="theme-color" content="([^"]+)">')
ERR_RE = re.compile(r'<p class="err" id="[^"]+">(.*?)</p>', re.S)


# --- helpers ---------------------------------------------------------------------------------------------------------

def image_bytes(fmt: str, size=(300, 200), colour=(200, 30, 30), **save) -> bytes:
    """A logo made with Pillow: a coloured block with a white square in the middle."""
    image = Image.new("RGB", size, colour)
    image.paste((255, 255, 255), (size[0] // 3, size[1] // 3, 2 * size[0] // 3, 2 * size[1] // 3))
    out = io.BytesIO()
    image.save(out, fmt, **save)
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width×height pixels, with almost no data: a decompression bomb's shape."""
    data = bytearray(image_bytes("PNG", size=(16, 16)))
    ihdr = data[12:29]  # chunk type + 13 bytes of IHDR data
    new = b"IHDR" + struct.pack(">II", width, height) + bytes(ihdr[12:])
    data[12:29] = new
    data[29:33] = struct.pack(">I", zlib.crc32(new))
    return bytes(data)


def branding_page(client) -> str:
    page = client.get("/admin/branding")
    assert page.status_code == 200
    return page.get_data(as_text=True)


def post(client, action: str, token: str | None = None, **data):
    """POST a branding form with a fresh CSRF token (or the one given); a (bytes, filename) value is a file."""
    data["csrf_token"] = token if token is not None else csrf(branding_page(client))
    if any(isinstance(v, tuple) for v in data.values()):
        body, content_type = multipart(data)
        return client.post(f"/admin/branding/{action}", data=body, content_type=content_type)
    return client.post(f"/admin/branding/{action}", data=data)


def multipart(fields: dict) -> tuple[bytes, str]:
    """A multipart/form-data body, built here: the test client would spool a large one to a file it never closes."""
    boundary = "----feedapp-test-boundary"
    parts = []
    for name, value in fields.items():
        if isinstance(value, tuple):
            data, filename = value
            head = f'Content-Disposition: form-data; name="{name}"; filename="{filename}"\r\n' \
                   "Content-Type: application/octet-stream\r\n\r\n"
        else:
            data, head = str(value).encode(), f'Content-Disposition: form-data; name="{name}"\r\n\r\n'
        parts.append(f"--{boundary}\r\n".encode() + head.encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def upload(client, data: bytes, filename: str = "logo.png"):
    return post(client, "logo", logo=(data, filename))


def errors_of(response) -> list[str]:
    return [" ".join(html.unescape(m).split()) for m in ERR_RE.findall(response.get_data(as_text=True))]


def manifest(client) -> dict:
    response = client.get("/manifest.webmanifest")
    assert response.status_code == 200
    return json.loads(response.get_data(as_text=True))


def snapshot(sessions) -> dict:
    """Everything a branding action could change."""
    with sessions() as s:
        return {
            "files": sorted(s.execute(select(SiteFile.name, SiteFile.etag)).all()),
            "settings": sorted(s.execute(select(SiteSetting.key, SiteSetting.value)).all()),
            "audit": s.scalar(select(func.count()).select_from(AuditEvent)),
            "site": s.scalar(select(ScopeVersion.version).where(ScopeVersion.scope == SITE)),
        }


def fetch_image(client, url: str) -> Image.Image:
    response = client.get(url)
    assert response.status_code == 200, url
    assert "immutable" in response.headers["Cache-Control"] and "max-age=31536000" in response.headers["Cache-Control"]
    image = Image.open(io.BytesIO(response.data))
    image.load()
    return image


# --- fixtures --------------------------------------------------------------------------------------------------------

@pytest.fixture
def people(runner, sessions):
    """Two offices, an admin, a company editor, a Lyon editor and a plain staff member."""
    for slug, name in (("columbus", "Columbus Depot (Ohio)"), ("lyon", "Lyon Saint-Priest Hub")):
        result = runner.invoke(args=["offices", "add", slug, name])
        assert result.exit_code == 0, result.output
    return {"boss": make_user(sessions, "boss", admin=True),
            "writer": make_user(sessions, "writer", role="editor"),
            "lyoneditor": make_user(sessions, "lyoneditor", role="editor", office="lyon"),
            "deckhand": make_user(sessions, "deckhand", office="columbus")}


@pytest.fixture
def admin(people, client):
    return signed_in(client, "boss")


# --- the logo --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt, filename", [("PNG", "logo.png"), ("JPEG", "photo.jpg")])
def test_a_png_or_jpeg_logo_makes_the_icons_the_manifest_and_the_header(admin, sessions, fmt, filename):
    # Hidden text the re-encoding must drop: a PNG text chunk, a JPEG's EXIF description.
    if fmt == "PNG":
        save = {"pnginfo": PngImagePlugin.PngInfo()}
        save["pnginfo"].add_text("Comment", "<script>alert(1)</script>")
    else:
        exif = Image.Exif()
        exif[0x010E] = "<script>alert(1)</script>"
        save = {"quality": 95, "exif": exif.tobytes()}
    data = image_bytes(fmt, **save)
    assert admin.get("/").get_data(as_text=True).count('class="logo"') == 1  # the initials badge, before
    response = upload(admin, data, filename)
    assert response.status_code == 303, errors_of(response)
    assert response.headers["Location"] == "/admin/branding"
    assert "The logo is saved" in admin.get("/admin/branding").get_data(as_text=True)

    icons = {icon["purpose"] + icon["sizes"]: icon["src"] for icon in manifest(admin)["icons"]}
    assert set(icons) == {"any192x192", "any512x512", "maskable512x512"}
    assert all(re.fullmatch(r"/brand/[0-9a-f]{16}/[a-z0-9-]+\.png", src) for src in icons.values()), icons
    assert fetch_image(admin, icons["any192x192"]).size == (192, 192)
    assert fetch_image(admin, icons["any512x512"]).size == (512, 512)
    maskable = fetch_image(admin, icons["maskable512x512"])
    assert maskable.size == (512, 512) and maskable.mode == "RGB"
    # Outside the safe zone only the theme colour; the logo's white square sits at the centre.
    assert maskable.getpixel((5, 5)) == maskable.getpixel((506, 506)) == (0x0b, 0x57, 0xd0)
    assert maskable.getpixel((256, 256)) == (255, 255, 255)
    assert _logo_inside_safe_zone(maskable, (0x0b, 0x57, 0xd0))

    page = admin.get("/").get_data(as_text=True)
    apple = re.search(r'<link rel="apple-touch-icon" href="([^"]+)">', page)[1]
    assert fetch_image(admin, apple).size == (180, 180)
    header = re.search(r'<p class="brand"><a href="/"><img class="logo-img" src="([^"]+)" alt="" '
                       r'width="(\d+)" height="(\d+)">', page)
    assert header, page[:2000]
    shown = fetch_image(admin, header[1])
    assert (int(header[2]) * 2, int(header[3]) * 2) == shown.size  # drawn at 2x in the box the page gives
    assert 'class="logo"' not in page.split("</header>")[0]

    # Re-encoded from the pixels alone: no text chunk, no EXIF.
    with sessions() as s:
        stored = s.get(SiteFile, "logo")
        assert stored.content_type == ("image/png" if fmt == "PNG" else "image/jpeg")
        kept = Image.open(io.BytesIO(stored.data))
        assert kept.format == fmt and "Comment" not in kept.info and "exif" not in kept.info
        assert b"<script>" not in stored.data
    assert audit_rows(sessions)[-1][:3] == ("boss", "set_logo", "branding")


def _logo_inside_safe_zone(icon: Image.Image, background: tuple[int, int, int]) -> bool:
    """Every pixel that is not the background lies within the centred circle of radius 40% (W3C maskable icons)."""
    size = icon.width
    pixels = icon.load()
    return all(pixels[x, y] == background for y in range(0, size, 4) for x in range(0, size, 4)
               if (x - size / 2) ** 2 + (y - size / 2) ** 2 > (0.4 * size + 1) ** 2)


@pytest.mark.parametrize("data, filename, message", [
    (b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "logo.svg",
     "That file is not a PNG or JPEG image."),
    (b'<svg xmlns="http://www.w3.org/2000/svg"/>', "logo.png", "That file is not a PNG or JPEG image."),
    (b"Just some text, not an image at all.\n" * 20, "notes.png", "That file is not a PNG or JPEG image."),
    (image_bytes("GIF"), "logo.png", "That file is not a PNG or JPEG image."),
    (png_claiming(5000, 4000), "big.png", "That image is 5000×4000 pixels; a logo may have at most 16.8 million"),
    (png_claiming(30000, 30000), "bomb.png", "That image has far too many pixels; a logo may have at most 16.8 million"),
    (image_bytes("PNG")[:-40], "cut.png", "That image is damaged and could not be read."),
    (b"\x89PNG\r\n\x1a\n" + bytes(2 * 1024 * 1024 + 100), "big.png", "That file is 2.0 MB; a logo may be at most 2 MB."),
])
def test_refused_uploads_say_why_and_change_nothing(admin, sessions, data, filename, message):
    before = snapshot(sessions)
    response = upload(admin, data, filename)
    assert response.status_code == 400
    assert any(error.startswith(message) for error in errors_of(response)), errors_of(response)
    assert snapshot(sessions) == before
    assert not any(icon["src"].startswith("/brand/") for icon in manifest(admin)["icons"])


def test_a_file_past_the_upload_limit_is_refused_before_it_is_read(admin, sessions):
    before = snapshot(sessions)
    response = upload(admin, bytes(3 * 1024 * 1024), "huge.png")
    assert response.status_code == 413
    assert errors_of(response) == ["That file is larger than 2 MB, the most a logo may be."]
    assert snapshot(sessions) == before


def test_an_upload_needs_a_file(admin, sessions):
    before = snapshot(sessions)
    response = post(admin, "logo")
    assert response.status_code == 400
    assert errors_of(response) == ["Choose a PNG or JPEG file."]
    assert snapshot(sessions) == before


def test_removing_the_logo_needs_the_confirm_box_and_brings_the_initials_back(admin, sessions):
    assert upload(admin, image_bytes("PNG")).status_code == 303
    page = branding_page(admin)
    assert "Yes, remove the logo" in page
    before = snapshot(sessions)
    unticked = post(admin, "logo/remove")
    assert unticked.status_code == 400 and errors_of(unticked) == ["Tick the box to confirm."]
    assert snapshot(sessions) == before
    removed = post(admin, "logo/remove", confirm="y")
    assert removed.status_code == 303
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(SiteFile)) == 0
    page = admin.get("/").get_data(as_text=True)
    assert 'class="logo-img"' not in page and '<span class="logo" aria-hidden="true">' in page
    assert all(icon["src"].startswith("/static/dist/icons/") for icon in manifest(admin)["icons"])
    assert audit_rows(sessions)[-1][:2] == ("boss", "remove_logo")


def test_an_old_file_url_is_gone_and_a_forged_one_never_served(admin):
    assert upload(admin, image_bytes("PNG")).status_code == 303
    first = manifest(admin)["icons"][0]["src"]
    assert upload(admin, image_bytes("PNG", colour=(10, 90, 40))).status_code == 303
    second = manifest(admin)["icons"][0]["src"]
    assert first != second
    assert admin.get(first).status_code == 404
    assert admin.get(second).status_code == 200
    etag = second.split("/")[2]
    for path in (f"/brand/{etag}/secret.png", f"/brand/{etag}/../logo", "/brand/accent-zzzzzz.css",
                 "/brand/accent-0b57d0;x.css"):
        assert admin.get(path).status_code == 404, path


# --- name and theme colour -------------------------------------------------------------------------------------------

def test_names_and_colour_drive_manifest_pages_feeds_and_invites(admin, app, sessions):
    assert manifest(admin)["name"] == "Staff news" and manifest(admin)["theme_color"] == "#0b57d0"
    etag = admin.get("/manifest.webmanifest").headers["ETag"]
    assert admin.get("/manifest.webmanifest", headers={"If-None-Match": etag}).status_code == 304
    assert "/brand/accent-" not in admin.get("/").get_data(as_text=True)  # the default colour needs no stylesheet

    assert post(admin, "names", name="  Harbor &  Pine news ", short_name="Harbor").status_code == 303
    assert post(admin, "theme", colour="#00704E").status_code == 303

    # The manifest's cached copy is stale at once: its validator changed.
    changed = admin.get("/manifest.webmanifest", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["Cache-Control"] == "public, no-cache"
    data = manifest(admin)
    assert (data["name"], data["short_name"], data["theme_color"]) == ("Harbor & Pine news", "Harbor", "#00704e")

    anonymous = app.test_client()
    page = anonymous.get("/").get_data(as_text=True)
    assert "<title>Harbor &amp; Pine news</title>" in page
    assert THEME_RE.search(page)[1] == "#00704e"
    accent = re.search(r'<link rel="stylesheet" href="(/brand/accent-00704e\.css)">', page)[1]
    css = anonymous.get(accent)
    assert css.mimetype == "text/css" and "immutable" in css.headers["Cache-Control"]
    assert ":root{--acc:#00704e;" in css.get_data(as_text=True)
    assert "prefers-color-scheme:dark" in css.get_data(as_text=True)

    feed = feedparser.parse(anonymous.get("/feed.rss").data)
    assert feed.feed.title == "Harbor & Pine news"
    assert "Harbor & Pine news" in anonymous.get("/feeds.opml").get_data(as_text=True).replace("&amp;", "&")
    invite = admin.post("/admin/users", data={"csrf_token": csrf(admin.get("/admin/users").get_data(as_text=True)),
                                              "username": "newhire", "office": "", "role": "staff"})
    assert invite.status_code == 200
    invite_path = re.search(r'value="http://localhost(/invite/[^"]+)"', invite.get_data(as_text=True))[1]
    assert "<title>Welcome · Harbor &amp; Pine news</title>" in anonymous.get(invite_path).get_data(as_text=True)

    actions = [row[1:] for row in audit_rows(sessions) if row[2] == "branding"]
    assert actions == [("set_site_name", "branding", "name=Harbor & Pine news short_name=Harbor"),
                       ("set_theme_color", "branding", "#00704e")]

    # Empty fields bring the defaults back.
    assert post(admin, "names", name="", short_name="").status_code == 303
    assert post(admin, "theme", colour="").status_code == 303
    data = manifest(admin)
    assert (data["name"], data["short_name"], data["theme_color"]) == ("Staff news", "Staff feed", "#0b57d0")


def test_a_change_reaches_the_fast_path_and_another_worker(admin, app, make_app):
    reader = app.test_client()
    assert "<title>Staff news</title>" in reader.get("/").get_data(as_text=True)
    assert "<title>Staff news</title>" in reader.get("/").get_data(as_text=True)  # now remembered by the fast path
    other = make_app()  # another worker on the same database, with its own state cache
    assert json.loads(other.test_client().get("/manifest.webmanifest").data)["name"] == "Staff news"
    assert post(admin, "names", name="Pier 9 news", short_name="").status_code == 303
    assert "<title>Pier 9 news</title>" in reader.get("/").get_data(as_text=True)
    assert json.loads(other.test_client().get("/manifest.webmanifest").data)["name"] == "Pier 9 news"
    assert "<title>Pier 9 news</title>" in other.test_client().get("/").get_data(as_text=True)


@pytest.mark.parametrize("colour, ok", [
    ("#4a90e2", False), ("#ffcc00", False), ("#777777", False), ("#0b57d0", True), ("#00704e", True),
    ("#b3261e", True), ("#222222", True)])
def test_the_contrast_check(admin, sessions, colour, ok):
    before = snapshot(sessions)
    response = post(admin, "theme", colour=colour)
    if ok:
        assert response.status_code == 303
        assert manifest(admin)["theme_color"] == colour
        return
    assert response.status_code == 400
    ratio = min(branding.contrast(colour, "#ffffff"), branding.contrast(colour, branding.LIGHT_BG))
    (error,) = errors_of(response)
    assert f"have a contrast of {int(ratio * 100) / 100:.2f}:1" in error
    assert "WCAG AA needs at least 4.5:1. Choose a darker colour." in error
    assert snapshot(sessions) == before


def test_a_colour_that_is_not_hex_is_explained(admin, sessions):
    before = snapshot(sessions)
    for value in ("blue", "#12345", "#1234567", "rgb(0,0,0)"):
        response = post(admin, "theme", colour=value)
        assert response.status_code == 400
        assert errors_of(response) == ["Write the colour as # and six hexadecimal digits, for example #0b57d0."]
    assert snapshot(sessions) == before


@pytest.mark.parametrize("colour", ["#0b57d0", "#00704e", "#b3261e", "#222222", "#5b2a86", "#000000", "#0a6e8a"])
def test_the_accent_palette_meets_aa_in_light_and_dark(colour):
    tokens = branding.palette(branding.check_theme(colour))
    aa = branding.AA
    # Light: white text on the accent; accent text on white, on the page and on its tint.
    for surface in ("#ffffff", branding.LIGHT_BG, tokens.soft):
        assert branding.contrast(tokens.acc, surface) >= aa, (colour, surface)
    # Dark: accent text on the dark page, cards and tint; dark text (--on-acc, the page colour) on the accent.
    for surface in (branding.DARK_BG, branding.DARK_CARD, tokens.soft_dark):
        assert branding.contrast(tokens.acc_dark, surface) >= aa, (colour, surface)


def test_a_colour_change_redraws_the_icons_on_it(admin):
    assert upload(admin, image_bytes("PNG")).status_code == 303
    before = {icon["purpose"]: icon["src"] for icon in manifest(admin)["icons"]}
    assert post(admin, "theme", colour="#5b2a86").status_code == 303
    after = {icon["purpose"]: icon["src"] for icon in manifest(admin)["icons"]}
    assert after["maskable"] != before["maskable"]
    assert fetch_image(admin, after["maskable"]).getpixel((3, 3)) == (0x5b, 0x2a, 0x86)


# --- who may -----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("who", ["writer", "lyoneditor", "deckhand"])
def test_only_admins_may_change_the_branding_even_with_a_forged_form(people, client, sessions, who):
    signed_in(client, who)
    page = client.get("/admin/branding")
    assert page.status_code == 403
    token = csrf(client.get("/account").get_data(as_text=True))
    before = snapshot(sessions)
    for action, data in (("names", {"name": "Hacked"}), ("theme", {"colour": "#000000"}),
                         ("logo", {"logo": (image_bytes("PNG"), "logo.png")}),
                         ("logo/remove", {"confirm": "y"})):
        response = post(client, action, token=token, **data)
        assert response.status_code == 403, action
    assert snapshot(sessions) == before
    home = client.get("/admin/").get_data(as_text=True) if who != "deckhand" else ""
    assert "/admin/branding" not in home


def test_anonymous_readers_are_sent_to_sign_in(people, client, sessions):
    before = snapshot(sessions)
    assert client.get("/admin/branding").status_code == 302
    assert client.post("/admin/branding/names", data={"name": "Hacked"}).status_code in (302, 400)
    body, content_type = multipart({"logo": (bytes(3 * 1024 * 1024), "x.png")})
    big = client.post("/admin/branding/logo", data=body, content_type=content_type)
    assert big.status_code == 413 and "Branding" not in big.get_data(as_text=True)
    assert snapshot(sessions) == before


def test_every_form_needs_its_csrf_token(admin, sessions):
    before = snapshot(sessions)
    for action, data in (("names", {"name": "No token"}), ("theme", {"colour": "#000000"}),
                         ("logo", {"logo": (image_bytes("PNG"), "logo.png")}),
                         ("logo/remove", {"confirm": "y"})):
        if action == "logo":
            body, content_type = multipart(data)
            response = admin.post(f"/admin/branding/{action}", data=body, content_type=content_type)
        else:
            response = admin.post(f"/admin/branding/{action}", data=data)
        assert response.status_code == 400, action
        response = post(admin, action, token="forged", **data)
        assert response.status_code == 400, action
    assert snapshot(sessions) == before


# --- the poster --------------------------------------------------------------------------------------------------------

def poster_qr(page: str) -> str:
    return re.search(r'<div class="poster-qr">(<svg.*?</svg>)</div>', page, re.S)[1]


def test_the_poster_shows_the_name_a_qr_code_of_the_app_and_the_feed(admin):
    assert post(admin, "names", name="Harbor & Pine news", short_name="").status_code == 303
    assert upload(admin, image_bytes("PNG")).status_code == 303
    page = admin.get("/admin/poster").get_data(as_text=True)
    assert '<h2 class="poster-name">Harbor &amp; Pine news</h2>' in page
    assert re.search(r'<img class="poster-logo" src="/brand/[0-9a-f]{16}/logo" alt="">', page)
    assert svg_modules(poster_qr(page)) == qr_modules("http://localhost/", border=2)
    assert '<span class="poster-feed">http://localhost/feed.rss</span>' in page
    assert "Add to Home Screen" in page
    options = re.findall(r'<option value="([^"]*)"', page)
    assert options == ["", "columbus", "lyon"]

    lyon = admin.get("/admin/poster?office=lyon").get_data(as_text=True)
    assert svg_modules(poster_qr(lyon)) == qr_modules("http://localhost/offices/lyon", border=2)
    assert '<span class="poster-feed">http://localhost/offices/lyon/feed.rss</span>' in lyon
    assert '<p class="poster-office">Lyon Saint-Priest Hub</p>' in lyon
    assert admin.get("/admin/poster?office=nowhere").status_code == 404


def test_editors_get_posters_of_their_scope_only(people, app):
    writer = signed_in(app.test_client(), "writer")
    assert writer.get("/admin/poster").status_code == 200
    assert writer.get("/admin/poster?office=columbus").status_code == 200
    assert "/admin/poster" in writer.get("/admin/").get_data(as_text=True)

    lyon = signed_in(app.test_client(), "lyoneditor")
    own = lyon.get("/admin/poster").get_data(as_text=True)
    assert svg_modules(poster_qr(own)) == qr_modules("http://localhost/offices/lyon", border=2)
    assert "<option" not in own  # one choice only: no select
    assert lyon.get("/admin/poster?office=columbus").status_code == 403

    staff = signed_in(app.test_client(), "deckhand")
    assert staff.get("/admin/poster").status_code == 403
    assert app.test_client().get("/admin/poster").status_code == 302


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the markup does not depend on the engine: once
def test_branding_pages_are_valid_html(admin, tmp_path, db_url):
    import shutil
    import subprocess

    from tests.conftest import server_missing
    from tests.test_html_valid import VNU

    if shutil.which("java") is None:
        server_missing("no java: the Nu HTML validator needs it (`make browser` installs it)")
    assert upload(admin, image_bytes("PNG")).status_code == 303
    assert post(admin, "theme", colour="#00704e").status_code == 303
    pages = {"branding": admin.get("/admin/branding"), "refused": post(admin, "theme", colour="#ffff00"),
             "poster": admin.get("/admin/poster"), "front": admin.get("/")}
    files = []
    for name, answer in pages.items():
        path = tmp_path / f"{name}.html"
        path.write_bytes(answer.data)
        files.append(str(path))
    run = subprocess.run(["java", "-jar", str(VNU), "--format", "json", *files], capture_output=True, text=True,
                         timeout=120)
    messages = json.loads(run.stderr or "{}").get("messages", [])
    problems = [f"{m.get('url', '').rsplit('/', 1)[-1]}:{m.get('lastLine')}: {m['type']}: {m['message']}"
                for m in messages if m["type"] in ("error", "non-document-error") or m.get("subType") == "warning"]
    assert problems == [], "\n".join(problems)
