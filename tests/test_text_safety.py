"""Characters HTML, XML and log readers must never see: feedapp.textclean and every surface using it."""

from __future__ import annotations

import io
import json
import logging
import random
import re
import shutil
import socket
import subprocess
import sys
import threading
import urllib.request
from datetime import datetime, timezone

import feedparser
import lxml.html
import pytest
from lxml import etree
from sqlalchemy import insert, select
from werkzeug.serving import make_server

from feedapp import ROOT, create_app, textclean
from feedapp.models import Media, Post, Source
from feedapp.textclean import Cleaner, LogSanitizer, clean, escape_log_text, scrub

PDF, PDI = "\u202c", "\u2069"
OPENERS = {"\u202a": PDF, "\u202b": PDF, "\u202d": PDF, "\u202e": PDF, "\u2066": PDI, "\u2067": PDI, "\u2068": PDI}
BIDI = set(OPENERS) | {PDF, PDI}
# One of each forbidden class: C0 controls, DEL and C1 controls, noncharacters of the BMP and
# of an astral plane, lone surrogates (high and low).
FORBIDDEN_SAMPLE = "\x00\x01\x08\x0e\x1b\x7f\x80\x9f\ufdd0\ufdef\ufffe\uffff\U0001fffe\U0010ffff\ud800\udfff"
SEPARATORS = {"\x0b": " ", "\x0c": " ", "\x1c": " ", "\x1d": " ", "\x1e": " ", "\x1f": " ",
              "\x85": "\n", "\u2028": "\n", "\u2029": "\n"}


def is_forbidden(char: str) -> bool:
    """The rule, written from the specs independently of feedapp.textclean.

    XML 1.0 §2.2 Char; HTML's "control" (C0 and U+007F–U+009F) other than ASCII whitespace,
    and its noncharacters; surrogates; and U+2028/U+2029, which feedapp turns into newlines.
    """
    cp = ord(char)
    xml_char = cp in (0x9, 0xA, 0xD) or 0x20 <= cp <= 0xD7FF or 0xE000 <= cp <= 0xFFFD or 0x10000 <= cp <= 0x10FFFF
    html_control = cp < 0x20 and char not in "\t\n\f\r" or 0x7F <= cp <= 0x9F
    noncharacter = 0xFDD0 <= cp <= 0xFDEF or cp & 0xFFFE == 0xFFFE
    return not xml_char or html_control or noncharacter or cp in (0x2028, 0x2029)


def forbidden_in(text: str) -> list[str]:
    """The forbidden characters of text, as escapes for a readable failure."""
    return [f"U+{ord(c):04X}" for c in text if is_forbidden(c)]


def strings(value):
    """Every string inside a JSON value."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)


def balanced(text: str) -> bool:
    """Every line's embeddings, overrides and isolates are properly nested and all closed."""
    for line in re.split("[\n\r]", text):
        stack = []
        for char in line:
            if char in OPENERS:
                stack.append(OPENERS[char])
            elif char in (PDF, PDI):
                if not stack or stack.pop() != char:
                    return False
        if stack:
            return False
    return True


# --- scrub ---------------------------------------------------------------------------------


def test_scrub_removes_exactly_the_forbidden_code_points():
    chars = [chr(cp) for cp in range(0x110000)]
    kept = scrub("|".join(chars))  # "|" between them: no two surrogates form a pair
    expected = "|".join(SEPARATORS[c] if c in SEPARATORS else "" if is_forbidden(c) else c for c in chars)
    assert kept == expected
    assert forbidden_in(kept) == []
    etree.fromstring(f"<t>{kept.replace('&', '').replace('<', '')}</t>".encode())  # strict XML accepts all of it


@pytest.mark.parametrize("char", list(FORBIDDEN_SAMPLE))
def test_each_forbidden_class_is_dropped(char):
    assert scrub(f"Gate{char} 4") == "Gate 4"
    assert clean(f"Gate{char} 4") == "Gate 4"


@pytest.mark.parametrize(("char", "becomes"), SEPARATORS.items())
def test_separators_keep_words_apart(char, becomes):
    assert scrub(f"Gate{char}four") == f"Gate{becomes}four"


def test_tab_newline_cr_and_a_real_surrogate_pair_stay():
    assert scrub("a\tb\nc\r\nd") == "a\tb\nc\r\nd"
    assert scrub("ok \ud83d\ude9a!") == "ok 🚚!"  # UTF-16 halves of one character are joined, not dropped


