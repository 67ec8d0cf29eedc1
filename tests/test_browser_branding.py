"""Branding and the poster in real headless Chromium: upload a logo and set a colour in the console, see the header
and the manifest change; print the poster on A4 (one page) and read its QR code back with a decoder."""

from __future__ import annotations

import io
import json

import pypdf
import pytest
import zxingcpp
from PIL import Image
from playwright.sync_api import expect
from sqlalchemy import select
from werkzeug.security import generate_password_hash

from feedapp import accounts
from feedapp.db import sessions
from feedapp.models import Office
from tests.browser import PageOpener, demo_app, serve, watch

PASSWORD = "lighthouse keeper 7"
A4_POINTS = (595.28, 841.89)  # 210 × 297 mm at 72 points per inch


@pytest.fixture
def site(tmp_path, sqlite_template):
    """The demo company, an admin and a Lyon editor, served on 127.0.0.1."""
    app = demo_app(tmp_path, sqlite_template)
    with sessions(app)() as s:
        lyon = s.scalar(select(Office).where(Office.slug == "lyon"))
        for username, role, office in (("harbourmaster", "admin", None), ("lyoneditor", "editor", lyon)):
            user = accounts.create_user(s, username, username.title(), office, role)
            user.password_hash = generate_password_hash(PASSWORD, method="pbkdf2:sha256:1")
        s.commit()
    with serve(app) as url:
        app.config["FEEDAPP_BASE_URL"] = url  # the poster's QR code names the address staff open
        yield type("Site", (), {"app": app, "url": url})
    sessions(app).kw["bind"].dispose()


@pytest.fixture
def new_page(chromium, site):
    opener = PageOpener(chromium, site.url, [])
    yield opener
    opener.close()


def sign_in(page, username: str) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/")


def logo_png() -> bytes:
    image = Image.new("RGBA", (400, 400), (0, 0, 0, 0))
    image.paste((0, 112, 78, 255), (40, 40, 360, 360))
    image.paste((255, 255, 255, 255), (150, 150, 250, 250))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def manifest(page) -> dict:
    response = page.request.get("/manifest.webmanifest")
    assert response.ok
    return json.loads(response.text())


def test_uploading_a_logo_changes_the_header_and_the_manifest(new_page, site):
    page = new_page()
    problems = watch(page)
    sign_in(page, "harbourmaster")
    expect(page.locator("header.top .brand .logo")).to_be_visible()  # the initials, before
    assert all(icon["src"].startswith("/static/") for icon in manifest(page)["icons"])

    page.goto("/admin/")
    page.get_by_role("link", name="Branding").first.click()
    page.get_by_label("Site name").fill("Harbor & Pine news")
    page.get_by_label("Short name (under the home screen icon)").fill("Harbor")
    page.get_by_role("button", name="Save name").click()
    expect(page.get_by_role("status")).to_contain_text("The site's name is saved.")

    page.get_by_label("Logo (PNG or JPEG, at most 2 MB)").set_input_files(
        {"name": "logo.png", "mimeType": "image/png", "buffer": logo_png()})
    page.get_by_role("button", name="Upload logo").click()
    expect(page.get_by_role("status")).to_contain_text("The logo is saved")

    page.get_by_label("Theme colour").fill("#00704e")
    page.get_by_role("button", name="Save colour").click()
    expect(page.get_by_role("status")).to_contain_text("The theme colour is now #00704e.")

    page.goto("/")
    logo = page.locator("header.top .brand img.logo-img")
    expect(logo).to_be_visible()
    assert logo.evaluate("img => img.complete && img.naturalWidth") == 64  # the 2x file in a 32 px box
    assert logo.bounding_box()["height"] == 32
    expect(page.locator("header.top .brand a")).to_have_text("Harbor & Pine news")
    assert page.locator("header.top .brand .logo").count() == 0
    assert page.title() == "Harbor & Pine news"
    assert page.locator('meta[name="theme-color"]').get_attribute("content") == "#00704e"

    data = manifest(page)
    assert (data["name"], data["short_name"], data["theme_color"]) == ("Harbor & Pine news", "Harbor", "#00704e")
    for icon in data["icons"]:
        assert icon["src"].startswith("/brand/"), icon
        response = page.request.get(icon["src"])
        assert response.ok and response.headers["content-type"] == "image/png"
        assert Image.open(io.BytesIO(response.body())).size == (512, 512) if "512" in icon["sizes"] else True

    # Chromium reads the same manifest for installing, with no error.
    cdp = page.context.new_cdp_session(page)
    installed = cdp.send("Page.getAppManifest")
    assert installed["errors"] == [], installed["errors"]
    assert json.loads(installed["data"])["theme_color"] == "#00704e"

    # The accent follows the colour, light and dark; white text on buttons and dark-scheme links both read at AA.
    accent = "() => getComputedStyle(document.documentElement).getPropertyValue('--acc').trim()"
    assert page.evaluate(accent) == "#00704e"
    page.emulate_media(color_scheme="dark")
    dark = page.evaluate(accent)
    from feedapp.manage.branding import DARK_CARD, contrast, palette
    assert dark == palette("#00704e").acc_dark and contrast(dark, DARK_CARD) >= 4.5
    assert problems == []


def decode_qr(png: bytes) -> list[str]:
    return [result.text for result in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]


@pytest.mark.parametrize("who, query, path", [
    ("harbourmaster", "", "/"),
    ("harbourmaster", "?office=columbus", "/offices/columbus"),
    ("lyoneditor", "", "/offices/lyon"),
])
def test_the_poster_prints_on_one_a4_page_with_a_qr_code_that_opens_the_app(new_page, site, who, query, path):
    page = new_page(viewport={"width": 1280, "height": 900}, is_mobile=False, has_touch=False, device_scale_factor=1)
    sign_in(page, who)
    page.goto(f"/admin/poster{query}")
    poster = page.locator(".poster")
    expect(poster).to_be_visible()
    # The code, as a phone camera sees it on the screen preview.
    assert decode_qr(page.locator(".poster-qr svg").screenshot()) == [site.url + path]

    page.emulate_media(media="print")
    assert page.locator("nav.console").is_hidden() and page.locator("header.top").is_hidden()
    assert decode_qr(page.locator(".poster-qr svg").screenshot()) == [site.url + path]
    pdf = pypdf.PdfReader(io.BytesIO(page.pdf(prefer_css_page_size=True, print_background=True)))
    assert len(pdf.pages) == 1
    box = pdf.pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == tuple(round(x) for x in A4_POINTS)
    text = pdf.pages[0].extract_text()
    assert "Add to Home Screen" in text and "feed.rss" in text
