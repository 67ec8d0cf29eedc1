"""`db upgrade|current|backup`, `assets` and `demo`: the schema, the static files, the demo company."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext

from .. import migrate
from ..config import ensure_secret_key
from ..push.keys import VAPID_KEY_FILE, ensure_vapid_keys
from .base import Command, Group, sessions

db_cli = Group("db", help="Database schema and backups.")


@db_cli.command("upgrade")
def upgrade_command():
    """Create or migrate the schema to the current version (safe on every start); writes the secret and VAPID keys once."""
    url = current_app.config["FEEDAPP_DATABASE_URL"]
    # The default SQLite file goes in the instance folder, which a fresh clone does not have yet.
    Path(current_app.instance_path).mkdir(parents=True, exist_ok=True)
    migrate.upgrade(url)
    if ensure_secret_key(current_app.instance_path):
        click.echo(f"wrote a new secret key to {current_app.instance_path}/secret_key")
    if ensure_vapid_keys(current_app.instance_path):
        click.echo(f"wrote a new Web Push (VAPID) key pair to {current_app.instance_path}/{VAPID_KEY_FILE}")
    click.echo(f"database at revision {migrate.current_revision(url)}")


@db_cli.command("current")
def current_command():
    """Print the schema revision the database is on."""
    click.echo(migrate.current_revision(current_app.config["FEEDAPP_DATABASE_URL"]) or "no schema")


@db_cli.command("backup")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="replace PATH if it exists")
def backup_command(path: Path, force: bool):
    """Write a consistent copy of the SQLite database to PATH while the app and poller run.

    On PostgreSQL, prints the pg_dump and pg_restore commands to use instead and exits 1.
    """
    from ..backup import backup_sqlite, postgres_instructions, sqlite_file

    url = current_app.config["FEEDAPP_DATABASE_URL"]
    db_file = sqlite_file(url)
    if db_file is None:
        for line in postgres_instructions(url, str(path)):
            click.echo(line, err=True)
        sys.exit(1)
    info = backup_sqlite(db_file, path, overwrite=force)
    click.echo(f"backed up {db_file} to {info.path}: {info.size / 1e6:.1f} MB, revision {info.revision}, "
               f"{info.posts} posts, integrity ok")


@click.command("assets", cls=Command)
@with_appcontext
def assets_command():
    """Build fingerprinted, pre-compressed static files into static/dist/."""
    from .. import assets

    manifest = assets.build(Path(current_app.static_folder))
    click.echo(f"built {len(manifest)} static files into static/{assets.DIST}/")


@click.command("demo", cls=Command)
@with_appcontext
def demo_command():
    """Load the bundled demo company through the normal normalize-and-store path."""
    from ..ingest.demo import load_demo

    with sessions()() as session:
        lines = load_demo(session)
    for line in lines:
        click.echo(line)
