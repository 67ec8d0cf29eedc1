"""The one-question survey: validation, who may start and close it, one answer per person or device, the
throttle, exact counts under concurrency, results from 5 answers, CSV, the card on the right pages, the
console, the CLI, and that no table links an answer to the person who gave it.
"""

from __future__ import annotations

import csv
import io
import re
import threading

import pytest
from sqlalchemy import func, inspect, select, text

from feedapp import survey as surveys
from feedapp.models import AuditEvent, Office, Survey, SurveyResponder, SurveyTally
from feedapp.roles import Actor, Forbidden

from .auth_helpers import PASSWORD, csrf, login, make_staff

QUESTION = "Would you follow one account for all company news?"
CARD_RE = re.compile(r'<section class="survey" id="survey-(\d+)"')


@pytest.fixture
def offices(runner):
    for slug, name in (("lyon", "Lyon"), ("columbus", "Columbus")):
        assert runner.invoke(args=["offices", "add", slug, name]).exit_code == 0


def office(sessions, slug: str) -> Office:
    with sessions() as s:
        row = s.scalar(select(Office).where(Office.slug == slug))
        s.expunge_all()
        return row


def start(runner, *options: str, office_slug: str | None = None, question: str = QUESTION) -> int:
    args = ["survey", "start", question, *[a for o in options for a in ("--option", o)]]
    if office_slug:
        args += ["--office", office_slug]
    result = runner.invoke(args=args)
    assert result.exit_code == 0, result.output
    return int(re.match(r"survey (\d+) open", result.output)[1])


def cards(client, url: str = "/") -> list[int]:
    response = client.get(url)
    assert response.status_code == 200
    return [int(i) for i in CARD_RE.findall(response.get_data(as_text=True))]


def answer(client, survey_id: int, option: int, next_url: str = "/"):
    """Answer as the card's script does: a token from /survey/token, then the form."""
    token = client.get("/survey/token").get_json()["csrfToken"]
    return client.post(f"/survey/{survey_id}/answer", data={"csrf_token": token, "option": option, "next": next_url})


def tallies(sessions, survey_id: int) -> list[int]:
    with sessions() as s:
        return list(s.scalars(select(SurveyTally.count).where(SurveyTally.survey_id == survey_id)
                              .order_by(SurveyTally.option)))


def staff_client(app, sessions, username: str, **kw):
    make_staff(sessions, username, **kw)
    client = app.test_client()
    assert login(client, username, PASSWORD).status_code == 303
    return client


# --- starting: validation and roles ---------------------------------------------------------------------------------

@pytest.mark.parametrize("options, code", [
    (["Yes"], "too_few"),
    (["Yes", "   "], "too_few"),
    (["A", "B", "C", "D", "E", "F"], "too_many"),
    (["Yes", "yes "], "duplicate"),
    (["Yes", "x" * (surveys.OPTION_MAX + 1)], "option_long"),
])
def test_start_refuses_bad_options(sessions, options, code):
    with sessions() as s:
        with pytest.raises(surveys.SurveyError) as caught:
            surveys.start(s, Actor.cli(), QUESTION, options)
        assert caught.value.code == code
        s.rollback()
        assert s.scalar(select(Survey.id)) is None


@pytest.mark.parametrize("question, code", [("  ", "question"), ("?" * (surveys.QUESTION_MAX + 1), "question_long")])
def test_start_refuses_bad_questions(sessions, question, code):
    with sessions() as s, pytest.raises(surveys.SurveyError) as caught:
        surveys.start(s, Actor.cli(), question, ["Yes", "No"])
    assert caught.value.code == code


def test_start_trims_and_one_open_survey_per_audience(sessions, offices, runner):
    lyon = office(sessions, "lyon")
    with sessions() as s:
        first = surveys.start(s, Actor.cli(), "  Which   one? ", [" Yes ", "No", "", "Maybe\n"])
        assert (first.question, first.options) == ("Which one?", ["Yes", "No", "Maybe"])
        with pytest.raises(surveys.SurveyError) as caught:
            surveys.start(s, Actor.cli(), "Again?", ["Yes", "No"])
        assert caught.value.code == "already_open"
        surveys.start(s, Actor.cli(), "Lyon?", ["Yes", "No"], lyon)  # another audience may have its own
        s.commit()
        assert tallies(sessions, first.id) == [0, 0, 0]
    result = runner.invoke(args=["survey", "start", "Again?", "--option", "a", "--option", "b"])
    assert result.exit_code == 1 and "already open" in result.output


