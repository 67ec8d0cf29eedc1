"""The one wrapper around tweepy.Client: requests, fields, host rewrite, rate limits and error mapping.

Nothing here imports Flask or touches the database; callers pass settings (and
a RateLimits store) in and get feedapp.xapi types (or feedapp.xapi.errors) back.
One XClient holds one requests.Session, which is not safe to share between
threads: give each thread its own with clone().
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import requests
import tweepy

from .errors import AuthError, MalformedResponse, RateLimited, SourceError, TransientError, XError
from .limits import (
    TIMELINES,
    USERS_BY_ID,
    USERS_BY_NAME,
    MemoryRateLimits,
    RateKey,
    RateLimits,
    credential_id,
    rate_info,
)
from .normalize import normalize_page, normalize_users
from .types import XPage, XUser

log = logging.getLogger(__name__)
# tweepy logs full request headers (bearer token included) and bodies at DEBUG.
logging.getLogger("tweepy").setLevel(logging.WARNING)

TWEEPY_HOST = "https://api.twitter.com"
# Everything rendering needs, and no more (X API v2: fields and expansions).
TWEET_FIELDS = [
    "created_at", "entities", "attachments", "referenced_tweets", "note_tweet", "lang",
    "possibly_sensitive", "conversation_id", "in_reply_to_user_id", "author_id",
]
# No author_id expansion: the timeline owner is the source we already know, and
# every user object returned is billed. Referenced authors are needed for reposts.
EXPANSIONS = [
    "attachments.media_keys", "referenced_tweets.id", "referenced_tweets.id.author_id",
    "referenced_tweets.id.attachments.media_keys",
]
MEDIA_FIELDS = ["url", "preview_image_url", "type", "width", "height", "alt_text", "variants", "duration_ms"]
USER_FIELDS = ["name", "username", "protected", "profile_image_url", "verified"]
LOOKUP_BATCH = 100  # /2/users/by accepts at most 100 usernames


@dataclass(frozen=True)
class XSettings:
    """Credentials and connection settings for the X API."""

    bearer_token: str | None = None
    consumer_key: str | None = None
    consumer_secret: str | None = None
    access_token: str | None = None
    access_token_secret: str | None = None
    api_url: str | None = None
    timeout: float = 15.0

    @property
    def has_app_auth(self) -> bool:
        return bool(self.bearer_token)

    @property
    def has_user_auth(self) -> bool:
        return all((self.consumer_key, self.consumer_secret, self.access_token, self.access_token_secret))

    @classmethod
    def from_config(cls, config) -> XSettings:
        """Settings from a mapping holding the FEEDAPP_X_* keys."""
        return cls(
            bearer_token=config.get("FEEDAPP_X_BEARER_TOKEN"),
            consumer_key=config.get("FEEDAPP_X_CONSUMER_KEY"),
            consumer_secret=config.get("FEEDAPP_X_CONSUMER_SECRET"),
            access_token=config.get("FEEDAPP_X_ACCESS_TOKEN"),
            access_token_secret=config.get("FEEDAPP_X_ACCESS_TOKEN_SECRET"),
            api_url=config.get("FEEDAPP_X_API_URL"),
            timeout=float(config.get("FEEDAPP_X_TIMEOUT") or 15.0),
        )


class RewritingSession(requests.Session):
    """A session that sends tweepy's requests to another host, and never waits forever.

    tweepy hard-codes https://api.twitter.com. The swap happens in request(),
    before requests prepares the call and OAuth1 signs it: OAuth 1.0a signs the
    URL (RFC 5849 §3.4.1.2), so rewriting after signing would break signatures.
    """

    def __init__(self, base_url: str | None, timeout: float):
        super().__init__()
        self.base = urlsplit(base_url.rstrip("/")) if base_url else None
        self.timeout = timeout

    def request(self, method, url, *args, **kwargs):
        if self.base is not None and url.startswith(TWEEPY_HOST):
            parts = urlsplit(url)
            url = urlunsplit((self.base.scheme, self.base.netloc, self.base.path + parts.path, parts.query, ""))
        kwargs.setdefault("timeout", self.timeout)
        return super().request(method, url, *args, **kwargs)


@dataclass
class Fetched:
    """A timeline page plus what the call cost."""

    page: XPage
    post_ids: list[str] = field(default_factory=list)  # billable post objects returned
    user_ids: list[str] = field(default_factory=list)  # billable user objects returned


@dataclass
class Lookup:
    """Users found by a lookup, the per-username problems, and the billable ids."""

    users: list[XUser]
    problems: dict[str, str]  # lower-cased username or id -> reason
    user_ids: list[str] = field(default_factory=list)


class XClient:
    """Timeline and user reads over tweepy, returning feedapp types and raising XError.

    Before every call the client asks `limits` whether the window of that credential
    and endpoint is used up (then RateLimited is raised and nothing is sent); after
    every response it tells `limits` what the response said about the window.
    """

    def __init__(self, settings: XSettings, limits: RateLimits | None = None):
        self.settings = settings
        self.limits = limits if limits is not None else MemoryRateLimits()
        # X counts a bearer token's calls per app and OAuth 1.0a calls per access token.
        self._credentials = {
            False: credential_id("bearer", settings.bearer_token),
            True: credential_id("reader", settings.consumer_key, settings.access_token),
        }
        self._tweepy = tweepy.Client(
            bearer_token=settings.bearer_token,
            consumer_key=settings.consumer_key,
            consumer_secret=settings.consumer_secret,
            access_token=settings.access_token,
            access_token_secret=settings.access_token_secret,
            return_type=requests.Response,  # we read headers and parse the body ourselves
            wait_on_rate_limit=False,  # a sleeping poller or web worker helps no one
        )
        self._tweepy.session = RewritingSession(settings.api_url, settings.timeout)
        self._lock = threading.Lock()
        self.requests_made = 0

    def clone(self, limits: RateLimits | None = None) -> XClient:
        """The same settings (and rate-limit store, unless given another) with a session of its own."""
        return XClient(self.settings, limits if limits is not None else self.limits)

    def close(self) -> None:
        """Close the HTTP session's pooled connections."""
        self._tweepy.session.close()

    def rate_key(self, endpoint: str, user_auth: bool = False) -> RateKey:
        """The window that a call to endpoint (X's path template) counts against."""
        return RateKey(self._credentials[self._auth(user_auth)], endpoint)

    def lookup_users(self, usernames: list[str], *, user_auth: bool = False) -> Lookup:
        """Resolve usernames in batches of 100 (GET /2/users/by)."""
        return self._lookup("usernames", USERS_BY_NAME, usernames, user_auth)

    def lookup_ids(self, ids: list[str], *, user_auth: bool = False) -> Lookup:
        """Read accounts by id in batches of 100 (GET /2/users), following renames."""
        return self._lookup("ids", USERS_BY_ID, ids, user_auth)

    def _lookup(self, key: str, endpoint: str, values: list[str], user_auth: bool) -> Lookup:
        result = Lookup(users=[], problems={})
        for i in range(0, len(values), LOOKUP_BATCH):
            batch = {key: values[i : i + LOOKUP_BATCH]}
            body, _ = self._call(self._tweepy.get_users, endpoint, **batch, user_fields=USER_FIELDS,
                                 user_auth=self._auth(user_auth))
            users, errors = _parse(normalize_users, body)
            result.users.extend(users)
            result.user_ids.extend(u.id for u in users)
            for err in errors:
                value = str(err.get("value") or err.get("resource_id") or "").lower()
                result.problems[value] = problem_reason(err)
        return result

    def timeline_page(
        self,
        user_id: str,
        *,
        since_id: int | None = None,
        until_id: int | None = None,
        max_results: int = 100,
        pagination_token: str | None = None,
        user_auth: bool = False,
        owner: XUser | None = None,
        exclude_reposts: bool = False,
    ) -> Fetched:
        """One page of GET /2/users/:id/tweets, newest first (without reposts when exclude_reposts)."""
        params = dict(
            max_results=max(5, min(100, max_results)),  # the endpoint accepts 5..100
            tweet_fields=TWEET_FIELDS,
            expansions=EXPANSIONS,
            media_fields=MEDIA_FIELDS,
            user_fields=USER_FIELDS,
        )
        if since_id:
            params["since_id"] = since_id
        if until_id:
            params["until_id"] = until_id
        if pagination_token:
            params["pagination_token"] = pagination_token
        if exclude_reposts:
            # X API v2 timelines: exclude=retweets leaves reposts out of the answer, so they are neither read nor
            # billed. Not exclude=replies: that would drop the account's own threads (replies to itself) too.
            params["exclude"] = ["retweets"]
        body, _ = self._call(self._tweepy.get_users_tweets, TIMELINES, user_id,
                             user_auth=self._auth(user_auth), **params)
        if "data" not in body and body.get("errors"):
            # X answers 200 with only an errors list for protected, suspended or missing accounts.
            raise source_error(body["errors"][0])
        page = _parse(lambda b: normalize_page(b, source_user=owner), body)
        includes = body.get("includes") or {}
        return Fetched(
            page=page,
            post_ids=[str(t.get("id")) for t in (body.get("data") or []) + (includes.get("tweets") or [])],
            user_ids=[str(u.get("id")) for u in includes.get("users") or []],
        )

    def _auth(self, user_auth: bool) -> bool:
        if user_auth and not self.settings.has_user_auth:
            raise AuthError(
                "this account needs the OAuth 1.0a reader account: set FEEDAPP_X_CONSUMER_KEY, "
                "FEEDAPP_X_CONSUMER_SECRET, FEEDAPP_X_ACCESS_TOKEN and FEEDAPP_X_ACCESS_TOKEN_SECRET"
            )
        if not user_auth and not self.settings.has_app_auth:
            if self.settings.has_user_auth:
                return True  # the reader account can read public accounts too
            raise AuthError("no X credentials: set FEEDAPP_X_BEARER_TOKEN")
        return user_auth

    def _call(self, method, endpoint: str, *args, user_auth: bool, **kwargs) -> tuple[dict, requests.Response]:
        key = RateKey(self._credentials[user_auth], endpoint)
        blocked = self.limits.blocked_until(key)
        if blocked is not None:
            raise RateLimited(blocked, key.words())  # a window known to be used up: send nothing
        with self._lock:
            self.requests_made += 1
        cred = "the OAuth 1.0a reader account (FEEDAPP_X_CONSUMER_KEY …)" if user_auth else "FEEDAPP_X_BEARER_TOKEN"
        try:
            response = method(*args, user_auth=user_auth, **kwargs)
        except tweepy.TooManyRequests as exc:
            info = rate_info(exc.response.headers, refused=True)
            self.limits.record(key, info)
            raise RateLimited(info.reset_at, key.words(), called=True) from None
        except tweepy.HTTPException as exc:
            self._record(key, exc.response)
            raise http_error(exc, cred) from None
        except requests.Timeout:
            raise TransientError(f"X API timed out after {self.settings.timeout:g} s") from None
        except requests.RequestException as exc:
            raise TransientError(f"cannot reach the X API: {type(exc).__name__}") from None
        self._record(key, response)
        try:
            body = response.json()
        except (ValueError, json.JSONDecodeError):
            raise MalformedResponse("X API answered with a body that is not JSON") from None
        if not isinstance(body, dict):
            raise MalformedResponse("X API answered with JSON that is not an object")
        return body, response

    def _record(self, key: RateKey, response: requests.Response) -> None:
        info = rate_info(response.headers)
        if info is not None:
            self.limits.record(key, info)


