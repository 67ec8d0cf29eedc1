"""The one-question staff survey: start, answer, close, results, for the console, the CLI and the feed alike.

An answer is two writes in one transaction and nothing else: a "has answered" marker (survey, responder:
"user:ID" or "device:" + a hash of a cookie's token; no time, no option) and +1 on the option's count. No
row says who chose what, and nothing here logs it. Results show only once RESULTS_MIN answers are in, so a
small group's answers cannot be told apart. Nothing here commits; callers do. No Flask.
"""

from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass

from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from feedapp.accounts import audit
from feedapp.content_scopes import posts_scope
from feedapp.ingest.store import bump_content_version
from feedapp.models import Office, Survey, SurveyResponder, SurveyTally, utcnow
from feedapp.roles import Actor

QUESTION_MAX = 300
OPTION_MAX = 100
OPTIONS_MIN, OPTIONS_MAX = 2, 5
RESULTS_MIN = 5  # fewer answers than this and no count is shown anywhere
# Spreadsheets run a cell starting with one of these as a formula (OWASP, "CSV Injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class SurveyError(ValueError):
    """A survey action that cannot be done as asked; code says which case (the console words it), str() for the CLI."""

    def __init__(self, code: str, message: str, **params):
        super().__init__(message % params if params else message)
        self.code, self.params = code, params
        # codes: question | question_long | too_few | too_many | option_long | duplicate | already_open |
        # none_open | unknown | closed | bad_option


@dataclass(frozen=True)
class Results:
    """A survey's counts, or none (counts None) while fewer than RESULTS_MIN have answered."""

    survey: Survey
    total: int
    counts: tuple[tuple[str, int], ...] | None

    @property
    def shown(self) -> bool:
        """Enough answers to show the counts."""
        return self.counts is not None

    def rows(self) -> list[tuple[str, int, float]]:
        """(option, count, percentage of all answers) per option, in the survey's order; [] while hidden."""
        if self.counts is None:
            return []
        return [(text, count, round(100 * count / self.total, 1) if self.total else 0.0) for text, count in self.counts]


def _one_line(text: str) -> str:
    return " ".join((text or "").split())


def clean_question(question: str) -> str:
    """The question on one line, checked: not empty, at most QUESTION_MAX characters."""
    question = _one_line(question)
    if not question:
        raise SurveyError("question", "the question is empty")
    if len(question) > QUESTION_MAX:
        raise SurveyError("question_long", "the question is longer than %(max)d characters", max=QUESTION_MAX)
    return question


def clean_options(options: list[str]) -> list[str]:
    """The options, each on one line and trimmed (empty ones left out), checked: 2–5, distinct, not too long."""
    cleaned = [o for o in (_one_line(o) for o in options) if o]
    if len(cleaned) < OPTIONS_MIN:
        raise SurveyError("too_few", "give at least %(min)d options", min=OPTIONS_MIN)
    if len(cleaned) > OPTIONS_MAX:
        raise SurveyError("too_many", "give at most %(max)d options", max=OPTIONS_MAX)
    for option in cleaned:
        if len(option) > OPTION_MAX:
            raise SurveyError("option_long", "an option is longer than %(max)d characters", max=OPTION_MAX)
    if len({o.casefold() for o in cleaned}) < len(cleaned):
        raise SurveyError("duplicate", "two options are the same")
    return cleaned


def _audience(office_id: int | None):
    return Survey.office_id.is_(None) if office_id is None else Survey.office_id == office_id


def _scopes(office_id: int | None) -> set[str]:
    """The scopes of the pages that show this audience's card (company: every page; an office: its pages)."""
    return {posts_scope(office_id, False), posts_scope(office_id, True)}


def open_survey(session: Session, office_id: int | None) -> Survey | None:
    """The open survey of the company (None) or of one office."""
    return session.scalar(select(Survey).where(_audience(office_id), Survey.closed_at.is_(None))
                          .order_by(Survey.id.desc()).limit(1))


def open_surveys(session: Session) -> list[Survey]:
    """Every open survey: the company's first, then the offices' by when they started."""
    rows = session.scalars(select(Survey).where(Survey.closed_at.is_(None)).order_by(Survey.id))
    return sorted(rows, key=lambda s: s.office_id is not None)


def latest_survey(session: Session, office_id: int | None) -> Survey | None:
    """The audience's open survey, else its most recently started closed one."""
    return open_survey(session, office_id) or session.scalar(
        select(Survey).where(_audience(office_id)).order_by(Survey.id.desc()).limit(1))


def start(session: Session, actor: Actor, question: str, options: list[str], office: Office | None = None) -> Survey:
    """Open a survey for the company (office None) or one office: its card heads that audience's feed pages."""
    office_id = office.id if office is not None else None
    actor.check(office_id)
    question, options = clean_question(question), clean_options(options)
    # Bumping first takes the audience's scope row lock (PostgreSQL) or the write lock (SQLite): a concurrent
    # start for the same audience waits here, then sees this survey below, so never two open at once.
    bump_content_version(session, _scopes(office_id))
    if open_survey(session, office_id) is not None:
        where = office.slug if office is not None else "the company"
        raise SurveyError("already_open", "a survey is already open for %(where)s: close it first", where=where)
    survey = Survey(question=question, options=options, office_id=office_id, started_by=actor.name)
    session.add(survey)
    session.flush()
    # A row per option from the start: an answer is then one UPDATE count = count + 1, never an insert race.
    session.add_all(SurveyTally(survey_id=survey.id, option=i, count=0) for i in range(len(options)))
    audit(session, actor.name, "start_survey", str(survey.id), office.slug if office is not None else "company")
    return survey