@pytest.mark.parametrize("role, office_of_actor, target, allowed", [
    ("admin", None, None, True), ("admin", None, "lyon", True),
    ("editor", None, None, True), ("editor", None, "lyon", True),
    ("editor", "lyon", "lyon", True), ("editor", "lyon", None, False), ("editor", "lyon", "columbus", False),
    ("staff", None, None, False), ("staff", "lyon", "lyon", False),
])
def test_who_may_start_and_close(sessions, offices, role, office_of_actor, target, allowed):
    own = office(sessions, office_of_actor).id if office_of_actor else None
    where = office(sessions, target) if target else None
    who = Actor("someone", role, own)
    with sessions() as s:
        if not allowed:
            with pytest.raises(Forbidden):
                surveys.start(s, who, QUESTION, ["Yes", "No"], where)
            survey = surveys.start(s, Actor.cli(), QUESTION, ["Yes", "No"], where)
            with pytest.raises(Forbidden):
                surveys.close(s, who, survey)
            return
        survey = surveys.start(s, who, QUESTION, ["Yes", "No"], where)
        surveys.close(s, who, survey)
        s.commit()
        actions = s.scalars(select(AuditEvent.action).where(AuditEvent.target == str(survey.id))
                            .order_by(AuditEvent.id)).all()
        assert actions == ["start_survey", "close_survey"]


@pytest.mark.parametrize("args, message", [
    (["survey", "start", QUESTION, "--option", "Yes"], "give at least 2 options"),
    (["survey", "start", QUESTION, *["--option", "a", "--option", "b"] * 3], "give at most 5 options"),
    (["survey", "start", QUESTION, "--option", "Yes", "--option", " yes"], "two options are the same"),
    (["survey", "start", " ", "--option", "Yes", "--option", "No"], "the question is empty"),
    (["survey", "start", QUESTION, "--option", "Yes", "--option", "No", "--office", "nowhere"], "no office 'nowhere'"),
    (["survey", "close"], "no survey is open for the company"),
    (["survey", "close", "--office", "lyon"], "no survey is open for lyon"),
    (["survey", "results"], "no survey yet for the company"),
])
def test_cli_errors_are_one_line_and_exit_1(runner, offices, args, message):
    result = runner.invoke(args=args)
    assert result.exit_code == 1 and message in result.output and "Traceback" not in result.output


# --- answering ---------------------------------------------------------------------------------------------------------

def test_one_answer_per_signed_in_person_whatever_the_device(app, sessions):
    survey_id = _started(sessions)
    phone = staff_client(app, sessions, "ana")
    response = answer(phone, survey_id, 1)
    assert response.status_code == 303 and response.headers["Location"] == "/"
    assert "Thank you" in phone.get("/").get_data(as_text=True)
    laptop = app.test_client()
    assert login(laptop, "ana", PASSWORD).status_code == 303
    again = answer(laptop, survey_id, 0)
    assert again.status_code == 303
    assert "already answered" in laptop.get("/").get_data(as_text=True)
    assert tallies(sessions, survey_id) == [0, 1]
    with sessions() as s:
        assert s.scalars(select(SurveyResponder.responder)).all() == [f"user:{_uid(sessions, 'ana')}"]


def test_one_answer_per_device_for_anonymous_readers(app, client, sessions):
    survey_id = _started(sessions)
    assert answer(client, survey_id, 0).status_code == 303
    device = client.get_cookie("survey_device", path="/survey/")
    assert device is not None and device.http_only and device.same_site == "Lax"
    assert client.get_cookie("survey_done").value == str(survey_id)
    assert answer(client, survey_id, 1).status_code == 303  # the same device: refused, nothing counted
    assert tallies(sessions, survey_id) == [1, 0]
    with sessions() as s:
        (marker,) = s.scalars(select(SurveyResponder.responder)).all()
    assert marker.startswith("device:") and device.value not in marker  # stored only hashed
    other = app.test_client()
    assert answer(other, survey_id, 1).status_code == 303
    assert tallies(sessions, survey_id) == [1, 1]


