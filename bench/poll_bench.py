"""Poll-cycle benchmark: 1,000 sources against the fake X API with 50 ms per response.

Measures, in one run, on a fresh database (setup is not timed and runs at 0 ms latency):
  1. backfill  - first cycle, every source has --posts posts (default 20)
  2. new posts - a cycle after --new new posts on each source (default 3)
  3. idle      - a cycle with nothing new (one timeline call, no post reads, per source)
  4. serial    - the same idle cycle with concurrency 1, for reference
For each it prints wall time, the poller's CPU time (all its threads), API calls, the floor
(calls x latency / concurrency: the time the calls alone take when `concurrency` of them
always wait at once) and wall / floor. os.getloadavg() is printed too: on a busy machine the
poller waits for a CPU as well as for X.
Exits 1 if any source failed or was skipped.

The fake X API runs in a process of its own (as X does not share the poller's CPU and GIL);
--fake-in-process puts it back in the poller's process, to see what that costs.
Run from anywhere (only 127.0.0.1 is contacted):
  .venv/bin/python bench/poll_bench.py [--sources 1000] [--posts 20] [--concurrency 8] [--latency 0.05]
  .venv/bin/python bench/poll_bench.py --postgres        # throwaway db on $FEEDAPP_TEST_POSTGRES (created, dropped)
  .venv/bin/python bench/poll_bench.py --database-url URL  # an existing, empty database
"""

from __future__ import annotations

import argparse
import dataclasses
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, func, select, text  # noqa: E402

from feedapp import create_app  # noqa: E402
from feedapp.db import sessions as app_sessions  # noqa: E402
from feedapp.ingest.poll import PollSettings, poll_cycle  # noqa: E402
from feedapp.ingest.ratelimits import DbRateLimits  # noqa: E402
from feedapp.ingest.sources import add_sources  # noqa: E402
from feedapp.migrate import upgrade  # noqa: E402
from feedapp.models import Post  # noqa: E402
from feedapp.xapi import XClient, XSettings  # noqa: E402
from tests.fakex import FakeX  # noqa: E402

PG_ADMIN_URL = os.environ.get("FEEDAPP_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
CREDENTIALS = ("bearer_token", "consumer_key", "consumer_secret", "access_token", "access_token_secret")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sources", type=int, default=1000)
    p.add_argument("--posts", type=int, default=20, help="posts per source before the first cycle")
    p.add_argument("--new", type=int, default=3, help="new posts per source before the second cycle")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--latency", type=float, default=0.05, help="seconds added to every fake X response")
    p.add_argument("--fake-in-process", action="store_true", help="run the fake X API inside the poller's process")
    db = p.add_mutually_exclusive_group()
    db.add_argument("--database-url", help="an existing, empty database (default: SQLite in a temp dir)")
    db.add_argument("--postgres", action="store_true", help=f"create and drop a throwaway db on {PG_ADMIN_URL}")
    return p.parse_args()


def names_for(n: int) -> list[str]:
    return [f"bench_src_{i:04d}" for i in range(n)]


def seed(fake: FakeX, names: list[str], posts: int) -> None:
    fake.rate_limit = 1_000_000
    for name in names:
        fake.add_user(name)
        for n in range(posts):
            fake.post(name, f"{name} post {n} https://example.com/{name}/{n} #bench")


class LocalFake:
    """The fake in this process, behind the small interface the benchmark uses."""

    def __init__(self, names, posts):
        self.fake = FakeX().start()
        seed(self.fake, names, posts)
        self.url = self.fake.url
        self.credentials = {k: getattr(self.fake, k) for k in CREDENTIALS}

    def call(self, command, *args):
        return _serve_command(self.fake, command, args)

    def stop(self):
        self.fake.stop()


class FakeProcess:
    """The fake in a child process, driven over a pipe."""

    def __init__(self, names, posts):
        ctx = multiprocessing.get_context("spawn")  # a clean interpreter: no threads or engines inherited
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_fake_main, args=(child, names, posts), daemon=True)
        self.proc.start()
        self.url, self.credentials = self.conn.recv()

    def call(self, command, *args):
        self.conn.send((command, args))
        return self.conn.recv()

    def stop(self):
        self.call("stop")
        self.proc.join(10)


def _fake_main(conn, names, posts):
    fake = FakeX().start()
    seed(fake, names, posts)
    conn.send((fake.url, {k: getattr(fake, k) for k in CREDENTIALS}))
    while True:
        command, args = conn.recv()
        conn.send(_serve_command(fake, command, args))
        if command == "stop":
            fake.stop()
            return


def _serve_command(fake: FakeX, command: str, args: tuple):
    if command == "latency":
        fake.latency = args[0]
    elif command == "reset":
        fake.reset_requests()
    elif command == "counts":
        return len(fake.requests), sum(1 for r in fake.requests if r.path.endswith("/tweets"))
    elif command == "post_new":
        names, n = args
        for name in names:
            for i in range(n):
                fake.post(name, f"{name} fresh {i}")
    return None


