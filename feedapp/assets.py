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
import os
import re
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
    """Write static/dist/ (hashed copies, .gz and .br) and its manifest; return the manifest.

    Additive, for deploys: files of the previous build stay until the next one, so a page
    rendered by a node still running the old code (or kept by a service worker) finds its
    stylesheet while the new build goes live, and the manifest is replaced in one rename,
    so a reader never sees half of it.
    """
    out = static_dir / DIST
    out.mkdir(exist_ok=True)
    previous = _manifest(out)
    manifest = {}
    for path, digest in _sources(static_dir):
        rel = path.relative_to(static_dir)
        data = path.read_bytes()
        target = static_dir / _target(rel, digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        _write(target, data)
        if path.suffix in TEXT_TYPES:
            _write(target.with_name(target.name + ".gz"), gzip.compress(data, 9, mtime=0))
            _write(target.with_name(target.name + ".br"), brotli.compress(data, quality=11))
        manifest[rel.as_posix()] = _target(rel, digest)
    _write(out / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())
    _prune(static_dir, set(manifest.values()) | set(previous.values()))
    return manifest


def _manifest(out: Path) -> dict[str, str]:
    try:
        return json.loads((out / MANIFEST).read_text())
    except (FileNotFoundError, ValueError):
        return {}


def _write(path: Path, data: bytes) -> None:
    """Write a whole file under its name in one rename (a concurrent reader sees old or new)."""
    aside = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    aside.write_bytes(data)
    os.replace(aside, path)


def _prune(static_dir: Path, keep: set[str]) -> None:
    """Remove hashed files (and their .gz/.br) of builds older than the kept ones."""
    out = static_dir / DIST
    for path in sorted(out.rglob("*"), reverse=True):  # files before their folders
        rel = path.relative_to(static_dir).as_posix()
        if path.is_dir():
            if not any(path.iterdir()):
                path.rmdir()
        elif rel.removesuffix(".gz").removesuffix(".br") not in keep and path.name != MANIFEST:
            path.unlink()


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
