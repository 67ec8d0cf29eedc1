"""`db backup`: a consistent copy of the database while the app and the poller keep running.

SQLite: the online backup API (sqlite3.Connection.backup) in one step, so the
copy is one read transaction's snapshot; under WAL, writers go on meanwhile.
PostgreSQL: pg_dump does the same with a snapshot; we print the commands.
"""

from __future__ import annotations

import os
import shlex
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from .db import SQLITE_BUSY_MS


class BackupError(Exception):
    """The backup was not written; str() says why and what to do."""


@dataclass(frozen=True)
class BackupInfo:
    """What a finished backup holds."""

    path: Path
    size: int
    revision: str
    posts: int


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL; None for other engines."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    if not parsed.database or parsed.database == ":memory:":
        raise BackupError("an in-memory SQLite database cannot be backed up")
    return Path(parsed.database)


def backup_sqlite(db_file: Path, target: Path, *, overwrite: bool = False) -> BackupInfo:
    """Copy db_file to target (mode 0600) as one consistent snapshot, checked before it is put in place."""
    if not db_file.is_file():
        raise BackupError(f"cannot reach the database at {db_file}: no such file; check FEEDAPP_DATABASE_URL")
    if target.exists() and target.resolve() == db_file.resolve():
        raise BackupError("the backup path is the database itself; choose another path")
    if target.exists() and not overwrite:
        raise BackupError(f"{target} exists; choose another path, or pass --force to replace it")
    if not target.parent.is_dir():
        raise BackupError(f"no directory {target.parent}")
    tmp = target.with_name(f".{target.name}.{os.getpid()}.partial")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # backups hold password hashes
    try:
        info = _copy(db_file, tmp)
        if overwrite:
            os.replace(tmp, target)
        else:
            try:
                os.link(tmp, target)  # fails if target appeared meanwhile: never replace without --force
            except FileExistsError:
                raise BackupError(f"{target} exists; choose another path, or pass --force to replace it") from None
        return BackupInfo(target, target.stat().st_size, info[0], info[1])
    finally:
        tmp.unlink(missing_ok=True)


def _copy(db_file: Path, tmp: Path) -> tuple[str, int]:
    src = sqlite3.connect(db_file, timeout=SQLITE_BUSY_MS / 1000)
    try:
        try:
            revision = src.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.OperationalError:
            revision = None
        if revision is None:
            raise BackupError(f"the database at {db_file} has no feedapp schema, nothing to back up "
                              "(run `flask --app feedapp db upgrade` first to create one)")
        dst = sqlite3.connect(tmp)
        try:
            # pages=-1: the whole database in one step, inside one read transaction: a snapshot.
            src.backup(dst, pages=-1)
            dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
            check = dst.execute("PRAGMA integrity_check").fetchone()[0]
            if check != "ok":
                raise BackupError(f"the copy failed its integrity check ({check}); nothing was written")
            revision = dst.execute("SELECT version_num FROM alembic_version").fetchone()[0]
            posts = dst.execute("SELECT count(*) FROM posts").fetchone()[0]
        finally:
            dst.close()
    finally:
        src.close()
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())  # on disk before it takes the final name
    return revision, posts


def postgres_instructions(url: str, target: str) -> list[str]:
    """The pg_dump and pg_restore commands for this database, without its password."""
    parsed = make_url(url).set(drivername="postgresql")._replace(password=None)  # set() ignores None
    libpq = shlex.quote(parsed.render_as_string(hide_password=False))
    path = shlex.quote(target)
    return [
        "PostgreSQL is backed up with pg_dump, which copies one consistent snapshot while the app and poller run:",
        f"  pg_dump --format=custom --file={path} {libpq}",
        "Restore into an empty database (stop the web app and the poller first):",
        f"  pg_restore --no-owner --dbname={libpq} {path}",
        "(add --clean --if-exists to pg_restore to replace the tables of a database that has them; "
        "the password comes from PGPASSWORD or ~/.pgpass and is not printed here)",
    ]