def run(args, db_url: str, instance: str) -> int:
    upgrade(db_url)
    names = names_for(args.sources)
    fake = (LocalFake if args.fake_in_process else FakeProcess)(names, args.posts)
    try:
        creds = {f"FEEDAPP_X_{k.upper()}": v for k, v in fake.credentials.items()}
        app = create_app({"TESTING": True, "INSTANCE_PATH": instance, "FEEDAPP_DATABASE_URL": db_url,
                          "FEEDAPP_POLL_CONCURRENCY": args.concurrency, "FEEDAPP_X_API_URL": fake.url,
                          "FEEDAPP_X_TIMEOUT": 10.0, **creds})
        sessions = app_sessions(app)
        client = XClient(XSettings.from_config(app.config), DbRateLimits(sessions))  # as `poll` builds it
        settings = PollSettings.from_config(app.config)
        with sessions() as session:  # setup, not measured: 0 ms latency
            report = add_sources(session, client, names)  # 100 per look-up
            session.commit()
            assert not report.refused, report.refused[:3]

        fake.call("latency", args.latency)
        rows, failures = [], []

        def cycle(label, poll_settings):
            fake.call("reset")
            t0, cpu0 = time.perf_counter(), time.process_time()
            s = poll_cycle(sessions, client, poll_settings, everything=True)
            wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
            http, calls = fake.call("counts")
            failures.extend(f"[{label}] {r.line()}" for r in s.results if not r.ok)
            floor = http * args.latency / poll_settings.concurrency
            rows.append(dict(label=label, conc=poll_settings.concurrency, wall=wall, cpu=cpu, calls=calls, http=http,
                             new=s.new_posts, post_reads=s.post_reads, user_reads=s.user_reads, cost=s.cost,
                             floor=floor, ratio=wall / floor if floor else float("nan"), failed=s.failed))
            return rows[-1]

        cycle("backfill", settings)
        with sessions() as session:
            stored = session.scalar(select(func.count()).select_from(Post))  # after backfill only
        fake.call("post_new", names, args.new)  # in the fake's process: no HTTP, no latency
        newposts = cycle("new_posts", settings)
        idle = cycle("idle", settings)
        serial = cycle("idle_serial", dataclasses.replace(settings, concurrency=1))
        client.close()
        sessions.kw["bind"].dispose()
    finally:
        fake.stop()

    where = "in the poller's process" if args.fake_in_process else "in its own process"
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"\n{args.sources} sources, {args.latency * 1000:.0f} ms latency per response, "
          f"database {db_url.split(':', 1)[0]}, fake X API {where}; {os.cpu_count()} CPUs, load average {load}\n")
    cols = [("label", "cycle", "<12"), ("conc", "conc", ">5"), ("wall", "wall s", ">9.2f"), ("cpu", "cpu s", ">8.2f"),
            ("http", "calls", ">7"), ("floor", "floor s", ">9.2f"), ("ratio", "wall/floor", ">11.2f"),
            ("new", "new", ">7"), ("post_reads", "post rd", ">9"), ("user_reads", "user rd", ">9"),
            ("cost", "cost $", ">9.3f"), ("failed", "failed", ">8")]
    head = "".join(f"{title:{fmt.split('.')[0]}}" for _, title, fmt in cols)
    print(head + "\n" + "-" * len(head))
    print("\n".join("".join(f"{r[key]:{fmt}}" for key, _, fmt in cols) for r in rows) + "\n")
    figures = {"sources": args.sources, "latency_s": args.latency, "concurrency": args.concurrency,
               "backfill_posts_stored": stored, "new_posts": newposts["new"], "idle_post_reads": idle["post_reads"],
               "serial_over_concurrent": f"{serial['wall'] / idle['wall']:.2f}"}
    for r in rows:
        figures.update({f"{r['label']}_wall_s": f"{r['wall']:.2f}", f"{r['label']}_calls": r["http"],
                        f"{r['label']}_floor_s": f"{r['floor']:.2f}", f"{r['label']}_wall_over_floor": f"{r['ratio']:.2f}"})
    for name, value in figures.items():
        print(f"{name}: {value}")
    if idle["calls"] != args.sources or idle["post_reads"] or stored != args.sources * min(args.posts, settings.backfill):
        print("WARNING: idle calls/post reads or stored posts differ from what is expected")
    if failures:
        print(f"\n{len(failures)} source failures:\n" + "\n".join(failures[:20]))
        return 1
    return 0


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="feedapp-bench-") as tmp:
        if not args.postgres:
            return run(args, args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}", tmp)
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
        name = f"feedapp_bench_{uuid.uuid4().hex[:12]}"
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            return run(args, PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}", tmp)
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    sys.exit(main())
