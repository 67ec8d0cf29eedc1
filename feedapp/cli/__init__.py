"""The `flask --app feedapp …` commands of CONTRACT.md, thin over ingest and queries.

Every command is a `Command`: a missing schema, an unreachable database, bad
input or an X API refusal ends in one line on stderr and exit status 1, never
a traceback. Commands therefore carry no try blocks of their own for those.
"""

from __future__ import annotations

from flask import Flask

from .db import assets_command, db_cli, demo_command
from .poll import poll_command
from .posts import posts_cli
from .push import push_cli
from .screens import screens_cli
from .sources import offices_cli, sources_cli
from .stats import stats_command
from .survey import survey_cli
from .users import users_cli


def init_app(app: Flask) -> None:
    """Register every command group on app."""
    for group in (db_cli, offices_cli, sources_cli, users_cli, posts_cli, push_cli, survey_cli, screens_cli):
        app.cli.add_command(group)
    for command in (poll_command, assets_command, demo_command, stats_command):
        app.cli.add_command(command)
