"""Reach (issue 12): must-read posts and their acknowledgements, anonymous readership counts, the one-question survey.

Nothing here records what one person read. Acknowledgements are per person by design (a reminder goes to
those who have not); the console shows them only as counts of groups of 5 or more. Survey answers are
tallies, kept apart from the "has answered" markers, so no row links an answer to anyone.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, BigInteger, Boolean, Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base, UTCDateTime, utcnow


class MustRead(Base):
    """A post every reader of its audience must see: top of their feed, pushed, acknowledged by staff.

    The audience is fixed when it is marked, from the post's source: office_id (None: the whole company)
    and staff_only (only signed-in staff, and only staff subscriptions, which are never shown its text
    on a lock screen). announced_at: when the worker queued its push (None: still to do; marking is one
    row, the fan-out to every subscription is the worker's job, never a web request's). remind_at: when the one reminder goes to staff who have not acknowledged it;
    reminded_at once it has been queued. ended_at: an editor took it off (or ends_at passed).
    """

    __tablename__ = "must_reads"

    post_id: Mapped[int] = mapped_column(ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True,
                                         autoincrement=False)
    office_id: Mapped[int | None] = mapped_column(ForeignKey("offices.id", ondelete="CASCADE"), index=True)
    staff_only: Mapped[bool] = mapped_column(Boolean, default=False)
    marked_by: Mapped[str] = mapped_column(String(50))
    marked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    announced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    remind_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    reminded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Acknowledgement(Base):
    """One staff member's "Got it" for a must-read post: once per person (the primary key)."""

    __tablename__ = "acknowledgements"

    post_id: Mapped[int] = mapped_column(ForeignKey("must_reads.post_id", ondelete="CASCADE"), primary_key=True,
                                         autoincrement=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True,
                                         autoincrement=False, index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReadCount(Base):
    """How often a post was seen in one office's feed on one UTC day: no reader, device or time of day kept.

    kind: "view" (at least half on screen for a second, from a page's beacon) or "open" (its own page).
    office_id: the office whose feed it was seen in, 0 for the company feed (no foreign key: a deleted
    office's counts fold into "other").
    """

    __tablename__ = "read_counts"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    post_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    office_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False, default=0)
    count: Mapped[int] = mapped_column(Integer, default=0)


class FeedReader(Base):
    """One feed client seen on one UTC day: a hash of its address and User-Agent with that day's salt.

    The salt lives only in memory shared for the day (a site setting, replaced the next day), so once the
    day is over no hash can be recomputed from an address; counting rows per day and feed gives distinct
    readers. feed: which feed ("company", "office:lyon", "private"), not which format.
    """

    __tablename__ = "feed_readers"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    feed: Mapped[str] = mapped_column(String(80), primary_key=True)
    client: Mapped[str] = mapped_column(String(32), primary_key=True)


class FeedSubscribers(Base):
    """The subscriber count an aggregator (Feedly, Inoreader, …) put in its User-Agent, per feed and day: the highest seen."""

    __tablename__ = "feed_subscribers"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    feed: Mapped[str] = mapped_column(String(80), primary_key=True)
    aggregator: Mapped[str] = mapped_column(String(60), primary_key=True)
    subscribers: Mapped[int] = mapped_column(Integer, default=0)


class Survey(Base):
    """The one-question survey: 2–5 options, for the company (office_id None) or one office; open until closed_at."""

    __tablename__ = "surveys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    question: Mapped[str] = mapped_column(Text)
    options: Mapped[list] = mapped_column(JSON, default=list)  # the options' texts, in order
    office_id: Mapped[int | None] = mapped_column(ForeignKey("offices.id", ondelete="CASCADE"), index=True)
    started_by: Mapped[str] = mapped_column(String(50))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_by: Mapped[str | None] = mapped_column(String(50))


class SurveyTally(Base):
    """How many answered a survey with one option: a count, so no row stands for one person's answer."""

    __tablename__ = "survey_tallies"

    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"), primary_key=True,
                                           autoincrement=False)
    option: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)  # index into options
    count: Mapped[int] = mapped_column(Integer, default=0)


class SurveyResponder(Base):
    """That someone has answered a survey (not what, not when): "user:ID", or "device:" + a hash of a cookie's token."""

    __tablename__ = "survey_responders"

    survey_id: Mapped[int] = mapped_column(ForeignKey("surveys.id", ondelete="CASCADE"), primary_key=True,
                                           autoincrement=False)
    responder: Mapped[str] = mapped_column(String(80), primary_key=True)
