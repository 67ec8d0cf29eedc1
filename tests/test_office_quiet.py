"""Offices' time zone and push quiet hours: the console's office page and `offices set-quiet`."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from feedapp.models import AuditEvent, Office
from tests.test_admin import csrf, make_user, signed_in


@pytest.fixture
def lyon(runner, sessions) -> int:
    assert runner.invoke(args=["offices", "add", "lyon", "Lyon Hub"]).exit_code == 0
    with sessions() as s:
        return s.scalar(select(Office.id).where(Office.slug == "lyon"))


def quiet(sessions, office_id):
    with sessions() as s:
        office = s.get(Office, office_id)
        return office.time_zone, office.quiet_start, office.quiet_end


def save(client, office_id, **fields):
    page = client.get(f"/admin/offices/{office_id}").get_data(as_text=True)
    data = {"csrf_token": csrf(page), "name": "Lyon Hub", "language": "", "time_zone": "", "quiet_start": "",
            "quiet_end": ""}
    data.update(fields)
    return client.post(f"/admin/offices/{office_id}", data=data)


def test_an_office_editor_sets_its_time_zone_and_quiet_hours_in_the_console(client, sessions, lyon):
    make_user(sessions, "lea", office="lyon", role="editor")
    signed_in(client, "lea")
    page = client.get(f"/admin/offices/{lyon}").get_data(as_text=True)
    assert 'name="time_zone"' in page and 'placeholder="21:00"' in page and "UTC" in page  # the site's zone as the hint
    response = save(client, lyon, time_zone="Europe/Paris", quiet_start="21:00", quiet_end="07:00")
    assert response.status_code == 303
    assert quiet(sessions, lyon) == ("Europe/Paris", "21:00", "07:00")
    page = client.get(f"/admin/offices/{lyon}").get_data(as_text=True)
    assert 'value="Europe/Paris"' in page and 'value="21:00"' in page and 'value="07:00"' in page
    with sessions() as s:
        assert s.scalar(select(AuditEvent.detail).where(AuditEvent.action == "set_office_quiet_hours")) == \
            "21:00-07:00 Europe/Paris"
    assert save(client, lyon).status_code == 303  # emptied: the site's settings again
    assert quiet(sessions, lyon) == (None, None, None)


@pytest.mark.parametrize(("fields", "message"), [
    ({"time_zone": "Europe/Lyon"}, "Use a time zone name such as Europe/Paris"),
    ({"time_zone": "Paris"}, "Use a time zone name such as Europe/Paris"),
    ({"quiet_start": "9pm", "quiet_end": "07:00"}, "Use a time such as 21:00"),
    ({"quiet_start": "21:00"}, "Give both the start and the end, or neither."),
    ({"quiet_start": "21:00", "quiet_end": "21:00"}, "must end at another time"),
])
def test_bad_quiet_hours_are_refused_with_a_reason_and_nothing_changes(client, sessions, lyon, fields, message):
    make_user(sessions, "boss", admin=True)
    signed_in(client, "boss")
    response = save(client, lyon, **fields)
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    assert quiet(sessions, lyon) == (None, None, None)


def test_the_form_reads_in_french(client, sessions, lyon):
    make_user(sessions, "boss", admin=True)
    signed_in(client, "boss")
    client.set_cookie("lang", "fr")
    response = save(client, lyon, time_zone="Lyon")
    page = response.get_data(as_text=True)
    assert "Fuseau horaire" in page and "Début des heures calmes" in page
    assert "Indiquez un fuseau horaire comme Europe/Paris" in page


def test_offices_set_quiet_on_the_command_line(runner, sessions, lyon):
    result = runner.invoke(args=["offices", "set-quiet", "lyon", "21:00", "07:00", "--time-zone", "Europe/Paris"])
    assert result.exit_code == 0, result.output
    assert "office lyon: 21:00-07:00, time zone Europe/Paris" in result.output
    assert "quiet 21:00-07:00 Europe/Paris" in runner.invoke(args=["offices", "list"]).output
    result = runner.invoke(args=["offices", "set-quiet", "lyon"])  # the site's hours, the zone kept
    assert result.exit_code == 0 and quiet(sessions, lyon) == ("Europe/Paris", None, None)
    for args, message in ((["lyon", "25:00", "07:00"], "HH:MM"), (["lyon", "21:00"], "both START and END"),
                          (["lyon", "--time-zone", "Mars/Olympus"], "IANA"), (["nowhere"], "no office")):
        result = runner.invoke(args=["offices", "set-quiet", *args])
        assert result.exit_code != 0 and message in result.output, result.output
    assert quiet(sessions, lyon) == ("Europe/Paris", None, None)
