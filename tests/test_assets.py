"""Fingerprinted, pre-compressed static files served by WhiteNoise."""

from __future__ import annotations

import gzip
import json
import re
import shutil

import brotli

from feedapp import ROOT, assets


def test_build_writes_hashed_copies_with_gzip_and_brotli(tmp_path):
    static = tmp_path / "static"
    shutil.copytree(ROOT / "static", static, ignore=shutil.ignore_patterns("dist"))
    manifest = assets.build(static)
    css = static / manifest["feed.css"]
    assert re.fullmatch(r"dist/feed\.[0-9a-f]{12}\.css", manifest["feed.css"])
    assert css.read_bytes() == (static / "feed.css").read_bytes()
    assert gzip.decompress(css.with_name(css.name + ".gz").read_bytes()) == css.read_bytes()
    assert brotli.decompress(css.with_name(css.name + ".br").read_bytes()) == css.read_bytes()
    assert not (static / manifest["icons/icon-192.png"]).with_suffix(".png.br").exists()  # PNGs are compressed already
    assert json.loads((static / "dist/manifest.json").read_text()) == manifest
    assert assets.is_current(static)
    (static / "feed.css").write_text("body{color:red}")
    assert not assets.is_current(static)
    assert assets.build(static)["feed.css"] != manifest["feed.css"]


def test_a_build_keeps_the_previous_ones_files_until_the_next(tmp_path):
    """A deploy: pages rendered by the old code still find their stylesheet while the new build goes live."""
    static = tmp_path / "static"
    shutil.copytree(ROOT / "static", static, ignore=shutil.ignore_patterns("dist"))
    first = assets.build(static)
    (static / "feed.css").write_text("body{color:red}")
    second = assets.build(static)
    for name in (first["feed.css"], second["feed.css"]):
        assert (static / name).exists() and (static / f"{name}.br").exists()
    (static / "feed.css").write_text("body{color:blue}")
    (static / "dist" / ".feed.css.99.tmp").write_text("left by a build that crashed")
    third = assets.build(static)
    assert not (static / first["feed.css"]).exists() and not (static / f"{first['feed.css']}.gz").exists()
    assert (static / second["feed.css"]).exists() and (static / third["feed.css"]).exists()
    assert not (static / "dist" / ".feed.css.99.tmp").exists()
    assert (static / third["icons/icon-192.png"]).exists()  # unchanged files are shared by every build
    assert json.loads((static / "dist/manifest.json").read_text()) == third


def test_pages_link_hashed_assets_served_immutable_and_precompressed(client):
    html = client.get("/").get_data(as_text=True)
    css_url = re.search(r'<link rel="stylesheet" href="(/static/dist/feed\.[0-9a-f]{12}\.css)">', html)[1]
    js_url = re.search(r'<script src="(/static/dist/feed\.[0-9a-f]{12}\.js)" defer>', html)[1]
    with client.get(css_url, headers={"Accept-Encoding": "br, gzip"}) as css:
        assert css.status_code == 200 and css.headers["Content-Encoding"] == "br"
        assert "immutable" in css.headers["Cache-Control"] and "max-age=315360000" in css.headers["Cache-Control"]
        assert brotli.decompress(css.data) == (ROOT / "static/feed.css").read_bytes()
    with client.get(js_url, headers={"Accept-Encoding": "gzip"}) as js:
        assert js.headers["Content-Encoding"] == "gzip"
    with client.get("/static/feed.css") as plain:  # unhashed names stay reachable, briefly cached
        assert "immutable" not in plain.headers["Cache-Control"]
