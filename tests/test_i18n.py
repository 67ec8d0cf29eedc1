"""English and French: the catalogue covers every interface string, placeholders survive translation,
and pages pick, remember and cache the reader's language correctly. No browser here (test_pwa.py has one).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from feedapp import ROOT
from feedapp.db import sessions
from tests.browser import demo_app

PO = ROOT / "translations" / "fr" / "LC_MESSAGES" / "messages.po"
# The keywords tools/update_translations.py (`make translations`) extracts with, besides Babel's defaults.
KEYWORDS = ("_l", "N_")
PLACEHOLDER_RE = re.compile(r"%(?:\((\w+)\))?[#0 +-]*\d*(?:\.\d+)?([sdifr%])")
TIME_RE = re.compile(r"<time\b([^>]*)>([^<]+)</time>")
TITLE_RE = re.compile(r'\btitle="([^"]+)"')


def extract(root: Path, out: Path, keywords=KEYWORDS) -> Path:
    """Run Babel's extraction in root with its babel.cfg, like `make translations`; returns the .pot."""
    args = [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "babel.cfg", "-o", str(out)]
    for keyword in keywords:
        args += ["-k", keyword]
    done = subprocess.run(args + ["."], check=False, cwd=root, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return out


def read_catalog(path: Path, locale: str | None = None):
    with path.open("rb") as fh:
        return read_po(fh, locale=locale)


def untranslated(pot: Path, po: Path = PO) -> list[str]:
    """Every message of the template missing from the catalogue, empty, or fuzzy there."""
    catalog = read_catalog(po, locale="fr")
    missing = []
    for message in read_catalog(pot):
        if not message.id:
            continue
        found = catalog.get(message.id, message.context)
        if found is None or found.fuzzy:
            missing.append(message.id if isinstance(message.id, str) else message.id[0])
            continue
        strings = found.string if isinstance(found.string, tuple) else (found.string,)
        if not all(s and s.strip() for s in strings):
            missing.append(message.id if isinstance(message.id, str) else message.id[0])
    return missing


def placeholders(text: str) -> list[tuple[str, str]]:
    """The printf-style placeholders of a message, as (name, conversion), sorted; %% is left out."""
    return sorted((name or "", kind) for name, kind in PLACEHOLDER_RE.findall(text) if kind != "%")


# --- the catalogue --------------------------------------------------------------------------------------------


def test_every_extracted_message_is_translated(tmp_path):
    pot = extract(ROOT, tmp_path / "messages.pot")
    ids = [m.id for m in read_catalog(pot) if m.id]
    assert len(ids) > 100 and "Company news" in ids and "Use at least %(count)d characters." in ids  # templates, N_
    assert untranslated(pot) == []


def test_the_check_catches_a_template_string_missing_from_the_catalogue(tmp_path):
    shutil.copy(ROOT / "babel.cfg", tmp_path / "babel.cfg")
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "probe.html").write_text(
        "<h1>{{ _('Company news') }}</h1>\n<p>{{ _('Zzz not translated') }}</p>\n", encoding="utf-8")
    pot = extract(tmp_path, tmp_path / "probe.pot")
    assert sorted(m.id for m in read_catalog(pot) if m.id) == ["Company news", "Zzz not translated"]
    assert untranslated(pot) == ["Zzz not translated"]


def test_every_string_marked_in_python_is_extracted_and_translated(tmp_path):
    pot = extract(ROOT, tmp_path / "messages.pot", keywords=(*KEYWORDS, "lazy_gettext"))
    assert untranslated(pot) == []


def test_placeholders_match_between_english_and_french():
    wrong = []
    for message in read_catalog(PO, locale="fr"):
        if not message.id:
            continue
        ids = message.id if isinstance(message.id, tuple) else (message.id,)
        strings = message.string if isinstance(message.string, tuple) else (message.string,)
        want = placeholders(ids[-1])
        for string in strings:
            if placeholders(string) != want and not (len(ids) > 1 and placeholders(ids[0]) == placeholders(string)):
                wrong.append((message.id, string))
    assert wrong == []


def test_the_placeholder_check_sees_renamed_and_dropped_placeholders():
    assert placeholders("Reposted by @%(username)s") == [("username", "s")]
    assert placeholders("Use %(min)d to %(max)d characters, 100%%.") == [("max", "d"), ("min", "d")]
    assert placeholders("Republié par @%(utilisateur)s") != placeholders("Reposted by @%(username)s")
    assert placeholders("Utilisez %(min)d caractères.") != placeholders("Use %(min)d to %(max)d characters.")
    assert placeholders("%(count)s") != placeholders("%(count)d")


# --- pages ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory, sqlite_template):
    """The app with the demo data (posts from November 2026) on its own SQLite copy."""
    tmp = tmp_path_factory.mktemp("i18n")
    app = demo_app(tmp, sqlite_template)
    yield app
    sessions(app).kw["bind"].dispose()


@pytest.fixture
def client(site):
    return site.test_client()


def html_of(client, url: str, **headers) -> str:
    response = client.get(url, headers=headers)
    assert response.status_code == 200, (url, response.status_code)
    return response.get_data(as_text=True)


def lang_cookie(response) -> list[str]:
    return [c for c in response.headers.getlist("Set-Cookie") if c.startswith("lang=")]