def test_scrub_value_keeps_markup_and_other_types():
    from markupsafe import Markup

    cleaned = textclean.scrub_value(Markup("<b>a\x01b</b>"))
    assert isinstance(cleaned, Markup) and cleaned == Markup("<b>ab</b>")
    assert textclean.scrub_value(5) == 5 and textclean.scrub_value(None) is None


# --- bidi ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("evil \u202eexe.txt", "evil \u202eexe.txt\u202c"),  # an override left open is closed
    ("a\u202eb\u202cc", "a\u202eb\u202cc"),  # balanced: unchanged
    ("\u202cstray\u2069 closers", "stray closers"),
    ("\u2067rtl \u202bnested", "\u2067rtl \u202bnested\u202c\u2069"),
    ("\u2067iso \u202eemb\u2069 after", "\u2067iso \u202eemb\u202c\u2069 after"),  # PDI ends embeddings inside
    ("\u202eone\u2069", "\u202eone\u202c"),  # a PDI with no isolate open is stray
    ("\u2066x\u202cy\u2069", "\u2066xy\u2069"),  # a PDF cannot close across an isolate
    ("line \u202eone\nline two\u202c", "line \u202eone\u202c\nline two"),  # a line break ends them (UAX #9 P1)
    ("crlf \u2068x\r\ny", "crlf \u2068x\u2069\r\ny"),
])
def test_bidi_controls_are_terminated_per_line(text, expected):
    assert clean(text) == expected
    assert clean(expected) == expected


def test_bidi_nesting_is_bounded_like_the_algorithm():
    deep = "\u202e" * 200 + "x" + PDF * 200
    cleaned = clean(deep)
    assert cleaned == "\u202e" * 125 + "x" + PDF * 125  # UAX #9 ignores initiators past max_depth 125
    assert len(clean("\u202e" * 10_000)) == 250