def test_answers_without_a_token_only_after_confirming(client, sessions):
    survey_id = _started(sessions)
    page = client.post(f"/survey/{survey_id}/answer", data={"option": 1, "next": "/"})
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    assert tallies(sessions, survey_id) == [0, 0]
    html = page.get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)[1]
    assert 'name="option" value="1"' in html
    assert client.post(f"/survey/{survey_id}/answer",
                       data={"csrf_token": token, "option": 1, "next": "/"}).status_code == 303
    assert tallies(sessions, survey_id) == [0, 1]


@pytest.mark.parametrize("data, status", [({"option": 2}, 400), ({"option": "x"}, 400), ({}, 400)])
def test_bad_answers_are_refused(client, sessions, data, status):
    survey_id = _started(sessions)
    token = client.get("/survey/token").get_json()["csrfToken"]
    assert client.post(f"/survey/{survey_id}/answer", data={"csrf_token": token, **data}).status_code == status
    assert client.post("/survey/999/answer", data={"csrf_token": token, "option": 0}).status_code == 404
    assert tallies(sessions, survey_id) == [0, 0]


def test_answer_redirects_only_within_the_site(client, sessions):
    survey_id = _started(sessions)
    response = answer(client, survey_id, 0, next_url="https://evil.example/")
    assert response.status_code == 303 and response.headers["Location"] == "/"


def test_cleared_cookies_run_into_the_throttle(app, sessions, monkeypatch):
    from feedapp.web import survey as web_survey
    from feedapp.throttle import Limit

    monkeypatch.setattr(web_survey, "ANSWER_LIMIT", Limit("survey-answer-client", 3, 3600, failures_only=False))
    survey_id = _started(sessions)
    for _ in range(3):
        assert answer(app.test_client(), survey_id, 0).status_code == 303  # a fresh cookie jar each time
    refused = answer(app.test_client(), survey_id, 0)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert tallies(sessions, survey_id) == [3, 0]
    # Signed-in staff answer as themselves: no address limit stands between them and their one answer.
    assert answer(staff_client(app, sessions, "ben"), survey_id, 1).status_code == 303
    assert tallies(sessions, survey_id) == [3, 1]


def test_a_closed_survey_takes_no_answers(client, sessions, runner):
    survey_id = _started(sessions)
    token = client.get("/survey/token").get_json()["csrfToken"]
    assert runner.invoke(args=["survey", "close"]).exit_code == 0
    response = client.post(f"/survey/{survey_id}/answer", data={"csrf_token": token, "option": 0})
    assert response.status_code == 303
    assert tallies(sessions, survey_id) == [0, 0]


def test_an_answer_racing_a_close_is_refused(sessions):
    # The answering request read the survey open; the close commits before the answer is written.
    survey_id = _started(sessions)
    with sessions() as answering:
        read = answering.get(Survey, survey_id)  # held, as the view holds it
        assert read.closed_at is None
        with sessions() as closing:
            surveys.close(closing, Actor.cli(), closing.get(Survey, survey_id))
            closing.commit()
        with pytest.raises(surveys.SurveyError) as refused:
            surveys.answer(answering, survey_id, 0, surveys.device_responder("x" * 40))
        assert refused.value.code == "closed"
        answering.rollback()
    assert tallies(sessions, survey_id) == [0, 0]


