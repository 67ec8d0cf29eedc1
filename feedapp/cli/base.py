"""What every command shares: one-line errors instead of tracebacks, the database, the X client, URLs."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import AppGroup, ScriptInfo
from sqlalchemy.exc import SQLAlchemyError

from .. import db


class Command(click.Command):
    """A command whose expected failures end in one clear line and exit 1, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.BadParameter as exc:  # raised by a command after parsing: one line, not the usage
            raise click.ClickException(exc.format_message()) from None
        except Exception as exc:
            message = _one_line(exc, ctx)
            if message is None:
                raise  # a bug: its traceback is what a developer needs
            raise click.ClickException(message) from None


class Group(AppGroup):
    """A command group whose commands are `Command`s."""

    command_class = Command


def _one_line(exc: Exception, ctx: click.Context) -> str | None:
    """What to tell the operator about exc, or None for an unexpected error."""
    from ..accounts import AccountError
    from ..backup import BackupError
    from ..ingest.sources import SourceInputError
    from ..moderation import ModerationError
    from ..roles import Forbidden
    from ..screens import ScreenError
    from ..survey import SurveyError
    from ..xapi import XError

    if isinstance(exc, SQLAlchemyError):
        return database_problem(exc, _database_url(ctx))
    if isinstance(exc, (SourceInputError, AccountError, BackupError, XError, ModerationError, Forbidden,
                        SurveyError, ScreenError)):
        return str(exc)
    return None


def _database_url(ctx: click.Context) -> str | None:
    try:
        return ctx.ensure_object(ScriptInfo).load_app().config["FEEDAPP_DATABASE_URL"]
    except Exception:  # noqa: BLE001 - only used to name the database in a message
        return None


def database_problem(exc: SQLAlchemyError, url: str | None) -> str:
    """One line naming the database (never its password), what is wrong, and what to do."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import DBAPIError

    where = make_url(url).render_as_string(hide_password=True) if url else "FEEDAPP_DATABASE_URL"
    orig = exc.orig if isinstance(exc, DBAPIError) else exc
    detail = (str(orig).strip().splitlines() or [type(orig).__name__])[0].strip()
    lowered = detail.lower()
    # SQLite says "no such table/column"; PostgreSQL sends SQLSTATE 42P01 / 42703 (undefined table / column).
    if "no such table" in lowered or "no such column" in lowered or getattr(orig, "sqlstate", None) in ("42P01", "42703"):
        return f"the database at {where} has no feedapp schema or an old one ({detail}): run `flask --app feedapp db upgrade` first"
    if "database is locked" in lowered:
        return f"the database at {where} stayed locked by another writer: try again ({detail})"
    if (isinstance(exc, DBAPIError) and exc.connection_invalidated) or _is_connect_error(exc, lowered):
        return f"cannot reach the database at {where} ({detail}): check FEEDAPP_DATABASE_URL and that the database is up"
    return f"database error at {where} ({type(orig).__name__}: {detail})"


def _is_connect_error(exc: SQLAlchemyError, lowered: str) -> bool:
    from sqlalchemy.exc import InterfaceError, OperationalError

    if not isinstance(exc, (OperationalError, InterfaceError)):
        return False
    return any(text in lowered for text in (
        "unable to open database file", "connection", "could not translate host name", "timeout expired",
        "does not exist", "password authentication failed", "no password supplied", "server closed",
    ))


def sessions():
    """The current app's session factory."""
    return db.sessions(current_app)


def client():
    """An X client sharing rate windows through the database, or one line saying which credentials to set."""
    from ..ingest.ratelimits import DbRateLimits
    from ..xapi import XClient, XSettings

    settings = XSettings.from_config(current_app.config)
    if not (settings.has_app_auth or settings.has_user_auth):
        raise click.ClickException(
            "no X credentials: set FEEDAPP_X_BEARER_TOKEN (and the FEEDAPP_X_CONSUMER_*/ACCESS_* "
            "keys for protected accounts); `demo` loads sample data without them"
        )
    return XClient(settings, DbRateLimits(sessions()))


def external_url(endpoint: str, **values) -> str:
    """An absolute URL from the command line: the public address (config.public_base_url), else `make run`'s."""
    from flask import url_for

    from ..config import public_base_url

    base = public_base_url(current_app.config) or "http://127.0.0.1:5000"
    with current_app.test_request_context(base_url=base):
        return url_for(endpoint, _external=True, **values)
