"""Real feed clients besides feedparser: Debian's sfeed (C) and the W3C Feed Validator (tools/validate_feed.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from feedapp import ROOT

SFEED_FIELDS = ("timestamp", "title", "link", "content", "content_type", "id", "author", "enclosure", "category")


def sfeed(data: bytes) -> list[dict[str, str]]:
    """The items sfeed(1) reads from an RSS or Atom document, one dict of its TSV fields each."""
    if shutil.which("sfeed") is None:
        pytest.fail("sfeed is not installed: `make browser` (part of `make test`) installs Debian's sfeed",
                    pytrace=False)
    out = subprocess.run(["sfeed"], input=data, capture_output=True, check=True, timeout=60).stdout
    return [dict(zip(SFEED_FIELDS, line.split("\t"))) for line in out.decode("utf-8").splitlines()]


def w3c_problems(tmp_path: Path, feeds: dict[str, bytes]) -> dict[str, list[dict]]:
    """The W3C Feed Validator's errors and warnings for each feed, by its URL (one validator process for all)."""
    args = []
    for i, (url, data) in enumerate(feeds.items()):
        path = tmp_path / f"feed-{i}.xml"
        path.write_bytes(data)
        args.append(f"{path}={url}")
    run = subprocess.run([sys.executable, str(ROOT / "tools" / "validate_feed.py"), "--json", *args],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode in (0, 1), run.stderr
    by_path = json.loads(run.stdout)
    return {url: by_path[arg.partition("=")[0]] for url, arg in zip(feeds, args)}
