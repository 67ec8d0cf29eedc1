"""feedapp: a company's X accounts as a fast staff feed, RSS/Atom/JSON feeds and a web app."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

import click
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix
from whitenoise import WhiteNoise

from . import assets, cli, db, redact, textclean, web
from .config import load_config, read_secret_key
from .web.fastpath import NotModifiedFastPath

ROOT = Path(__file__).resolve().parent.parent

log = logging.getLogger(__name__)


def create_app(config: dict | None = None) -> Flask:
    """Build the app: settings, database binding, blueprints and static files. No I/O beyond reading config."""
    config = dict(config or {})
    app = Flask(
        __name__,
        instance_path=config.pop("INSTANCE_PATH", None) or os.environ.get("FEEDAPP_INSTANCE_PATH") or None,
        instance_relative_config=True,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    load_config(app, config)
    app.config["SECRET_KEY"] = _secret_key(app)
    logging.getLogger("feedapp").setLevel(app.config["FEEDAPP_LOG_LEVEL"])
    redact.install("werkzeug")  # the development server logs request lines, tokens included
    textclean.install_log_sanitizer("feedapp", "werkzeug")  # one line per record, no control characters
    # Whatever a template prints ({{ … }}), characters HTML forbids never reach the page.
    app.jinja_options = {**app.jinja_options, "finalize": textclean.scrub_value}

    app.config.update(
        SESSION_COOKIE_SECURE=app.config["FEEDAPP_SECURE_COOKIES"],
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=64 * 1024,  # forms here are tiny; refuse anything bigger early
    )

    db.init_app(app)
    cli.init_app(app)
    web.init_app(app, translations=str(ROOT / "translations"))

    assets.init_app(app)
    _wrap_wsgi(app)
    return app


def _wrap_wsgi(app: Flask) -> None:
    """The WSGI layers, outermost first: static files, proxy headers, the 304 fast path, Flask."""
    app.wsgi_app = app.extensions["feedapp.fastpath"] = NotModifiedFastPath(
        app.wsgi_app, app.extensions["feedapp.state"],
        private_cookies=(app.config["SESSION_COOKIE_NAME"], app.config["REMEMBER_COOKIE_NAME"]),
    )
    hops = app.config["FEEDAPP_PROXY_COUNT"]
    if hops:  # trust exactly that many proxies' X-Forwarded-* (client IP for throttling, https for cookies)
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)
    # WhiteNoise serves static files (and their .br/.gz siblings) before anything else runs.
    app.wsgi_app = WhiteNoise(app.wsgi_app, root=str(ROOT / "static"), prefix="static/",
                              immutable_file_test=assets.is_immutable, max_age=3600)


def _secret_key(app: Flask) -> str | None:
    key = app.config.get("FEEDAPP_SECRET_KEY") or read_secret_key(app.instance_path)
    if key:
        return key
    if app.debug or app.testing:
        return secrets.token_urlsafe(32)  # sessions will not survive a restart; fine for development
    if _running_cli_command():
        return None  # CLI commands sign nothing; `db upgrade` is the one that creates the key
    raise RuntimeError(
        "feedapp has no secret key. Run `flask --app feedapp db upgrade` once (it writes "
        f"{Path(app.instance_path) / 'secret_key'}), or set FEEDAPP_SECRET_KEY."
    )


def _running_cli_command() -> bool:
    """True inside a `flask` command other than `run` (which serves requests)."""
    ctx = click.get_current_context(silent=True)
    return ctx is not None and ctx.info_name != "run"
