"""Offices' quiet hours: no push arrives on a phone between quiet_start and quiet_end, local time. No Flask.

An office sets its IANA time zone and "HH:MM" start and end (feedapp.models.Office); one that sets none,
and a subscription with no office, falls back to FEEDAPP_TIME_ZONE and FEEDAPP_QUIET_HOURS. A push queued
in quiet hours waits (its outbox row's not_before) until the window's end, in that office's zone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

HHMM_RE = re.compile(r"^([01][0-9]|2[0-3]):([0-5][0-9])$")


class QuietHoursError(ValueError):
    """A time zone or quiet-hours value that cannot be used, in a sentence."""


@dataclass(frozen=True)
class QuietWindow:
    """Quiet hours in one time zone: from start (included) to end (excluded), crossing midnight when end < start."""

    zone: ZoneInfo
    start: time
    end: time

    def covers(self, wall: time) -> bool:
        """Whether a local wall-clock time is within the window."""
        if self.start < self.end:
            return self.start <= wall < self.end
        return wall >= self.start or wall < self.end


@lru_cache(maxsize=1)
def time_zone_names() -> frozenset[str]:
    """Every IANA zone name this machine knows (read once: it walks the tz database)."""
    return frozenset(available_timezones())


def parse_time_zone(name: str | None) -> ZoneInfo:
    """The zone called name ("Europe/Paris"), or QuietHoursError."""
    name = (name or "").strip()
    if name not in time_zone_names():
        raise QuietHoursError(f"{name!r} is not a time zone name: use an IANA name such as Europe/Paris or "
                              "America/New_York")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):  # listed but unreadable: a broken tz database
        raise QuietHoursError(f"time zone {name!r} cannot be read on this machine") from None


def parse_hhmm(text: str | None) -> time:
    """A wall-clock time from "HH:MM" (24-hour, 00:00 to 23:59), or QuietHoursError."""
    match = HHMM_RE.match((text or "").strip())
    if not match:
        raise QuietHoursError(f"{text!r} is not a time: write HH:MM on a 24-hour clock, such as 21:00 or 07:30")
    return time(int(match[1]), int(match[2]))


def parse_quiet_hours(text: str | None) -> tuple[time, time] | None:
    """(start, end) from "HH:MM-HH:MM" (FEEDAPP_QUIET_HOURS); None for an empty value; QuietHoursError otherwise."""
    if text is None or not str(text).strip():
        return None
    start, sep, end = str(text).strip().partition("-")
    if not sep:
        raise QuietHoursError(f"{text!r}: write the quiet hours as HH:MM-HH:MM, such as 21:00-07:00")
    return check_window(parse_hhmm(start), parse_hhmm(end))


def check_window(start: time, end: time) -> tuple[time, time]:
    """start and end, unless they are equal (a window of no time, or of the whole day: either way not meant)."""
    if start == end:
        raise QuietHoursError("quiet hours must start and end at different times")
    return start, end


@dataclass(frozen=True)
class QuietDefaults:
    """The site's fallbacks: FEEDAPP_TIME_ZONE and FEEDAPP_QUIET_HOURS, checked."""

    zone: ZoneInfo
    hours: tuple[time, time] | None

    @classmethod
    def from_config(cls, config) -> QuietDefaults:
        """From the settings; QuietHoursError naming the setting that is wrong."""
        try:
            zone = parse_time_zone(config.get("FEEDAPP_TIME_ZONE") or "UTC")
        except QuietHoursError as exc:
            raise QuietHoursError(f"FEEDAPP_TIME_ZONE: {exc}") from None
        try:
            hours = parse_quiet_hours(config.get("FEEDAPP_QUIET_HOURS"))
        except QuietHoursError as exc:
            raise QuietHoursError(f"FEEDAPP_QUIET_HOURS: {exc}") from None
        return cls(zone, hours)


def office_window(office, defaults: QuietDefaults) -> QuietWindow | None:
    """The quiet window of an office (None: a subscription with no office), or None when there are no quiet hours.

    Each part falls back on its own: an office with a time zone but no hours keeps the site's hours in its zone.
    A value stored before validation existed that no longer parses falls back too, rather than stopping pushes.
    """
    zone, hours = defaults.zone, defaults.hours
    if office is not None:
        try:
            if office.time_zone:
                zone = parse_time_zone(office.time_zone)
            if office.quiet_start and office.quiet_end:
                hours = check_window(parse_hhmm(office.quiet_start), parse_hhmm(office.quiet_end))
        except QuietHoursError:
            pass
    return QuietWindow(zone, *hours) if hours else None


def release_time(now: datetime, window: QuietWindow | None) -> datetime:
    """now when outside quiet hours, else the end of the window (aware UTC), honouring DST gaps and folds."""
    if window is None:
        return now
    local = now.astimezone(window.zone)
    wall = local.time().replace(tzinfo=None)
    if not window.covers(wall):
        return now
    day = local.date()
    if window.start > window.end and wall >= window.start:  # the evening part of a window crossing midnight
        day += timedelta(days=1)
    return _first_instant_at(day, window.end, window.zone, after=now)


def _first_instant_at(day: date, wall: time, zone: ZoneInfo, after: datetime) -> datetime:
    """The first UTC instant after `after` at which the clock in zone reads `wall` on `day` (or has passed it).

    Twice in a fall-back fold (PEP 495: fold=0 the first time): the first one still ahead. Never in a
    spring-forward gap: then the gap's end, the first instant whose clock reads later than wall.
    """
    target = datetime.combine(day, wall)
    candidates = sorted({datetime.combine(day, wall, zone).replace(fold=fold).astimezone(timezone.utc)
                         for fold in (0, 1)})
    real = [c for c in candidates if c.astimezone(zone).replace(tzinfo=None) == target]
    ahead = [c for c in real if c > after]
    if ahead:
        return ahead[0]
    if real:  # only possible in a fold both of whose instants are past: the window is over
        return after
    # A gap: the wall time never happens. Search the instants between the two readings for the first
    # whose clock is at or past it (the clock is monotonic there: one transition, a jump forward).
    low, high = candidates[0], candidates[-1]
    while high - low > timedelta(seconds=1):
        mid = low + (high - low) / 2
        if mid.astimezone(zone).replace(tzinfo=None) >= target:
            high = mid
        else:
            low = mid
    return max(high.replace(microsecond=0), after)
