"""Every setting as data: name, default, type and a one-line meaning.

Precedence, lowest first: these defaults, ``instance/config.py``, the
``FEEDAPP_*`` environment variables, then the mapping given to
``create_app(config)`` (tests).
"""

from __future__ import annotations

import math
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlsplit

from werkzeug.sansio.utils import host_is_trusted

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


def _on_off(value) -> bool:
    """on/off (also true/false, 1/0, yes/no); anything else is refused rather than guessed."""
    if isinstance(value, bool):
        return value
    word = str(value).strip().lower()
    if word in {"1", "true", "yes", "on"}:
        return True
    if word in {"0", "false", "no", "off"}:
        return False
    raise ValueError("give on or off")


def _list(value) -> tuple[str, ...]:
    """"a, b,c" (or a list, from instance/config.py) as a tuple of non-empty stripped strings."""
    items = value.split(",") if isinstance(value, str) else (value or ())
    return tuple(item.strip() for item in items if str(item).strip())


# Loopback only: a proxy on the same box. Not the private ranges: on a company network every staff
# member's device has such an address and could then choose its own with X-Forwarded-For.
DEFAULT_TRUSTED_PROXIES = ("127.0.0.0/8", "::1/128")
DEFAULT_INSTANCE = Path(__file__).resolve().parent.parent / "instance"