def test_concurrent_answers_are_counted_exactly(app, sessions, db_url):
    # The race is PostgreSQL's (SQLite serialises writers), but SQLite must come out exact too.
    survey_id = _started(sessions)
    engine = sessions.kw["bind"]
    barrier = threading.Barrier(8)
    outcomes: list[bool] = []

    def one(n: int) -> None:
        with sessions() as s:
            barrier.wait()
            # Two threads per person: each person must count once, every person must count.
            outcomes.append(surveys.answer(s, survey_id, n % 2, f"user:{n // 2}"))
            s.commit()

    threads = [threading.Thread(target=one, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == [False] * 4 + [True] * 4
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM survey_responders")).scalar() == 4
    assert sum(tallies(sessions, survey_id)) == 4


# --- results and CSV ---------------------------------------------------------------------------------------------------

def test_results_hidden_under_five_and_shown_at_five(app, sessions, runner):
    survey_id = _started(sessions)
    for n in range(4):
        answer(app.test_client(), survey_id, n % 2)
    result = runner.invoke(args=["survey", "results"])
    assert result.exit_code == 1 and "fewer than 5" in result.output
    assert not re.search(r"\b[1-4]\b", result.output.replace(f"survey {survey_id}", ""))  # no partial number
    with sessions() as s:
        assert surveys.results(s, s.get(Survey, survey_id)).counts is None
    answer(app.test_client(), survey_id, 0)
    result = runner.invoke(args=["survey", "results"])
    assert result.exit_code == 0, result.output
    assert re.search(r"3\s+60\.0%\s+Yes", result.output) and re.search(r"2\s+40\.0%\s+No", result.output)
    # Closed: `results` then shows the latest closed survey.
    assert runner.invoke(args=["survey", "close"]).exit_code == 0
    assert "(closed)" in runner.invoke(args=["survey", "results"]).output


def test_csv_export_quotes_and_defuses_formulas(app, sessions, runner):
    with sessions() as s:
        survey = surveys.start(s, Actor.cli(), '=HYPERLINK("x") or, "quoted"?', ["+1", "@me", "-", "Plain, text"])
        s.commit()
        survey_id = survey.id
    for n in range(5):
        answer(app.test_client(), survey_id, 3 if n else 0)
    result = runner.invoke(args=["survey", "results", "--csv"])
    assert result.exit_code == 0, result.output
    raw = result.stdout_bytes.decode()
    assert raw.count("\r\n") == 5  # RFC 4180 line ends (the runner's .output folds them)
    rows = list(csv.reader(io.StringIO(raw, newline="")))
    assert rows[0] == ["question", "option", "count", "percentage"]
    assert rows[1] == ["'=HYPERLINK(\"x\") or, \"quoted\"?", "'+1", "1", "20.0"]
    assert [r[1] for r in rows[1:]] == ["'+1", "'@me", "'-", "Plain, text"]
    assert rows[4][2:] == ["4", "80.0"]
    assert all(not cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)


# --- the card on the feed --------------------------------------------------------------------------------------------

def test_the_card_shows_on_the_right_pages_until_closed(client, sessions, offices, runner):
    company = start(runner, "Yes", "No")
    lyon = start(runner, "Oui", "Non", office_slug="lyon")
    assert cards(client, "/") == [company]
    assert cards(client, "/offices/lyon") == [company, lyon]
    assert cards(client, "/offices/columbus") == [company]
    html = client.get("/offices/lyon").get_data(as_text=True)
    assert "csrf_token" in html and 'value=""' in html  # a shared page: no one's token baked in
    # Right after the page's intro paragraph, before anything else (pins, must-reads, posts).
    intro_end = html.index("</p>", html.index('<p class="scope">')) + len("</p>")
    assert re.match(r'\s*<script src="[^"]*survey[^"]*\.js" defer></script>\s*<section class="survey"', html[intro_end:])
    etag = client.get("/offices/lyon").headers["ETag"]
    assert runner.invoke(args=["survey", "close", "--office", "lyon"]).exit_code == 0
    response = client.get("/offices/lyon", headers={"If-None-Match": etag})
    assert response.status_code == 200 and cards(client, "/offices/lyon") == [company]
    assert runner.invoke(args=["survey", "close"]).exit_code == 0
    assert cards(client, "/") == [] and cards(client, "/offices/lyon") == []
    result = runner.invoke(args=["survey", "close"])
    assert result.exit_code == 1 and "no survey is open" in result.output


def test_answers_leave_the_shared_cached_page_alone(app, client, sessions, runner):
    from feedapp.web.http import render_cache

    survey_id = start(runner, "Yes", "No")
    first = client.get("/")
    renders = render_cache(app).renders
    for n in range(6):
        answer(app.test_client(), survey_id, n % 2)
    again = app.test_client().get("/")
    # The same page for everyone: no answer changes its ETag or makes it render again.
    assert again.headers["ETag"] == first.headers["ETag"] and render_cache(app).renders == renders
    assert again.data == first.data and cards(app.test_client()) == [survey_id]


def test_a_signed_in_reader_no_longer_gets_the_card_once_answered(app, sessions, runner):
    survey_id = start(runner, "Yes", "No")
    reader = staff_client(app, sessions, "cleo")
    assert cards(reader) == [survey_id]
    answer(reader, survey_id, 0)
    assert cards(reader) == []  # the thank-you page, rendered fresh
    assert reader.get_cookie("survey_done").value == str(survey_id)  # hides it in the cached copy too


# --- the console -------------------------------------------------------------------------------------------------------

def test_console_starts_shows_exports_and_closes(app, sessions, offices):
    editor = staff_client(app, sessions, "ed", role="editor")
    token = csrf(editor, "/admin/survey")
    bad = editor.post("/admin/survey", data={"csrf_token": token, "question": QUESTION, "options-0": "Yes",
                                            "office": ""})
    assert bad.status_code == 400 and "at least 2" in bad.get_data(as_text=True)
    ok = editor.post("/admin/survey", data={"csrf_token": token, "question": QUESTION, "options-0": "Yes",
                                           "options-1": "No", "office": ""})
    assert ok.status_code == 303
    survey_id = _open_id(sessions)
    page = editor.get("/admin/survey").get_data(as_text=True)
    assert "Fewer than 5 answers so far" in page
    assert editor.get(f"/admin/survey/{survey_id}/results.csv").status_code == 404
    for n in range(5):
        answer(app.test_client(), survey_id, n % 2)
    page = editor.get("/admin/survey").get_data(as_text=True)
    assert "<meter" in page and "3 answers" in page and "2 answers" in page
    download = editor.get(f"/admin/survey/{survey_id}/results.csv")
    assert download.status_code == 200 and download.headers["Content-Disposition"].startswith("attachment")
    assert download.mimetype == "text/csv"
    assert editor.post(f"/admin/survey/{survey_id}/close").status_code == 400  # no CSRF token
    assert editor.post(f"/admin/survey/{survey_id}/close", data={"csrf_token": token}).status_code == 303
    assert "Past surveys" in editor.get("/admin/survey").get_data(as_text=True)


def test_console_refuses_an_office_outside_the_editor(app, sessions, offices):
    columbus = office(sessions, "columbus")
    editor = staff_client(app, sessions, "lyon-ed", role="editor", office="lyon")
    page = editor.get("/admin/survey").get_data(as_text=True)
    assert "Columbus" not in page and "The whole company" not in page
    token = csrf(editor, "/admin/survey")
    data = {"csrf_token": token, "question": QUESTION, "options-0": "Yes", "options-1": "No"}
    assert editor.post("/admin/survey", data={**data, "office": str(columbus.id)}).status_code == 403
    assert editor.post("/admin/survey", data={**data, "office": ""}).status_code == 403
    with sessions() as s:
        company = surveys.start(s, Actor.cli(), QUESTION, ["Yes", "No"])
        s.commit()
        company_id = company.id
    assert editor.post(f"/admin/survey/{company_id}/close", data={"csrf_token": token}).status_code == 403
    assert editor.get(f"/admin/survey/{company_id}/results.csv").status_code == 403
    staff = staff_client(app, sessions, "plain")
    assert staff.get("/admin/survey").status_code in (302, 403)


@pytest.mark.parametrize("office_field", [str(2**31), str(2**64), "٣"])
def test_console_refuses_an_office_id_out_of_range(app, sessions, offices, office_field):
    admin = staff_client(app, sessions, "boss", role="admin")
    data = {"csrf_token": csrf(admin, "/admin/survey"), "question": QUESTION, "options-0": "Yes", "options-1": "No"}
    assert admin.post("/admin/survey", data={**data, "office": office_field}).status_code == 400
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(Survey)) == 0


# --- unlinkability ---------------------------------------------------------------------------------------------------

def test_no_table_links_an_answer_to_the_person(app, sessions, runner, caplog):
    survey_id = _started(sessions)
    people = {"ana": 0, "ben": 1, "cleo": 0, "dan": 0, "eve": 1}
    ids = {}
    for name, option in people.items():
        client = staff_client(app, sessions, name)
        ids[name] = _uid(sessions, name)
        answer(client, survey_id, option)
    answer(app.test_client(), survey_id, 1)  # and an anonymous device
    assert tallies(sessions, survey_id) == [3, 3]
    with sessions() as s:
        columns = {c["name"] for c in inspect(s.get_bind()).get_columns("survey_responders")}
        assert columns == {"survey_id", "responder"}  # no time, no option
        for table in inspect(s.get_bind()).get_table_names():
            for row in s.execute(text(f'SELECT * FROM "{table}"')).mappings():
                values = [str(v) for v in row.values() if v is not None]
                joined = " ".join(values)
                person = [n for n, uid in ids.items() if n in values or f"user:{uid}" in values]
                if not person or table in ("users", "sign_ins", "audit_events"):
                    # Those name people but hold nothing of the survey's answers (checked below for the audit).
                    continue
                # A row naming a person holds neither an option's text nor its index beside the survey.
                assert table == "survey_responders", (table, dict(row))
                assert set(row.keys()) == {"survey_id", "responder"}
                assert "Yes" not in joined and "No" not in joined
        audit = s.scalars(select(AuditEvent)).all()
        assert [(a.action, a.actor) for a in audit if "survey" in a.action] == [("start_survey", "cli")]
        assert all(name not in (a.target + a.detail) for a in audit for name in people)
    assert not [r for r in caplog.records if "user:" in r.getMessage() or "device:" in r.getMessage()]


def test_no_transaction_id_links_the_last_answer_of_an_option_to_its_person(app, sessions, db_url):
    # PostgreSQL stamps every row version with the transaction that wrote it (the xmin system column): if an
    # answer touched only its option's tally, that tally's xmin would equal the xmin of the responder marker
    # written with it, giving away the last answer of each option. (SQLite keeps no such column.)
    if not db_url.startswith("postgresql"):
        pytest.skip("xmin is PostgreSQL's")
    survey_id = _started(sessions)
    for name, option in (("ana", 0), ("ben", 1)):
        answer(staff_client(app, sessions, name), survey_id, option)
    with sessions() as s:
        markers = dict(s.execute(text("SELECT xmin::text, responder FROM survey_responders")).all())
        stamps = dict(s.execute(text("SELECT option, xmin::text FROM survey_tallies WHERE survey_id = :id"),
                                {"id": survey_id}).all())
    assert len(markers) == 2
    told = {option: markers.get(xid) for option, xid in stamps.items()}
    assert len(set(stamps.values())) == 1, told  # every option rewritten by each answer: none singled out


def test_an_anonymous_answer_leaves_its_address_in_no_table(client, sessions):
    survey_id = _started(sessions)
    token = client.get("/survey/token").get_json()["csrfToken"]
    assert client.post(f"/survey/{survey_id}/answer", data={"csrf_token": token, "option": 1},
                       environ_base={"REMOTE_ADDR": "203.0.113.79"}).status_code == 303
    assert tallies(sessions, survey_id) == [0, 1]
    with sessions() as s:
        for table in inspect(s.get_bind()).get_table_names():
            for row in s.execute(text(f'SELECT * FROM "{table}"')):
                assert "203.0.113.79" not in repr(tuple(row)), table


# --- helpers -----------------------------------------------------------------------------------------------------------

def _started(sessions) -> int:
    with sessions() as s:
        survey = surveys.start(s, Actor.cli(), QUESTION, ["Yes", "No"])
        s.commit()
        return survey.id


def _open_id(sessions) -> int:
    with sessions() as s:
        return surveys.open_survey(s, None).id


def _uid(sessions, name: str) -> int:
    from feedapp import accounts

    with sessions() as s:
        return accounts.user_by_username(s, name).id


# --- markup ------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the markup does not depend on the engine
def test_survey_pages_are_valid_html(app, client, sessions, offices, runner, tmp_path, db_url):
    import shutil

    from tests.test_html_valid import vnu_problems

    if shutil.which("java") is None:
        from tests.conftest import server_missing
        server_missing("no java: the Nu HTML validator needs it (`make browser` installs it)")
    past = start(runner, "Yes", "No", question='Old & "quoted" <question>?')
    for n in range(5):
        answer(app.test_client(), past, n % 2)
    assert runner.invoke(args=["survey", "close"]).exit_code == 0
    survey_id = start(runner, "Yes", "No", "Not sure")
    start(runner, "Oui", "Non", office_slug="lyon")
    for n in range(5):
        answer(app.test_client(), survey_id, n % 3)
    editor = staff_client(app, sessions, "ed", role="editor")
    pages = {"feed": client.get("/offices/lyon"),
             "confirm": app.test_client().post(f"/survey/{survey_id}/answer", data={"option": 1, "next": "/"}),
             "console": editor.get("/admin/survey")}
    files = []
    for name, response in pages.items():
        assert response.status_code == 200, name
        path = tmp_path / f"{name}.html"
        path.write_bytes(response.data)
        files.append(str(path))
    assert "&lt;question&gt;" in pages["console"].get_data(as_text=True)  # escaped
    problems = vnu_problems(files)
    assert problems == [], "\n".join(problems)