def close(session: Session, actor: Actor, survey: Survey) -> Survey:
    """End a survey: its card leaves every page; its results stay."""
    actor.check(survey.office_id)
    if survey.closed_at is not None:
        raise SurveyError("closed", "survey %(id)d is already closed", id=survey.id)
    survey.closed_at, survey.closed_by = utcnow(), actor.name
    bump_content_version(session, _scopes(survey.office_id))
    audit(session, actor.name, "close_survey", str(survey.id))
    return survey


def close_open(session: Session, actor: Actor, office: Office | None = None) -> Survey:
    """Close the open survey of the company (office None) or of one office."""
    survey = open_survey(session, office.id if office is not None else None)
    if survey is None:
        where = office.slug if office is not None else "the company"
        raise SurveyError("none_open", "no survey is open for %(where)s", where=where)
    return close(session, actor, survey)


def user_responder(user_id: int) -> str:
    """The marker of a signed-in person."""
    return f"user:{int(user_id)}"


def device_responder(token: str) -> str:
    """The marker of an anonymous device: a hash of its cookie's random token (the token itself is never stored)."""
    return "device:" + hashlib.sha256(token.encode()).hexdigest()


def answer(session: Session, survey_id: int, option: int, responder: str) -> bool:
    """Count one answer: True, or False when this responder has answered already (nothing changes).

    The marker insert and the count's increment go in the caller's one transaction. The marker's primary
    key decides a race: on PostgreSQL a second insert of the same key waits for the first transaction and
    then does nothing (ON CONFLICT DO NOTHING), so the count moves once; the count itself is an atomic
    UPDATE count = count + 1, so concurrent answers of different people all add up.
    """
    survey = session.get(Survey, survey_id)
    if survey is None:
        raise SurveyError("unknown", "no survey %(id)d", id=survey_id)
    if survey.closed_at is not None:
        raise SurveyError("closed", "survey %(id)d is closed", id=survey_id)
    if not 0 <= option < len(survey.options):
        raise SurveyError("bad_option", "survey %(id)d has no such option", id=survey_id)
    table = SurveyResponder.__table__
    insert = _insert_for(session)
    # RETURNING, not rowcount: psycopg reports -1 for this statement; a row comes back only when inserted.
    marked = session.execute(insert(table).values(survey_id=survey_id, responder=responder)
                             .on_conflict_do_nothing(index_elements=[table.c.survey_id, table.c.responder])
                             .returning(table.c.survey_id)).first()
    if marked is None:
        return False
    # Every option's row is rewritten, the chosen one +1: on PostgreSQL each row version carries the id of the
    # transaction that wrote it (xmin), the same as the marker's, so touching the chosen row alone would tell
    # whose answer each option's latest count was.
    # Guarded on the survey still being open in the database, not in the copy read earlier: a close committed
    # meanwhile refuses the answer (the caller rolls the marker back) rather than counting it after the results.
    still_open = select(Survey.id).where(Survey.id == survey_id, Survey.closed_at.is_(None)).exists()
    counted = session.execute(update(SurveyTally).where(SurveyTally.survey_id == survey_id, still_open)
                              .values(count=SurveyTally.count + case((SurveyTally.option == option, 1), else_=0))
                              .execution_options(synchronize_session=False))
    if counted.rowcount == 0:
        raise SurveyError("closed", "survey %(id)d is closed", id=survey_id)
    return True


def _insert_for(session: Session):
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


def has_answered(session: Session, survey_id: int, responder: str) -> bool:
    """Whether this responder has answered that survey."""
    return session.get(SurveyResponder, (survey_id, responder)) is not None


def surveys_for_reader(session: Session, office_id: int | None, responder: str | None = None) -> list[Survey]:
    """The open surveys a feed page shows: the company's, then the office's; without those responder answered."""
    surveys = [s for s in (open_survey(session, None), open_survey(session, office_id) if office_id else None) if s]
    if responder is not None:
        surveys = [s for s in surveys if not has_answered(session, s.id, responder)]
    return surveys


def answer_count(session: Session, survey_id: int) -> int:
    """How many have answered (the sum of the counts)."""
    return session.scalar(select(func.coalesce(func.sum(SurveyTally.count), 0))
                          .where(SurveyTally.survey_id == survey_id)) or 0


def results(session: Session, survey: Survey) -> Results:
    """The survey's counts per option, hidden (None) while fewer than RESULTS_MIN have answered."""
    counts = dict(session.execute(select(SurveyTally.option, SurveyTally.count)
                                  .where(SurveyTally.survey_id == survey.id)).tuples().all())
    total = sum(counts.values())
    if total < RESULTS_MIN:
        return Results(survey, total, None)
    return Results(survey, total, tuple((text, counts.get(i, 0)) for i, text in enumerate(survey.options)))


def past_surveys(session: Session, actor: Actor, limit: int = 50) -> list[Survey]:
    """Closed surveys of the audiences this actor may edit, newest first."""
    rows = session.scalars(select(Survey).where(Survey.closed_at.is_not(None)).order_by(Survey.id.desc()).limit(limit))
    return [s for s in rows if actor.may_edit(s.office_id)]


def _cell(value) -> str:
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def results_csv(res: Results) -> str:
    """The results as CSV (RFC 4180: CRLF, quoted where needed): question, option, count, percentage.

    Cells starting with = + - @ get a leading ' so a spreadsheet shows them as text, never runs them.
    Hidden results (fewer than RESULTS_MIN answers) give the header only.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["question", "option", "count", "percentage"])
    for text, count, percent in res.rows():
        writer.writerow([_cell(res.survey.question), _cell(text), count, f"{percent:.1f}"])
    return out.getvalue()
