"""Fingerprinted, pre-compressed static files, and the URLs templates use for them.

`flask --app feedapp assets` copies each file under static/ to
static/dist/NAME.HASH.EXT with .gz and .br siblings, and writes a manifest.
WhiteNoise serves those siblings to clients that accept them and marks the
hashed names immutable; a changed file gets a new name, so caches never serve
a stale one.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
from pathlib import Path

import brotli
from flask import Flask, current_app, url_for

DIST = "dist"
MANIFEST = "manifest.json"
TEXT_TYPES = {".css", ".js", ".svg", ".json", ".txt", ".html", ".webmanifest"}
HASHED_RE = re.compile(r"\.[0-9a-f]{12}\.[A-Za-z0-9]+$")


def _sources(static_dir: Path):
    for path in sorted(static_dir.rglob("*")):
        if path.is_file() and DIST not in path.relative_to(static_dir).parts:
            yield path, hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def _target(rel: Path, digest: str) -> str:
    """static/-relative name of the hashed copy: dist/icons/icon-192.<hash>.png."""
    return (Path(DIST) / rel.parent / f"{rel.stem}.{digest}{rel.suffix}").as_posix()


def is_current(static_dir: Path) -> bool:
    """True when static/dist/ was built from the static files as they are now."""
    try:
        manifest = json.loads((static_dir / DIST / MANIFEST).read_text())
    except (FileNotFoundError, ValueError):
        return False
    rels = ((p.relative_to(static_dir), d) for p, d in _sources(static_dir))
    return manifest == {rel.as_posix(): _target(rel, d) for rel, d in rels}


def build(static_dir: Path) -> dict[str, str]:
    """Write static/dist/ (hashed copies, .gz and .br) and its manifest; return the manifest."""
    out = static_dir / DIST
    if out.exists():
        shutil.rmtree(out)
    out.mkdir()
    manifest = {}
    for path, digest in _sources(static_dir):
        rel = path.relative_to(static_dir)
        data = path.read_bytes()
        target = static_dir / _target(rel, digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        if path.suffix in TEXT_TYPES:
            target.with_name(target.name + ".gz").write_bytes(gzip.compress(data, 9, mtime=0))
            target.with_name(target.name + ".br").write_bytes(brotli.compress(data, quality=11))
        manifest[rel.as_posix()] = _target(rel, digest)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


def is_immutable(_path: str, url: str) -> bool:
    """WhiteNoise test: hashed names never change content, so browsers may keep them forever."""
    return bool(HASHED_RE.search(url))


def init_app(app: Flask) -> None:
    """Expose asset_url() to templates."""
    app.jinja_env.globals["asset_url"] = asset_url


def asset_url(name: str) -> str:
    """The fingerprinted URL of a static file, or its plain URL when assets are not built."""
    manifest = current_app.extensions.get("feedapp.assets")
    if manifest is None:
        path = Path(current_app.static_folder) / DIST / MANIFEST
        try:
            manifest = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            current_app.logger.warning("static assets not built: run `flask --app feedapp assets`")
            manifest = {}
        current_app.extensions["feedapp.assets"] = manifest
    return url_for("static", filename=manifest.get(name, name))