def test_random_texts_come_out_balanced_scrubbed_and_stable():
    rng = random.Random(8)
    alphabet = list(OPENERS) + [PDF, PDI, "\n", "\r", "a", "b", " ", "ש", "\x0b", "\x00", "\u2028", "\ufffe"]
    for _ in range(2000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        cleaned = clean(text)
        assert balanced(cleaned), repr(text)
        assert forbidden_in(cleaned) == []
        assert clean(cleaned) == cleaned
        # Only bidi controls are added or dropped: every other character keeps its order.
        assert [c for c in cleaned if c not in BIDI] == [c for c in scrub(text) if c not in BIDI]
        # Fed in pieces, the same text comes out the same.
        cuts = sorted(rng.sample(range(len(text) + 1), k=min(3, len(text) + 1)))
        cleaner = Cleaner()
        pieces = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
        assert "".join(cleaner.feed(p) for p in pieces) + cleaner.close() == cleaned


# --- log lines -------------------------------------------------------------------------------


def test_log_text_is_one_line_without_controls_or_bidi():
    forged = "post text\n2030-01-01 INFO feedapp.auth admin signed in\r\x1b[2J\u202eevil\u2028x\x85y\ud800"
    escaped = escape_log_text(forged)
    assert escaped == ("post text\\n2030-01-01 INFO feedapp.auth admin signed in\\r\\x1b[2J\\u202eevil"
                       "\\u2028x\\x85y\\ud800")
    assert escape_log_text("🚚 \U00020000 \U0001fffe\tok") == "🚚 \U00020000 \\U0001fffe\tok"  # tab stays
    assert escape_log_text("\x1b[33mGET /\x1b[0m", keep_sgr=True) == "\x1b[33mGET /\x1b[0m"
    assert escape_log_text("\x1b[2J\x1b[8m", keep_sgr=True) == "\\x1b[2J\x1b[8m"


@pytest.fixture
def records():
    """Every record reaching the root logger, formatted; logging's own record factory meanwhile."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    factory = logging.getLogRecordFactory()
    logging.setLogRecordFactory(logging.LogRecord)  # undo what earlier create_app calls installed
    yield stream
    root.removeHandler(handler)
    logging.setLogRecordFactory(factory)


def test_create_app_sanitizes_feedapp_loggers_created_any_time(tmp_path, records):
    create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path), "FEEDAPP_DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    log = logging.getLogger(f"feedapp.ingest.later_{id(records)}")  # a child created after create_app
    log.warning("source=%s poll failed: %s", "evil", 'X said "bad"\nCRITICAL feedapp forged line\x1b[31m')
    try:
        raise ValueError("detail from X\nERROR feedapp another forged line\u202e")
    except ValueError:
        log.exception("source=%s poll crashed", "evil")
    logging.getLogger("elsewhere").warning("not ours\nsecond line")
    lines = records.getvalue().splitlines()
    assert lines[0] == ('WARNING feedapp.ingest.later_%d source=evil poll failed: X said "bad"\\nCRITICAL feedapp '
                        'forged line\\x1b[31m' % id(records))
    assert lines[1] == f"ERROR feedapp.ingest.later_{id(records)} source=evil poll crashed"
    assert lines[2] == "Traceback (most recent call last):"
    # The traceback keeps its frames, and the exception's message stays on one line.
    assert "ValueError: detail from X\\nERROR feedapp another forged line\\u202e" in lines
    assert not any(line.startswith("ERROR feedapp another") for line in lines)
    assert lines[-2:] == ["WARNING elsewhere not ours", "second line"]  # other libraries' records: untouched


def test_filter_on_a_logger_sanitizes_its_records(records):
    log = logging.getLogger("gunicorn.access.test_text_safety")
    log.addFilter(LogSanitizer())
    log.warning('"%s" %s', "GET /\u202eevil HTTP/1.1", "200\nforged")
    assert records.getvalue() == 'WARNING gunicorn.access.test_text_safety "GET /\\u202eevil HTTP/1.1" 200\\nforged\n'


def test_development_server_request_lines_are_sanitized(tmp_path, records):
    create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path), "FEEDAPP_DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    werkzeug_log = logging.getLogger("werkzeug")
    level = werkzeug_log.level
    werkzeug_log.setLevel(logging.INFO)

    def app(environ, start_response):
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"no"]

    server = make_server("127.0.0.1", 0, app)  # werkzeug's own request handler, which logs every request
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with pytest.raises(urllib.error.HTTPError):
            # werkzeug decodes the path and escapes C0/C1 controls, but not bidi controls,
            # LINE SEPARATOR or noncharacters.
            opener.open(f"http://127.0.0.1:{server.server_port}/a%E2%80%AEb%E2%80%A8c%EF%BF%BFd", timeout=5)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        werkzeug_log.setLevel(level)
    line = next(line for line in records.getvalue().splitlines() if "GET /a" in line)
    assert "GET /a\\u202eb\\u2028c\\uffffd HTTP/1.1" in line
    assert forbidden_in(line.replace("\x1b", "")) == [] and not BIDI & set(line)


def test_gunicorn_access_log_lines_are_sanitized(tmp_path, sqlite_template):
    db = tmp_path / "g.db"
    shutil.copy(sqlite_template, db)
    env = {"FEEDAPP_DATABASE_URL": f"sqlite:///{db}", "FEEDAPP_SECRET_KEY": "k" * 40,
           "FEEDAPP_INSTANCE_PATH": str(tmp_path), "FEEDAPP_BASE_URL": "http://127.0.0.1", "PATH": "/usr/bin:/bin"}
    # Port 0: gunicorn binds a free port and names it in its "Listening at" line.
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "-b", "127.0.0.1:0",
                             "-w", "1", "wsgi:app"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="backslashreplace")
    try:
        port = None
        for line in proc.stdout:
            port = port or (m := re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", line)) and int(m[1])
            if "Booting worker" in line:
                break
        assert port, "gunicorn did not start"
        # Header values may carry bytes 0x80-0xFF (RFC 9110 obs-text); gunicorn reads them as Latin-1,
        # so UTF-8 for NEL, RLO and LINE SEPARATOR arrives as C1 controls.
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                         b"User-Agent: evil\xc2\x85\xe2\x80\xae agent\r\nReferer: http://a.example/\xe2\x80\xa8x\r\n\r\n")
            response = b""
            while chunk := conn.recv(4096):
                response += chunk
        assert response.startswith(b"HTTP/1.1 200")
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    access = next(line for line in output.split("\n") if "GET /healthz" in line)
    assert '"evil\u00c2\\x85\u00e2\\x80\u00ae agent"' in access
    assert forbidden_in(access) == []


# --- posts stored before cleaning, on every surface --------------------------------------------

# Every forbidden class and every separator, between words that must stay apart. Text columns
# cannot hold a lone surrogate on either engine, nor NUL on PostgreSQL; JSON columns can.
OLD = "Gate\x0bfour \x01\x1b\x7f\x80\x9f\ufdd0\ufffe\uffff\U0001fffe\U0010ffffopen\x0cnow\x85next\u2028line\u2029end"
OLD_JSON = OLD + "\x00\udfff\ud800"  # low before high: two lone surrogates, not a pair
WHEN = datetime(2031, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def old_post(runner, sessions, db_url):
    """The demo data plus a company-wide post written straight into the table, as an old poller stored it."""
    assert runner.invoke(args=["demo"]).exit_code == 0
    old = OLD + ("\x00" if db_url.startswith("sqlite") else "")
    with sessions() as s:
        source = s.scalars(select(Source).where(Source.username == "HarborPineNews")).one()
        quoted = {"id": "1", "text": f"Quoted {OLD_JSON}", "links": [], "created_at": None, "lang": "en",
                  "author": {"id": "9", "username": f"qu{OLD_JSON}", "name": f"Quoter {OLD_JSON}", "protected": False},
                  "media": [{"key": "3_9", "type": "photo", "url": "https://pbs.twimg.com/media/Q.jpg", "width": 10,
                             "height": 10, "alt_text": f"Quoted alt {OLD_JSON}", "preview_url": None,
                             "duration_ms": None, "variants": []}]}
        text = f"{old} \u202eover @HPL_Lyon"
        at = text.index("@HPL_Lyon")
        s.execute(insert(Post).values(
            id=3100000000000000001, source_id=source.id, created_at=WHEN, author_id="1",
            author_username=f"Harbor{old}", author_name=f"Name {old}", text=text, lang="en",
            links=[{"start": at, "end": at + 9, "kind": "mention", "href": "https://x.com/HPL_Lyon",
                    "display": "@HPL_Lyon"}],
            reply_to_id="5", reply_to_user_id="6", reply_to_username=f"re{old}", quoted=quoted, raw={}))
        s.execute(insert(Media).values(post_id=3100000000000000001, position=0, media_key="3_1", type="photo",
                                       url="https://pbs.twimg.com/media/A.jpg", width=10, height=10,
                                       alt_text=f"Alt {old}", variants=[]))
        s.commit()


def words_apart(text: str, pairs=("Gate four", "open now", "now next", "next line", "line end")) -> None:
    """The words around each separator of OLD are still separate words."""
    flat = " ".join(text.split())
    for pair in pairs:
        assert pair in flat, (pair, flat[:300])


FIRST_LINE = ("Gate four", "open now")  # NEL ends the first line: all a title holds


@pytest.mark.parametrize("url", ["/", "/offices/columbus"])
def test_pages_never_show_forbidden_characters_of_old_posts(old_post, client, url):
    html = client.get(url).get_data(as_text=True)
    assert forbidden_in(html) == []
    article = lxml.html.document_fromstring(html).get_element_by_id("p3100000000000000001")
    words_apart(article.find_class("tx")[0].text_content())
    assert [a.text_content() for a in article.find_class("tx")[0].iter("a")] == ["@HPL_Lyon"]  # the span held
    words_apart(article.find_class("name")[0].text_content())
    words_apart(article.find_class("q")[0].text_content())
    alts = article.xpath(".//img/@alt")
    assert [alt.split(" Gate")[0] for alt in alts] == ["Alt", "Quoted alt"]
    for alt in alts:
        words_apart(alt)


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_xml_feeds_never_carry_forbidden_characters_of_old_posts(old_post, client, fmt):
    data = client.get(f"/feed.{fmt}").get_data()
    text = data.decode("utf-8")
    assert forbidden_in(text) == []
    etree.fromstring(data, etree.XMLParser(recover=False))  # strict XML 1.0
    parsed = feedparser.parse(data)
    assert not parsed.bozo, parsed.get("bozo_exception")
    entry = next(e for e in parsed.entries if e.id.endswith("/3100000000000000001"))
    words_apart(entry.title, FIRST_LINE)
    content = lxml.html.fragment_fromstring(entry.content[0].value if fmt == "atom" else entry.summary,
                                            create_parent="div")
    words_apart(content.text_content())
    assert balanced(entry.title)


def test_json_feed_never_carries_forbidden_characters_of_old_posts(old_post, client):
    doc = json.loads(client.get("/feed.json").get_data())
    assert [s for s in strings(doc) if forbidden_in(s)] == []
    item = next(i for i in doc["items"] if i["id"].endswith("/3100000000000000001"))
    words_apart(item["content_text"])
    words_apart(item["title"], FIRST_LINE)
    words_apart(item["authors"][0]["name"])
    assert balanced(item["content_text"]) and balanced(item["title"])