def http_error(exc: tweepy.HTTPException, cred: str) -> XError:
    """Our error for an answer that is neither 2xx nor 429."""
    status = exc.response.status_code
    if isinstance(exc, tweepy.Unauthorized):
        return AuthError(f"X rejected {cred} (401 Unauthorized): {_detail(exc)}")
    if isinstance(exc, tweepy.Forbidden):
        return AuthError(f"X refused access with {cred} (403 Forbidden): {_detail(exc)}")
    if isinstance(exc, tweepy.NotFound):
        return SourceError(f"not found on X (404): {_detail(exc)}", kind="not-found")
    if isinstance(exc, tweepy.TwitterServerError):
        return TransientError(f"X server error ({status})")
    return XError(f"X API error ({status}): {_detail(exc)}")


def _parse(fn, body):
    try:
        return fn(body)
    except MalformedResponse:
        raise
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MalformedResponse(f"unexpected X API response shape: {type(exc).__name__}: {exc}") from None


def _detail(exc: tweepy.HTTPException) -> str:
    try:
        body = exc.response.json()
    except ValueError:
        return exc.response.reason or "no detail"
    if isinstance(body, dict):
        return str(body.get("detail") or body.get("title") or body.get("reason") or "no detail")[:300]
    return "no detail"


def problem_reason(problem: dict) -> str:
    """A short operator-facing reason for one X API v2 problem object."""
    return str(source_error(problem))


def source_error(problem: dict) -> SourceError:
    """Classify a problem by its type suffix: X sends both api.twitter.com and api.x.com hosts."""
    ptype = str(problem.get("type") or "")
    detail = str(problem.get("detail") or problem.get("title") or "unknown problem")[:300]
    if ptype.endswith("/problems/not-authorized-for-resource"):
        return SourceError(f"protected on X and the reader account cannot see it: {detail}", kind="not-authorized")
    if ptype.endswith("/problems/resource-not-found"):
        if "suspend" in detail.lower():
            return SourceError(f"suspended on X: {detail}", kind="suspended")
        return SourceError(f"not found on X: {detail}", kind="not-found")
    return SourceError(f"X API problem: {detail}", kind="unavailable")
