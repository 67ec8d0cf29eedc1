"""Fixtures: a real database per test (SQLite and PostgreSQL), the fake X API, the app."""

from __future__ import annotations

import os
import shutil
import uuid
from typing import NoReturn

import pytest
from jinja2.bccache import BytecodeCache, Bucket
from sqlalchemy import create_engine, make_url, text

from feedapp import ROOT, assets, create_app
from feedapp.db import sessions as app_sessions
from feedapp.migrate import upgrade
from feedapp.models import Base
from tests.fakex import FakeX


def _url_builders_made_on_first_use() -> None:
    """Make werkzeug compile each URL rule's two builders when one is first used, not as each app starts.

    Rule.compile() turns every rule into two small functions through ast and compile(): 90% of create_app()
    (65 of 70 ms), paid for about 90 rules by every one of the suite's thousands of apps, of which each builds
    a handful of URLs. A builder made later is the same function made from the same rule; only the moment
    moves (tests/test_harness.py compares both for every rule). Test processes only: the app is unchanged.
    """
    from werkzeug.routing.rules import Rule

    eager = Rule._compile_builder

    def on_first_use(self, append_unknown=True):
        name = "_build_unknown" if append_unknown else "_build"

        def build(rule, **values):
            made = eager(rule, append_unknown).__get__(rule, None)
            setattr(rule, name, made)  # the next call goes straight to it
            return made(**values)

        return build

    Rule._compile_builder = on_first_use
    Rule._compile_builder_eager = eager  # for tests/test_harness.py


_url_builders_made_on_first_use()


class SharedTemplateCode(BytecodeCache):
    """Jinja's compiled templates shared by every app of a test process (Flask gives each app its own Environment).

    Compiling the templates again for each of the suite's thousands of apps cost more than rendering them.
    jinja2 checks each entry against its template's source, and the key holds what changes the compiled code
    (the finalize function, extensions, autoescape), so an app set up otherwise never gets another's code.
    """

    def __init__(self):
        self.code: dict[str, bytes] = {}

    def get_bucket(self, environment, name, filename, source):
        def named(value):  # a function by its name: a bound method's repr holds its app's address
            return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', value)}"

        made_by = repr((named(environment.finalize), sorted(environment.extensions),
                        named(environment.autoescape), environment.trim_blocks, environment.lstrip_blocks))
        bucket = Bucket(environment, self.get_cache_key(f"{name}\0{made_by}", filename),
                        self.get_source_checksum(source))
        self.load_bytecode(bucket)
        return bucket

    def load_bytecode(self, bucket):
        if bucket.key in self.code:
            bucket.bytecode_from_string(self.code[bucket.key])

    def dump_bytecode(self, bucket):
        self.code[bucket.key] = bucket.bytecode_to_string()


def _share_compiled_templates() -> None:
    from flask import Flask

    Flask.jinja_options = {**Flask.jinja_options, "bytecode_cache": SharedTemplateCode()}


_share_compiled_templates()

# The files that take longest (seconds of test time in a full run, from `pytest --durations=0`), longest first.
# With --dist loadfile each file runs on one worker, in the order collected: started first, a long file cannot be
# left for the end while the other worker idles. pytest.ini turns off xdist's own order (by number of tests, which
# put the longest file, a browser one with few tests, near the end). A stale list costs minutes, never a result.
LONGEST_FIRST = [
    "test_browser_screens.py", "test_cache_key.py", "test_queries.py", "test_admin_sources.py", "test_cli.py",
    "test_browser_design.py", "test_http_cache.py", "test_browser_push.py", "test_pwa.py", "test_nodes.py",
    "test_moderation.py", "test_staff_only.py", "test_stream.py", "test_throttle.py", "test_browser.py",
    "test_poll.py", "test_auth.py", "test_feeds.py", "test_survey.py", "test_screens.py",
]


def pytest_collection_modifyitems(items):
    """Files in LONGEST_FIRST order, then the rest by number of tests; each file's tests keep their order."""
    from collections import Counter

    rank = {name: n for n, name in enumerate(LONGEST_FIRST)}
    tests = Counter(item.path.name for item in items)
    items.sort(key=lambda item: (rank.get(item.path.name, len(rank)), -tests[item.path.name], item.path.name))


