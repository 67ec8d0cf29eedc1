"""`poll [--loop] [--all]`: the poller, holding the lease while it works."""

from __future__ import annotations

import signal
import sys
import threading
import time

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy.exc import SQLAlchemyError

from .base import Command, client, database_problem, sessions
from .push import check_announce_settings, drain_push

REQUEST_WAKE = 2.0  # seconds: how soon `poll --loop` notices a request the console queued


@click.command("poll", cls=Command)
@with_appcontext
@click.option("--loop", is_flag=True, help="poll forever, every FEEDAPP_POLL_INTERVAL seconds")
@click.option("--all", "everything", is_flag=True, help="poll every source that may be called now, due or not")
def poll_command(loop: bool, everything: bool):
    """Run a poll cycle of every due source, printing a line per source.

    Holds the poller lease (renewed while it works) so only one poller runs;
    sources behind a known X rate limit are not called until its reset.
    """
    from ..ingest import lease
    from ..ingest.poll import PollSettings, poll_cycle
    from ..models import utcnow

    if current_app.extensions["feedapp.push"].enabled:
        check_announce_settings()  # quiet hours the worker could not apply: said now, not at the first must-read
    x_client = client()
    settings = PollSettings.from_config(current_app.config)
    factory = sessions()
    keeper = lease.LeaseKeeper(factory, lease.holder_name(), lease.TTL)
    stream = _stream_worker(factory, x_client, settings, keeper.lost) if loop else None
    if threading.current_thread() is threading.main_thread():
        # systemd and process managers stop with SIGTERM: exit through `finally` to free the lease.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            # The cycle's clock is read with `started`: each source's next check counts from it, and the next
            # cycle starts `interval` after it, so a slow first lease write cannot make sources miss a cycle.
            started, cycle_now = time.monotonic(), utcnow()
            busy = _hold(keeper, loop)
            if busy is not None:
                if stream is not None and stream.running:
                    stream.stop()  # the lease is another poller's: so is the stream
                if not loop:
                    raise click.ClickException(f"not polling: {busy}")
                click.echo(f"waiting: {busy}")
            else:
                if stream is not None and not stream.running:
                    stream.start()  # the stream is held with the lease: one process reads it
                try:
                    summary = poll_cycle(factory, x_client, settings, everything=everything, stop=keeper.lost,
                                         now=cycle_now, coverage=stream.coverage if stream is not None else None)
                except SQLAlchemyError as exc:
                    if not loop:
                        raise
                    click.echo(f"cycle failed, retrying next interval: "
                               f"{database_problem(exc, current_app.config['FEEDAPP_DATABASE_URL'])}", err=True)
                else:
                    summary.price_post = float(current_app.config["FEEDAPP_X_PRICE_POST_READ"])
                    summary.price_user = float(current_app.config["FEEDAPP_X_PRICE_USER_READ"])
                    for line in summary.lines():
                        click.echo(line)
            if not loop:
                return
            _wait(keeper, factory, x_client, settings, started + max(1.0, settings.interval), stream)
    finally:
        if stream is not None and stream.running:
            stream.stop()
        keeper.release()
        x_client.close()


def _stream_worker(factory, x_client, settings, lost):
    """The filtered stream worker when FEEDAPP_STREAM is on and a bearer token is set; else None, saying why
    in the status row (which `sources list` and the console read)."""
    from ..ingest import stream_status
    from ..ingest.stream import StreamSettings, StreamWorker

    config = current_app.config
    why = None
    if not x_client.settings.has_app_auth:
        why = "the filtered stream needs FEEDAPP_X_BEARER_TOKEN"
    elif not config["FEEDAPP_STREAM"]:
        why = "FEEDAPP_STREAM=off"
    if why is None:
        return StreamWorker(factory, x_client.settings, settings, StreamSettings.from_config(config), lost=lost)
    try:
        with factory() as session:
            stream_status.write_status(session, stream_status.OFF, why)
            session.commit()
    except SQLAlchemyError:
        pass  # the loop reports the database itself
    click.echo(f"filtered stream off ({why}): polling every source")
    return None


def _wait(keeper, factory, x_client, settings, until: float, stream=None) -> None:
    """Sleep until the next cycle, waking every REQUEST_WAKE seconds to serve the console's requests at once
    and to deliver the push outbox.

    Only the console's requests and pushes are served early (one cheap indexed query each per wake); sources
    keep their schedule.
    """
    from ..ingest.requests import has_pending, serve_requests

    while (left := until - time.monotonic()) > 0:
        time.sleep(min(REQUEST_WAKE, left))
        if not keeper.held:
            if stream is not None and stream.running:
                stream.stop()  # another poller took the lease: it holds the stream now
            continue
        try:
            if has_pending(factory):
                serve_requests(factory, x_client, settings, echo=click.echo)
        except SQLAlchemyError as exc:
            click.echo(f"console requests failed, retrying: "
                       f"{database_problem(exc, current_app.config['FEEDAPP_DATABASE_URL'])}", err=True)
        try:
            line = drain_push(factory)  # the Web Push outbox: a must-read reaches phones within seconds
        except SQLAlchemyError as exc:
            line = None
            click.echo(f"push delivery failed, retrying: "
                       f"{database_problem(exc, current_app.config['FEEDAPP_DATABASE_URL'])}", err=True)
        if line:
            click.echo(line)


def _hold(keeper, loop: bool):
    """Take or keep the lease; in --loop a database outage is waited out, not fatal."""
    try:
        return keeper.hold()
    except SQLAlchemyError as exc:
        if not loop:
            raise
        return database_problem(exc, current_app.config["FEEDAPP_DATABASE_URL"])