SETTINGS: tuple[Setting, ...] = (
    Setting("FEEDAPP_INSTANCE_PATH", None, "folder holding config.py, secret_key and the SQLite file; environment only; default: instance/ beside the package"),
    Setting("FEEDAPP_DATABASE_URL", None, "SQLAlchemy URL of the database; default: SQLite file feedapp.db in the instance folder"),
    Setting("FEEDAPP_SECRET_KEY", None, "session signing key; default: read from instance/secret_key, which `db upgrade` generates"),
    Setting("FEEDAPP_BASE_URL", None, "public base URL written into feeds, manifest and invite links (its path is the app's script root); the web app needs it or FEEDAPP_TRUSTED_HOSTS outside debug and tests"),
    Setting("FEEDAPP_TRUSTED_HOSTS", (), "host names the site answers to, comma-separated (other Host headers get 400); without FEEDAPP_BASE_URL links use the first", _list),
    Setting("FEEDAPP_SECURE_COOKIES", False, "mark cookies Secure (HTTPS only) and send Strict-Transport-Security; turn on whenever the site is served over https", _bool),
    Setting("FEEDAPP_RATELIMIT_STORAGE_URL", None, "where sign-in throttling counts attempts: unset: the app's database (every worker and node on it); redis://… for many nodes"),
    Setting("FEEDAPP_INVITE_DAYS", 7, "days an invite link stays valid", int),
    Setting("FEEDAPP_PROXY_COUNT", 0, "reverse proxies in front of the app whose X-Forwarded-For/-Proto/-Host to trust (0: none)", int),
    Setting("FEEDAPP_TRUSTED_PROXIES", DEFAULT_TRUSTED_PROXIES, "addresses or networks the proxies connect from, comma-separated; X-Forwarded-* from any other peer is ignored", _list),
    Setting("FEEDAPP_X_BEARER_TOKEN", None, "X app-only bearer token, reads public accounts; unset: demo data only"),
    Setting("FEEDAPP_X_CONSUMER_KEY", None, "OAuth 1.0a consumer key of the reader account (protected accounts)"),
    Setting("FEEDAPP_X_CONSUMER_SECRET", None, "OAuth 1.0a consumer secret of the reader account"),
    Setting("FEEDAPP_X_ACCESS_TOKEN", None, "OAuth 1.0a access token of the reader account"),
    Setting("FEEDAPP_X_ACCESS_TOKEN_SECRET", None, "OAuth 1.0a access token secret of the reader account"),
    Setting("FEEDAPP_X_API_URL", None, "base URL of the X API (tests and staging point it at a fake); unset: tweepy's own host"),
    Setting("FEEDAPP_X_TIMEOUT", 15.0, "seconds before an X API request is abandoned (and retried next cycle)", float),
    Setting("FEEDAPP_X_PRICE_POST_READ", 0.005, "US dollars X bills per post read (pay-per-use, each post once per UTC day); the console's spend estimate", float),
    Setting("FEEDAPP_X_PRICE_USER_READ", 0.010, "US dollars X bills per user read (pay-per-use, each account once per UTC day); the console's spend estimate", float),
    Setting("FEEDAPP_POLL_INTERVAL", 300, "seconds between poll cycles of `poll --loop`, and between checks of one source", int),
    Setting("FEEDAPP_STREAM", None, "on/off: `poll --loop` reads public sources' new posts from X's filtered stream within seconds (polling stays for protected sources, and takes over when the stream is off or refused); default: on when a bearer token is set", _on_off),
    Setting("FEEDAPP_STREAM_STALL", 90.0, "seconds without a post or keep-alive before the filtered stream is deemed dead and reconnected (X sends a keep-alive every 20 s and advises 90)", float),
    Setting("FEEDAPP_POLL_CONCURRENCY", 8, "sources fetched at once in a poll cycle", int),
    Setting("FEEDAPP_BACKFILL", 50, "posts fetched on the first poll of a new source", int),
    Setting("FEEDAPP_BACKOFF_MAX", 3600, "longest wait, in seconds, after repeated failures of one source", int),
    Setting("FEEDAPP_PROFILE_REFRESH", 86400, "seconds between re-reads of a source's profile (name, avatar, protected)", int),
    Setting("FEEDAPP_STATE_TTL", 1.0, "seconds a web worker trusts its copy of the content version and office list", float),
    Setting("FEEDAPP_FEED_ITEMS", 50, "items in each RSS/Atom/JSON feed", int),
    Setting("FEEDAPP_SITE_NAME", "Staff news", "the name staff see: the title of every feed and of the OPML list"),
    Setting("FEEDAPP_MEDIA_PROXY", True, "serve avatars and photos from our own /media/ route (fetched from X's media hosts, resized, cached); off: pages and feeds link X's CDN", _bool),
    Setting("FEEDAPP_MEDIA_CACHE_MB", 500, "megabytes of resized images kept under instance/media (least recently used go first)", int),
    Setting("FEEDAPP_LOG_LEVEL", "INFO", "level of feedapp's own log lines"),
    Setting("FEEDAPP_VAPID_SUBJECT", None, "mailto: or https: contact sent with Web Push (RFC 8292); unset: push stays off, saying why"),
    Setting("FEEDAPP_MUST_READ_REMIND", 24, "hours after a must-read post's push before one reminder goes to staff who have not acknowledged it (0: no reminder)", int),
    Setting("FEEDAPP_TIME_ZONE", "UTC", "IANA time zone of offices that set none (quiet hours)"),
    Setting("FEEDAPP_QUIET_HOURS", None, "HH:MM-HH:MM local time with no push for offices that set none (e.g. 21:00-07:00); unset: none"),
    Setting("FEEDAPP_SCREEN_SECONDS", 12.0, "seconds each post stays on a break-room screen (/screen/TOKEN), plus one per 20 words of a long post", float),
    Setting("FEEDAPP_SCREEN_REFRESH", 60.0, "seconds between a break-room screen's checks for new posts", float),
    Setting("FEEDAPP_SCREEN_FRAME_ANCESTORS", "*", "who may show /screen/TOKEN in a frame (signage players do): a CSP frame-ancestors source list; every other page refuses framing"),
    Setting("FEEDAPP_PUSH_HOSTS", (), "more push-service origins subscriptions may point at, comma-separated (e.g. http://127.0.0.1:8123 for a push service under test); default: the browsers' push services only (https)", _list),
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
    for name in ("FEEDAPP_TRUSTED_HOSTS", "FEEDAPP_TRUSTED_PROXIES", "FEEDAPP_PUSH_HOSTS"):  # also given as strings
        app.config[name] = _list(app.config[name])
    for name in ("FEEDAPP_SCREEN_SECONDS", "FEEDAPP_SCREEN_REFRESH"):
        # 0 s spins a screen's rotation, NaN and infinity are no JSON, a negative refresh polls flat out.
        value = float(app.config[name])
        if not (math.isfinite(value) and value > 0):
            raise RuntimeError(f"{name}={app.config[name]!r} is not valid: give a number of seconds above 0")
        app.config[name] = value
    stream = app.config["FEEDAPP_STREAM"]
    try:
        app.config["FEEDAPP_STREAM"] = bool(app.config["FEEDAPP_X_BEARER_TOKEN"]) if stream is None else _on_off(stream)
    except ValueError:
        raise RuntimeError(f"FEEDAPP_STREAM={stream!r} is not valid: give on or off") from None
    if not app.config["FEEDAPP_DATABASE_URL"]:
        path = Path(app.instance_path) / "feedapp.db"
        app.config["FEEDAPP_DATABASE_URL"] = f"sqlite:///{path}"


def read_settings(instance_path: str | None = None) -> dict[str, Any]:
    """The FEEDAPP_* settings without an app (gunicorn.conf.py): defaults, instance/config.py, environment."""
    values = {s.name: s.default for s in SETTINGS}
    folder = Path(instance_path or os.environ.get("FEEDAPP_INSTANCE_PATH") or DEFAULT_INSTANCE)
    path = folder / "config.py"
    if path.is_file():
        namespace: dict[str, Any] = {"__file__": str(path)}
        exec(compile(path.read_bytes(), str(path), "exec"), namespace)  # what Flask's from_pyfile does
        values.update({k: v for k, v in namespace.items() if k in BY_NAME})
    for setting in SETTINGS:
        raw = os.environ.get(setting.name)
        if raw not in (None, ""):
            values[setting.name] = setting.parse(raw)
    for name in ("FEEDAPP_TRUSTED_HOSTS", "FEEDAPP_TRUSTED_PROXIES", "FEEDAPP_PUSH_HOSTS"):
        values[name] = _list(values[name])
    return values


def public_base_url(config) -> str | None:
    """Where links sent out point: FEEDAPP_BASE_URL, else the first trusted host, else None (debug, tests).

    Never a request header: a response a shared cache keeps, an invite link or its QR
    code must not depend on the Host or X-Forwarded-* a client chose. With trusted hosts
    only, the scheme is https when FEEDAPP_SECURE_COOKIES says the site is served over it.
    """
    if config.get("FEEDAPP_BASE_URL"):
        return config["FEEDAPP_BASE_URL"].rstrip("/")
    hosts = _list(config.get("FEEDAPP_TRUSTED_HOSTS"))
    if hosts:
        return f"{'https' if config.get('FEEDAPP_SECURE_COOKIES') else 'http'}://{hosts[0]}"
    return None


def script_root(config) -> str:
    """The path the app is mounted at: FEEDAPP_BASE_URL's path without its trailing slash (usually empty)."""
    return urlsplit(config.get("FEEDAPP_BASE_URL") or "").path.rstrip("/")


def check_public_address(config) -> list[str]:
    """What is wrong with FEEDAPP_BASE_URL / FEEDAPP_TRUSTED_HOSTS, as sentences (empty when nothing is)."""
    problems = []
    base = config.get("FEEDAPP_BASE_URL")
    if base:
        parts = urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
            problems.append(f"FEEDAPP_BASE_URL={base!r} is not valid: give the address staff open, such as "
                            "https://feed.example.com (or https://example.com/feed under a path)")
    hosts = _list(config.get("FEEDAPP_TRUSTED_HOSTS"))
    if base and hosts and not problems and not host_is_trusted(urlsplit(base).netloc, hosts):
        problems.append(f"FEEDAPP_BASE_URL={base!r} names a host that FEEDAPP_TRUSTED_HOSTS does not list: "
                        "add it there, since the site must answer to its own address")
    if hosts and not base and hosts[0].startswith("."):
        problems.append(f"FEEDAPP_TRUSTED_HOSTS starts with {hosts[0]!r}, a wildcard: links are built on the first "
                        "entry, so put a full host name first (or set FEEDAPP_BASE_URL)")
    return problems


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
