"""Re-reading followed accounts' profiles (name, avatar, protected) once in a while."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from feedapp.queries import sources_for_profile_check
from feedapp.xapi import XClient, XError

from .report import CycleSummary
from .sources import apply_profile
from .store import record_reads

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
        before = client.requests_made
        try:
            lookup = client.lookup_ids([s.x_id for s in stale])
        except XError as exc:
            summary.notes.append(f"profile check skipped: {exc}")
            return
        finally:
            summary.lookup_requests += client.requests_made - before
        summary.lookup_user_reads += record_reads(session, "user", lookup.user_ids)
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
