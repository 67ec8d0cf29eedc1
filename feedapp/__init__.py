"""feedapp: a company's X accounts as a fast staff feed, RSS/Atom/JSON feeds and a web app."""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

import click
from flask import Flask
from whitenoise import WhiteNoise

from . import assets, cli, db, redact, textclean, web
from .config import check_public_address, load_config, read_secret_key, script_root
from .push.keys import PushSettings
from .web.fastpath import FastPath
from .web.feed_readers import FeedReaders
from .web.proxy import PinnedScriptRoot, TrustedHosts, TrustedProxies, parse_networks

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
    _push_settings(app)
    _check_public_address(app)
    logging.getLogger("feedapp").setLevel(app.config["FEEDAPP_LOG_LEVEL"])
    redact.install("werkzeug")  # the development server logs request lines, tokens included
    redact.install(app.logger.name)  # Flask logs a failing request's path with its traceback
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
    """The WSGI layers, outermost first: script root, static files, proxies, host check, fast path, Flask."""
    app.wsgi_app = app.extensions["feedapp.fastpath"] = FastPath(
        app.wsgi_app, app.extensions["feedapp.state"],
        private_cookies=(app.config["SESSION_COOKIE_NAME"], app.config["REMEMBER_COOKIE_NAME"]),
    )
    # Feed readers are counted around the fast path, which answers most feed fetches without Flask.
    app.wsgi_app = app.extensions["feedapp.feed_readers"] = FeedReaders(app.wsgi_app, db.sessions(app))
    if app.config["FEEDAPP_TRUSTED_HOSTS"]:  # other Host headers get a plain 400 before routing or caching
        app.wsgi_app = TrustedHosts(app.wsgi_app, app.config["FEEDAPP_TRUSTED_HOSTS"])
    # Exactly FEEDAPP_PROXY_COUNT proxies' X-Forwarded-* (client IP for throttling, https for cookies),
    # and only from the addresses those proxies connect from.
    app.wsgi_app = TrustedProxies(app.wsgi_app, app.config["FEEDAPP_PROXY_COUNT"],
                                  app.extensions["feedapp.trusted_proxies"])
    # WhiteNoise serves static files (and their .br/.gz siblings) before anything else runs.
    app.wsgi_app = WhiteNoise(app.wsgi_app, root=str(ROOT / "static"), prefix="static/",
                              immutable_file_test=assets.is_immutable, max_age=3600)
    # Outermost: no server setting or request header chooses the script root that links are built on.
    app.wsgi_app = PinnedScriptRoot(app.wsgi_app, script_root(app.config))


def _check_public_address(app: Flask) -> None:
    """Refuse settings that would let request headers choose the links the site sends out."""
    problems = check_public_address(app.config)
    try:
        app.extensions["feedapp.trusted_proxies"] = parse_networks(app.config["FEEDAPP_TRUSTED_PROXIES"])
    except ValueError as exc:
        problems.append(f"FEEDAPP_TRUSTED_PROXIES: {exc}")
    if problems:
        raise RuntimeError("; ".join(problems))
    if app.config["FEEDAPP_TRUSTED_HOSTS"]:
        app.config["TRUSTED_HOSTS"] = list(app.config["FEEDAPP_TRUSTED_HOSTS"])  # Flask answers 400 to other hosts
    configured = app.config["FEEDAPP_BASE_URL"] or app.config["FEEDAPP_TRUSTED_HOSTS"]
    if not configured and not (app.debug or app.testing) and not _running_cli_command():
        raise RuntimeError(
            "feedapp does not know its public address, and will not take it from request headers (anyone can "
            "send those, and cached pages, feeds and invite links would carry them). Set FEEDAPP_BASE_URL to "
            "the address staff open, e.g. FEEDAPP_BASE_URL=https://feed.example.com, or list the host names "
            "the site answers to in FEEDAPP_TRUSTED_HOSTS=feed.example.com (links use the first), in the "
            f"environment or in {Path(app.instance_path) / 'config.py'}."
        )


def _push_settings(app: Flask) -> None:
    """Web Push on or off (and why), from FEEDAPP_VAPID_SUBJECT and the key file `db upgrade` writes."""
    try:
        app.extensions["feedapp.push"] = settings = PushSettings.load(app.config, app.instance_path)
    except ValueError as exc:
        raise RuntimeError(str(exc)) from None
    if not settings.enabled and app.config["FEEDAPP_VAPID_SUBJECT"]:
        log.warning("%s", settings.off_reason)  # asked for and not working: say so at start


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
