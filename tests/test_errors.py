"""Unexpected errors: a traceback in tests and debugging, a calm page (and a log line) in production."""

from __future__ import annotations

import json
import logging

import pytest

from feedapp.web import pages


def broken(*args, **kwargs):
    raise RuntimeError("secret internals: table posts is on fire")


def test_with_testing_on_a_broken_view_fails_its_test_with_the_exception(app, monkeypatch):
    monkeypatch.setattr(pages, "posts_for_feed", broken)
    with pytest.raises(RuntimeError, match="table posts is on fire"):
        app.test_client().get("/")


def test_with_debug_on_a_broken_view_raises_too(make_app, monkeypatch):
    app = make_app(TESTING=False, DEBUG=True)
    monkeypatch.setattr(pages, "posts_for_feed", broken)
    with pytest.raises(RuntimeError):
        app.test_client().get("/")


@pytest.mark.parametrize("accept, path", [("text/html", "/"), ("application/json", "/"), ("*/*", "/feed.json")])
def test_in_production_a_broken_view_answers_500_without_its_internals_and_logs_them(
        make_app, monkeypatch, caplog, accept, path):
    app = make_app(PROPAGATE_EXCEPTIONS=False)
    monkeypatch.setattr(pages, "posts_for_feed", broken)
    monkeypatch.setattr("feedapp.web.feeds.posts_for_feed", broken)
    caplog.set_level(logging.ERROR)
    response = app.test_client().get(path, headers={"Accept": accept})
    assert response.status_code == 500
    assert response.headers["Cache-Control"] == "no-store"
    text = response.get_data(as_text=True)
    assert "on fire" not in text and "RuntimeError" not in text
    if response.mimetype == "application/json":
        assert json.loads(text) == {"error": "Internal Server Error",
                                    "message": "Something went wrong on our side. Please try again."}
    else:
        assert "Something went wrong on our side" in text
    assert "table posts is on fire" in caplog.text and "Traceback" in caplog.text


def test_an_explicit_500_keeps_its_message(make_app):
    app = make_app(PROPAGATE_EXCEPTIONS=False)

    @app.get("/teapot-down")
    def teapot_down():
        from flask import abort

        abort(500, description="The kettle is being serviced.")

    response = app.test_client().get("/teapot-down")
    assert response.status_code == 500 and "The kettle is being serviced." in response.get_data(as_text=True)


def test_a_json_error_never_echoes_characters_html_and_xml_forbid(app):
    response = app.test_client().get("/offices/a%01%C2%85b%EF%BF%BEc", headers={"Accept": "application/json"})
    assert response.status_code == 404
    message = json.loads(response.data)["message"]
    assert "a" in message and not any(c in message for c in "\x01\x85\ufffe")


def test_an_error_keeps_the_headers_its_status_needs(client):
    response = client.delete("/feed.rss")  # 405: RFC 9110 §15.5.6 requires Allow
    assert response.status_code == 405
    assert {"GET", "HEAD"} <= {m.strip() for m in response.headers["Allow"].split(",")}
    assert response.headers["Cache-Control"] == "no-store" and response.mimetype == "text/html"