def test_french_from_accept_language(client):
    html = html_of(client, "/", **{"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.5"})
    assert '<html lang="fr">' in html
    assert "<h1>Nouvelles de l’entreprise</h1>" in html and "<title>Staff news</title>" in html  # the site's name, not translated
    assert "Company news" not in html and "Older posts" not in html
    times = [(TITLE_RE.search(attrs)[1], shown) for attrs, shown in TIME_RE.findall(html)]
    assert len(times) == 20
    for title, shown in times:
        assert re.fullmatch(r"\d{1,2} nov\. 2026, \d{2}:\d{2} UTC", shown), shown
        assert re.fullmatch(r"(lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche) \d{1,2} novembre 2026, "
                            r"\d{2}:\d{2}:\d{2} UTC", title), title

    english = html_of(client, "/", **{"Accept-Language": "en-GB,en;q=0.9"})
    assert '<html lang="en">' in english and "<h1>Company news</h1>" in english
    shown_en = [shown for _, shown in TIME_RE.findall(english)]
    assert len(shown_en) == 20, shown_en
    assert all(re.fullmatch(r"\d{1,2} Nov 2026, \d{2}:\d{2} UTC", t) for t in shown_en), shown_en
    # Neither language asked for: English.
    assert '<html lang="en">' in html_of(client, "/", **{"Accept-Language": "de-DE,de;q=0.9"})
    assert '<html lang="en">' in html_of(client, "/")


def test_the_lang_cookie_beats_accept_language(client):
    client.set_cookie("lang", "en")
    assert '<html lang="en">' in html_of(client, "/", **{"Accept-Language": "fr"})
    client.set_cookie("lang", "fr")
    html = html_of(client, "/offices", **{"Accept-Language": "en"})
    assert '<html lang="fr">' in html and "<h1>Choisissez votre site</h1>" in html
    client.set_cookie("lang", "de")  # not one of ours: ignored
    assert '<html lang="fr">' in html_of(client, "/", **{"Accept-Language": "fr"})
    assert '<html lang="en">' in html_of(client, "/", **{"Accept-Language": "en"})


def test_choosing_a_language_sets_the_cookie_and_goes_back(client):
    response = client.get("/language/fr?next=/offices/lyon")
    assert response.status_code == 303 and response.headers["Location"] == "/offices/lyon"
    [cookie] = lang_cookie(response)
    assert cookie.startswith("lang=fr;") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert '<html lang="fr">' in html_of(client, "/offices/lyon", **{"Accept-Language": "en"})
    response = client.get("/language/en?next=/")
    assert response.status_code == 303 and lang_cookie(response)[0].startswith("lang=en;")
    assert '<html lang="en">' in html_of(client, "/", **{"Accept-Language": "fr"})


def test_an_unknown_language_sets_no_cookie(client):
    response = client.get("/language/xx?next=/offices")
    assert response.status_code == 303 and response.headers["Location"] == "/offices"
    assert lang_cookie(response) == []
    assert client.get_cookie("lang") is None
    assert '<html lang="fr">' in html_of(client, "/", **{"Accept-Language": "fr"})


def test_the_language_link_never_leads_off_site(client):
    response = client.get("/language/fr?next=//evil.example")
    assert response.status_code == 303 and response.headers["Location"] in ("/", "http://localhost/")
    assert lang_cookie(response)[0].startswith("lang=fr;")


@pytest.mark.parametrize("target", ["//evil.example/path", "/\\evil.example", "https://evil.example/",
                                    "http:evil.example", "javascript:alert(1)", "/\r\nSet-Cookie: x=1", ""])
def test_other_unsafe_next_targets_go_to_the_front_page(client, target):
    response = client.get("/language/en", query_string={"next": target})
    assert response.status_code == 303
    assert response.headers["Location"] in ("/", "http://localhost/"), response.headers["Location"]
    assert lang_cookie(response)[0].startswith("lang=en;")


def test_each_language_has_its_own_etag_and_pages_vary_on_accept_language(client):
    en = client.get("/", headers={"Accept-Language": "en"})
    fr = client.get("/", headers={"Accept-Language": "fr"})
    assert en.status_code == fr.status_code == 200
    assert en.headers["ETag"] and fr.headers["ETag"] and en.headers["ETag"] != fr.headers["ETag"]
    for response in (en, fr):
        vary = {v.strip().lower() for v in response.headers["Vary"].split(",")}
        assert {"accept-language", "cookie"} <= vary, response.headers["Vary"]
    # A French reader revalidating with the English copy's ETag gets the French page, not a 304.
    again = client.get("/", headers={"Accept-Language": "fr", "If-None-Match": en.headers["ETag"]})
    assert again.status_code == 200 and '<html lang="fr">' in again.get_data(as_text=True)
    same = client.get("/", headers={"Accept-Language": "fr", "If-None-Match": fr.headers["ETag"]})
    assert same.status_code == 304
    manifest = client.get("/manifest.webmanifest", headers={"Accept-Language": "fr"})
    assert "accept-language" in manifest.headers["Vary"].lower()


def test_error_pages_and_the_sign_in_prompt_are_translated(client):
    response = client.get("/no-such-page", headers={"Accept-Language": "fr"})
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert '<html lang="fr">' in html and "Il n’y a rien à cette adresse" in html
    problems = ["404 title"] if "Page not found" in html else []
    response = client.get("/account", headers={"Accept-Language": "fr"}, follow_redirects=True)
    html = response.get_data(as_text=True)
    assert response.request.path == "/login" and '<html lang="fr">' in html
    if "Sign in to see that page." in html:
        problems.append("sign-in prompt")
    assert problems == []
