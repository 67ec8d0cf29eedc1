"""`push deliver [--loop]`: the Web Push outbox, sent by the worker (never from a web request)."""

from __future__ import annotations

import signal
import sys
import threading
import time

import click
from flask import current_app
from sqlalchemy.exc import SQLAlchemyError

from .base import Group, database_problem, sessions

PUSH_WAKE = 2.0  # seconds between looks at the outbox in --loop (one indexed query)

push_cli = Group("push", help="Web Push: deliver the outbox.")


@push_cli.command("deliver")
@click.option("--loop", is_flag=True, help="keep delivering, looking at the outbox every 2 seconds")
def deliver_command(loop: bool):
    """Send every push that is due, printing a summary line.

    404/410 from a push service remove the subscription; 429 and 5xx are retried after Retry-After
    (or a growing backoff). Several of these may run at once, and beside `poll --loop`, which also delivers.
    """
    push = current_app.extensions["feedapp.push"]
    if not push.enabled:
        raise click.ClickException(push.off_reason)
    check_announce_settings()
    factory = sessions()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if not loop:
        click.echo(drain_push(factory, quiet=False))
        return
    while True:
        try:
            line = drain_push(factory)
        except SQLAlchemyError as exc:
            line = None
            click.echo(f"push delivery failed, retrying: "
                       f"{database_problem(exc, current_app.config['FEEDAPP_DATABASE_URL'])}", err=True)
        if line:
            click.echo(line)
        time.sleep(PUSH_WAKE)


def check_announce_settings() -> None:
    """Stop the worker at start, saying why, when FEEDAPP_TIME_ZONE or FEEDAPP_QUIET_HOURS cannot be used."""
    from ..push.announce import AnnounceSettings
    from ..push.quiet import QuietHoursError

    try:
        AnnounceSettings.from_config(current_app.config)
    except QuietHoursError as exc:
        raise click.ClickException(str(exc)) from None


def drain_push(factory, quiet: bool = True) -> str | None:
    """Queue the must-read pushes and reminders that are due, then deliver what is due, when push is on.

    The summary lines (None when quiet and there was nothing to do). Each step starts with one cheap
    query, so the worker may call this every couple of seconds.
    """
    from ..models import utcnow
    from ..push import announce
    from ..push.outbox import DeliverySettings, deliver, has_due, hold_for_quiet_hours

    push = current_app.extensions["feedapp.push"]
    if not push.enabled:
        return None
    lines = []
    now = utcnow()
    if announce.has_due(factory, now):  # a must-read marked in the console reaches phones at the next wake
        settings = announce.AnnounceSettings.from_config(current_app.config)
        queued, reminders = announce.announce_due(factory, now, settings), announce.remind_due(factory, now, settings)
        if queued or reminders or not quiet:
            lines.append(f"must-read: {queued} pushes queued, {reminders} reminders queued")
    if quiet and not has_due(factory):
        return "\n".join(lines) or None
    settings = announce.AnnounceSettings.from_config(current_app.config)
    # A post that turned staff-only while its push waited (quiet hours) is not sent with its text.
    announce.withdraw_exposed(factory, settings)
    # A row that comes due inside its office's quiet hours (queued before they began, retried into them, or still
    # being sent as they begin) waits: checked before each batch.
    summary = deliver(factory, DeliverySettings.from_push(push),
                      before_batch=lambda now: hold_for_quiet_hours(factory, now, settings.quiet))
    for problem in summary.problems[:5]:
        click.echo(f"push failed: {problem}", err=True)
    lines.append(summary.line())
    return "\n".join(lines)