# Admin URL of the PostgreSQL server the tests may create throwaway databases on.
PG_ADMIN_URL = os.environ.get("FEEDAPP_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
ENGINES = ["sqlite", "postgresql"]


@pytest.fixture(scope="session", autouse=True)
def static_assets():
    """Build static/dist/ once if it is missing or stale (`make test` builds it first)."""
    import fcntl

    static = ROOT / "static"
    with open(ROOT / ".assets.lock", "w") as lock:  # xdist workers share the tree
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not assets.is_current(static):
            assets.build(static)
        _compile_translations()


def _compile_translations() -> None:
    """Compile translations/*/LC_MESSAGES/messages.po to .mo when stale (`make test` does it first)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    for po in (ROOT / "translations").glob("*/LC_MESSAGES/messages.po"):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            aside = mo.with_name(f"{mo.name}.{os.getpid()}.tmp")
            with po.open("rb") as src, aside.open("wb") as dst:
                write_mo(dst, read_po(src))
            aside.replace(mo)  # whole: another test run in this tree may be reading it


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    """A migrated SQLite file, copied for each test (migrating once is faster)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    upgrade(f"sqlite:///{path}")
    return path


def in_ci() -> bool:
    """True when CI=true (or 1, yes, on) is set, as CI services do."""
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes", "on")


def server_missing(reason: str) -> NoReturn:
    """Skip a test whose database server is missing; under CI=true fail it instead, so that a green CI
    run always means every engine was tested (.ci/run starts the servers it finds installed)."""
    if in_ci():
        pytest.fail(f"{reason}; CI=true: a CI run must test on it, start it (.ci/run does when it is installed)",
                    pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def pg_url():
    """A throwaway PostgreSQL database for this test process, migrated once; dropped at the end."""
    shown = make_url(PG_ADMIN_URL).render_as_string(hide_password=True)
    missing = ""
    try:
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 30})
        with admin.connect() as conn:
            name = f"feedapp_test_{uuid.uuid4().hex[:12]}"
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any failure means "no server to test on"
        first_line = (str(exc).strip().splitlines() or [""])[0]
        missing = f"PostgreSQL not reachable at {shown} (FEEDAPP_TEST_POSTGRES): {type(exc).__name__}: {first_line}"
    if missing:  # outside the except block: the message is the whole story, not a chained traceback
        server_missing(missing)
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=ENGINES)
def db_url(request, tmp_path):
    """A fresh, migrated database on each engine."""
    if request.param == "sqlite":
        path = tmp_path / "feedapp.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("pg_url")
    engine = create_engine(url)
    # DELETE, children first, rather than TRUNCATE: on a handful of rows it is several times faster (TRUNCATE makes
    # new files for every table), and it runs on every PostgreSQL test. Sequences restart as TRUNCATE's would.
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            if table.name not in ("scope_versions", "site_settings"):  # as migrated: installation_id stays
                conn.execute(table.delete())
        conn.execute(text("SELECT setval(oid::regclass, 1, false) FROM pg_class "
                          "WHERE relkind = 'S' AND relnamespace = 'public'::regnamespace"))
        # As migrated: the installation_id alone (the console's settings, such as branding, go).
        conn.execute(text("DELETE FROM site_settings WHERE key <> 'installation_id'"))
        # As migrated: the three scopes of an installation without offices, at version 1.
        conn.execute(text("DELETE FROM scope_versions WHERE scope NOT IN ('site', 'public:company', 'staff:company')"))
        conn.execute(text("UPDATE scope_versions SET version = 1"))
    engine.dispose()
    return url


# The Redis server the tests may use; each test gets its own key prefix on it (see redis_url).
REDIS_TEST_URL = os.environ.get("FEEDAPP_TEST_REDIS", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_url():
    """A Redis URL whose keys belong to this test alone: a random `?prefix=` (feedapp.throttle reads it), cleared after.

    Without a Redis server the test is skipped, saying why; with CI=true it fails instead, so a green CI
    run always means the Redis paths were tested.
    """
    import redis

    client = redis.Redis.from_url(REDIS_TEST_URL, socket_connect_timeout=2, socket_timeout=10)
    try:
        client.ping()
    except redis.RedisError as exc:
        client.close()
        server_missing(f"Redis not reachable at {REDIS_TEST_URL}: {type(exc).__name__}; Redis tests skipped")
    prefix = f"feedapp-test-{uuid.uuid4().hex}:"
    yield f"{REDIS_TEST_URL}?prefix={prefix}"
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture(scope="module")
def closed_port():
    """A 127.0.0.1 port that refuses connections: bound by us (so no one else takes it), never listening."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
def fake_x():
    """A fresh fake X API v2 server on 127.0.0.1."""
    with FakeX() as fake:
        yield fake


def x_config(fake: FakeX) -> dict:
    """App settings that point tweepy at the fake with its credentials."""
    return {
        "FEEDAPP_X_API_URL": fake.url,
        "FEEDAPP_X_BEARER_TOKEN": fake.bearer_token,
        "FEEDAPP_X_CONSUMER_KEY": fake.consumer_key,
        "FEEDAPP_X_CONSUMER_SECRET": fake.consumer_secret,
        "FEEDAPP_X_ACCESS_TOKEN": fake.access_token,
        "FEEDAPP_X_ACCESS_TOKEN_SECRET": fake.access_token_secret,
        "FEEDAPP_X_TIMEOUT": 30.0,  # a guard against hanging, not a speed test: a loaded machine is slow to answer
    }


@pytest.fixture
def make_app(db_url, tmp_path, fake_x):
    """Build an app on this test's database; keyword overrides win."""

    made = []

    def _make(**overrides):
        config = {"TESTING": True, "INSTANCE_PATH": str(tmp_path / "instance"), "FEEDAPP_DATABASE_URL": db_url,
                  "FEEDAPP_STATE_TTL": 0}  # see every write at once; test_http_cache checks the TTL itself
        config.update(x_config(fake_x))
        config.update(overrides)
        made.append(create_app(config))
        return made[-1]

    yield _make
    for app in made:
        app_sessions(app).kw["bind"].dispose()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def sessions(app):
    return app_sessions(app)


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def chromium():
    """One headless Debian Chromium per test module (browser tests; tests/browser.py launches it)."""
    from tests.browser import launch_chromium

    with launch_chromium() as browser:
        yield browser
