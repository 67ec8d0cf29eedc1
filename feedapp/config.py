"""Every setting as data: name, default, type and a one-line meaning.

Precedence, lowest first: these defaults, ``instance/config.py``, the
``FEEDAPP_*`` environment variables, then the mapping given to
``create_app(config)`` (tests).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

SECRET_KEY_FILE = "secret_key"


@dataclass(frozen=True)
class Setting:
    """One configuration key."""

    name: str
    default: Any
    help: str
    parse: Callable[[str], Any] = str


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


SETTINGS: tuple[Setting, ...] = (
    Setting("FEEDAPP_INSTANCE_PATH", None, "folder holding config.py, secret_key and the SQLite file; environment only; default: instance/ beside the package"),
    Setting("FEEDAPP_DATABASE_URL", None, "SQLAlchemy URL of the database; default: SQLite file feedapp.db in the instance folder"),
    Setting("FEEDAPP_SECRET_KEY", None, "session signing key; default: read from instance/secret_key, which `db upgrade` generates"),
    Setting("FEEDAPP_BASE_URL", None, "public base URL written into feeds, manifest and invite links; default: taken from the request"),
    Setting("FEEDAPP_SECURE_COOKIES", False, "mark cookies Secure (HTTPS only); turn on whenever the site is served over https", _bool),
    Setting("FEEDAPP_RATELIMIT_STORAGE_URL", "memory://", "where sign-in throttling counts attempts: memory:// (one web node) or redis://127.0.0.1:6379 (several)"),
    Setting("FEEDAPP_INVITE_DAYS", 7, "days an invite link stays valid", int),
    Setting("FEEDAPP_PROXY_COUNT", 0, "reverse proxies in front of the app whose X-Forwarded-For/-Proto to trust (0: none)", int),
    Setting("FEEDAPP_X_BEARER_TOKEN", None, "X app-only bearer token, reads public accounts; unset: demo data only"),
    Setting("FEEDAPP_X_CONSUMER_KEY", None, "OAuth 1.0a consumer key of the reader account (protected accounts)"),
    Setting("FEEDAPP_X_CONSUMER_SECRET", None, "OAuth 1.0a consumer secret of the reader account"),
    Setting("FEEDAPP_X_ACCESS_TOKEN", None, "OAuth 1.0a access token of the reader account"),
    Setting("FEEDAPP_X_ACCESS_TOKEN_SECRET", None, "OAuth 1.0a access token secret of the reader account"),
    Setting("FEEDAPP_X_API_URL", None, "base URL of the X API (tests and staging point it at a fake); unset: tweepy's own host"),
    Setting("FEEDAPP_X_TIMEOUT", 15.0, "seconds before an X API request is abandoned (and retried next cycle)", float),
    Setting("FEEDAPP_POLL_INTERVAL", 300, "seconds between poll cycles of `poll --loop`, and between checks of one source", int),
    Setting("FEEDAPP_POLL_CONCURRENCY", 8, "sources fetched at once in a poll cycle", int),
    Setting("FEEDAPP_BACKFILL", 50, "posts fetched on the first poll of a new source", int),
    Setting("FEEDAPP_BACKOFF_MAX", 3600, "longest wait, in seconds, after repeated failures of one source", int),
    Setting("FEEDAPP_PROFILE_REFRESH", 86400, "seconds between re-reads of a source's profile (name, avatar, protected)", int),
    Setting("FEEDAPP_STATE_TTL", 1.0, "seconds a web worker trusts its copy of the content version and office list", float),
    Setting("FEEDAPP_FEED_ITEMS", 50, "items in each RSS/Atom/JSON feed", int),
    Setting("FEEDAPP_LOG_LEVEL", "INFO", "level of feedapp's own log lines"),
)

BY_NAME = {s.name: s for s in SETTINGS}


def load_config(app, overrides: dict | None = None) -> None:
    """Fill app.config from defaults, instance/config.py, environment and overrides."""
    for setting in SETTINGS:
        app.config[setting.name] = setting.default
    app.config.from_pyfile("config.py", silent=True)
    for setting in SETTINGS:
        raw = os.environ.get(setting.name)
        if raw not in (None, ""):
            try:
                app.config[setting.name] = setting.parse(raw)
            except ValueError as exc:
                raise RuntimeError(f"{setting.name}={raw!r} is not valid: {exc}") from None
    app.config.update(overrides or {})
    if not app.config["FEEDAPP_DATABASE_URL"]:
        path = Path(app.instance_path) / "feedapp.db"
        app.config["FEEDAPP_DATABASE_URL"] = f"sqlite:///{path}"


def read_secret_key(instance_path: str) -> str | None:
    """The key from instance/secret_key, or None when the set-up has not made one."""
    path = Path(instance_path) / SECRET_KEY_FILE
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None


def ensure_secret_key(instance_path: str) -> bool:
    """Create instance/secret_key (mode 0600) unless it exists; True when created."""
    path = Path(instance_path) / SECRET_KEY_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(48) + "\n")
    return True
