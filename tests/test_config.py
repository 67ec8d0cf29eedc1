"""Settings: documented, typed, layered."""

from __future__ import annotations

import re

import pytest

from feedapp import ROOT, create_app
from feedapp.config import SETTINGS


def test_every_setting_is_in_the_readme_table():
    readme = (ROOT / "README.md").read_text()
    rows = set(re.findall(r"^\| `(FEEDAPP_[A-Z0-9_]+)`", readme, flags=re.M))
    assert rows == {s.name for s in SETTINGS}


def test_contract_names_are_all_settings():
    for name in ("FEEDAPP_DATABASE_URL", "FEEDAPP_SECRET_KEY", "FEEDAPP_BASE_URL", "FEEDAPP_X_BEARER_TOKEN",
                 "FEEDAPP_X_CONSUMER_KEY", "FEEDAPP_X_CONSUMER_SECRET", "FEEDAPP_X_ACCESS_TOKEN",
                 "FEEDAPP_X_ACCESS_TOKEN_SECRET", "FEEDAPP_X_API_URL", "FEEDAPP_POLL_INTERVAL", "FEEDAPP_FEED_ITEMS"):
        assert name in {s.name for s in SETTINGS}


def test_layers_defaults_instance_file_environment_then_arguments(tmp_path, monkeypatch):
    (tmp_path / "config.py").write_text("FEEDAPP_POLL_INTERVAL = 120\nFEEDAPP_FEED_ITEMS = 20\nFEEDAPP_BACKFILL = 7\n")
    monkeypatch.setenv("FEEDAPP_FEED_ITEMS", "30")
    monkeypatch.setenv("FEEDAPP_BACKFILL", "9")
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path), "FEEDAPP_BACKFILL": 11})
    assert app.config["FEEDAPP_POLL_INTERVAL"] == 120  # instance file over default
    assert app.config["FEEDAPP_FEED_ITEMS"] == 30  # environment over instance file, parsed as int
    assert app.config["FEEDAPP_BACKFILL"] == 11  # arguments over environment
    assert app.config["FEEDAPP_POLL_CONCURRENCY"] == 8  # default
    assert app.config["FEEDAPP_DATABASE_URL"] == f"sqlite:///{tmp_path / 'feedapp.db'}"


def test_a_malformed_number_in_the_environment_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("FEEDAPP_POLL_INTERVAL", "five minutes")
    with pytest.raises(RuntimeError, match="FEEDAPP_POLL_INTERVAL='five minutes' is not valid"):
        create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path)})


def test_postgres_urls_use_psycopg3():
    from feedapp.db import normalize_url

    assert normalize_url("postgresql://u@127.0.0.1/db") == "postgresql+psycopg://u@127.0.0.1/db"
    assert normalize_url("postgres://u@127.0.0.1/db") == "postgresql+psycopg://u@127.0.0.1/db"
    assert normalize_url("sqlite:////tmp/x.db") == "sqlite:////tmp/x.db"


def test_healthz_answers_with_the_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json == {"status": "ok", "database": "ok"}


def test_healthz_is_503_when_the_database_is_down(tmp_path, closed_port):
    app = create_app({"TESTING": True, "INSTANCE_PATH": str(tmp_path),
                      "FEEDAPP_DATABASE_URL": f"postgresql+psycopg://nobody@127.0.0.1:{closed_port}/none"})
    response = app.test_client().get("/healthz")
    assert response.status_code == 503 and response.json["status"] == "error"

