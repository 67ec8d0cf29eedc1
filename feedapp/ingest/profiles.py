"""Re-reading accounts' profiles once in a while: followed ones (name, avatar, protected), and the
accounts nobody follows whose posts were reposted or quoted (protected or gone, which hides them)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from feedapp.content_scopes import SITE
from feedapp.queries import seen_accounts_for_check, sources_for_profile_check
from feedapp.xapi import Lookup, XClient, XError

from .report import CycleSummary
from .sources import apply_profile
from .store import bump_content_version, record_reads

log = logging.getLogger(__name__)


def refresh_profiles(sessions: sessionmaker[Session], client: XClient, every: int, now: datetime,
                     summary: CycleSummary) -> None:
    """Look up, by id and in batches of 100, sources not checked for `every` seconds.

    An account that turned protected becomes staff-only here, its stored posts
    with it (staff-only is read from the source at query time).
    """
    with sessions() as session:
        stale = sources_for_profile_check(session, now - timedelta(seconds=every))
        if not stale:
            return
        lookup = _lookup(session, client, [s.x_id for s in stale], summary, "profile check")
        if lookup is None:
            return
        by_id = {u.id: u for u in lookup.users}
        for source in stale:
            user = by_id.get(source.x_id)
            if user is None:
                # Reported here; the timeline read meets the same refusal and records it on the source.
                reason = lookup.problems.get(source.x_id, "X returned no such user")
                summary.notes.append(f"@{source.username}: profile check: {reason}")
                source.profile_checked_at = now
                continue
            if user.protected and not source.protected:
                log.warning("source=%s turned protected on X; now staff-only", source.username)
                summary.notes.append(f"@{source.username} is now protected on X: staff-only from now on")
            apply_profile(source, user)
        session.commit()


# Accounts nobody follows re-read per cycle at most (10 lookups); the rest wait for the next cycles.
SEEN_PER_CYCLE = 1000


def refresh_seen_accounts(sessions: sessionmaker[Session], client: XClient, every: int, now: datetime,
                          summary: CycleSummary) -> None:
    """Look up, by id, accounts nobody follows that stored posts repost or quote, unchecked for `every` seconds.

    Once protected on X, an account's posts stop arriving in anyone's includes, so waiting to
    see it again would keep its old quotes public for good. An account X no longer returns
    (suspended, deactivated) is hidden too: its text is no longer public on X either.
    """
    with sessions() as session:
        accounts = seen_accounts_for_check(session, now - timedelta(seconds=every), SEEN_PER_CYCLE)
        if not accounts:
            return
        lookup = _lookup(session, client, [a.id for a in accounts], summary, "check of reposted and quoted accounts")
        if lookup is None:
            return
        by_id = {u.id: u for u in lookup.users}
        changed = False
        for account in accounts:
            user = by_id.get(account.id)
            hidden = True if user is None else user.protected
            username = user.username[:50] if user is not None else account.username
            if (hidden, username) != (account.protected, account.username):
                changed = changed or hidden != account.protected
                log.info("account=%s protected=%s (checked by id)", username, hidden)
                account.protected, account.username, account.updated_at = hidden, username, now
            account.checked_at = now
        if changed:
            bump_content_version(session, [SITE])  # who may read what changed everywhere
        session.commit()


def _lookup(session: Session, client: XClient, ids: list[str], summary: CycleSummary, what: str) -> Lookup | None:
    """Users by id, with the requests and billed user reads counted; None (and a note) when X refuses."""
    before = client.requests_made
    try:
        lookup = client.lookup_ids(ids)
    except XError as exc:
        summary.notes.append(f"{what} skipped: {exc}")
        return None
    finally:
        summary.lookup_requests += client.requests_made - before
    summary.lookup_user_reads += record_reads(session, "user", lookup.user_ids)
    return lookup
