"""Engine and session set-up shared by the web app, the CLI and the poller."""

from __future__ import annotations

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

# SQLite waits this long for a writer's lock instead of failing at once.
SQLITE_BUSY_MS = 10_000


def normalize_url(url: str) -> str:
    """Use the psycopg 3 driver for plain postgres:// and postgresql:// URLs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str) -> Engine:
    """An engine for url; SQLite gets WAL, a busy timeout and foreign keys."""
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_MS / 1000},
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=10)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    # WAL lets readers run while the poller writes; NORMAL sync is safe under WAL.
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_MS}")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded objects usable after commit."""
    return sessionmaker(engine, expire_on_commit=False)


def init_app(app) -> None:
    """Bind an engine and session factory to app (no connection is made)."""
    engine = make_engine(app.config["FEEDAPP_DATABASE_URL"])
    app.extensions["feedapp.sessions"] = make_session_factory(engine)

    @app.teardown_appcontext
    def _close_session(_exc):
        from flask import g

        session = g.pop("db_session", None)
        if session is not None:
            session.close()


def sessions(app) -> sessionmaker[Session]:
    """The session factory bound to app."""
    return app.extensions["feedapp.sessions"]


def get_session() -> Session:
    """The current app context's session, opened on first use."""
    from flask import current_app, g

    if "db_session" not in g:
        g.db_session = sessions(current_app)()
    return g.db_session
