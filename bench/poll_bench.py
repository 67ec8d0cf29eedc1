"""Poll-cycle benchmark: 100 sources against the fake X API with 50 ms per response.

Measures, in one run, on a fresh database (setup is not timed and runs at 0 ms latency):
  1. backfill  - first cycle, every source has --posts posts (default 20)
  2. new posts - a cycle after 3 new posts on each source
  3. idle      - a cycle with nothing new (one timeline call, no post reads, per source)
  4. serial    - the same idle cycle with concurrency 1, for reference
and prints a table, then each figure as `name: value`, plus the theoretical floor
(timeline calls x latency / concurrency). Exits 1 if any source failed or was skipped.

Run from anywhere (only 127.0.0.1 is contacted):
  .venv/bin/python bench/poll_bench.py [--sources 100] [--posts 20] [--concurrency 8] [--latency 0.05]
  .venv/bin/python bench/poll_bench.py --postgres        # throwaway db on $FEEDAPP_TEST_POSTGRES (created, dropped)
  .venv/bin/python bench/poll_bench.py --database-url URL  # an existing, empty database
"""

from __future__ import annotations

import argparse
import dataclasses
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
from feedapp.ingest.sources import add_sources  # noqa: E402
from feedapp.migrate import upgrade  # noqa: E402
from feedapp.models import Post  # noqa: E402
from feedapp.xapi import XClient, XSettings  # noqa: E402
from tests.fakex import FakeX  # noqa: E402

PG_ADMIN_URL = os.environ.get("FEEDAPP_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sources", type=int, default=100)
    p.add_argument("--posts", type=int, default=20, help="posts per source before the first cycle")
    p.add_argument("--new", type=int, default=3, help="new posts per source before the second cycle")
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--latency", type=float, default=0.05, help="seconds added to every fake X response")
    db = p.add_mutually_exclusive_group()
    db.add_argument("--database-url", help="an existing, empty database (default: SQLite in a temp dir)")
    db.add_argument("--postgres", action="store_true", help=f"create and drop a throwaway db on {PG_ADMIN_URL}")
    return p.parse_args()


def run(args, db_url: str, instance: str) -> int:
    upgrade(db_url)
    with FakeX() as fake:
        fake.rate_limit = 100_000
        creds = {f"FEEDAPP_X_{k.upper()}": getattr(fake, k) for k in
                 ("bearer_token", "consumer_key", "consumer_secret", "access_token", "access_token_secret")}
        app = create_app({"TESTING": True, "INSTANCE_PATH": instance, "FEEDAPP_DATABASE_URL": db_url,
                          "FEEDAPP_POLL_CONCURRENCY": args.concurrency, "FEEDAPP_X_API_URL": fake.url,
                          "FEEDAPP_X_TIMEOUT": 5.0, **creds})
        sessions = app_sessions(app)
        client = XClient(XSettings.from_config(app.config))
        settings = PollSettings.from_config(app.config)
        names = [f"bench_src_{i:03d}" for i in range(args.sources)]
        with sessions() as session:  # setup, not measured: 0 ms latency
            for name in names:
                fake.add_user(name)
                for n in range(args.posts):
                    fake.post(name, f"{name} post {n} https://example.com/{name}/{n} #bench")
                add_sources(session, client, [name])
            session.commit()

        fake.latency = args.latency
        rows, failures = [], []

        def cycle(label, poll_settings):
            fake.reset_requests()
            t0 = time.perf_counter()
            s = poll_cycle(sessions, client, poll_settings, everything=True)
            wall = time.perf_counter() - t0
            calls = sum(1 for r in fake.requests if r.path.endswith("/tweets"))
            failures.extend(f"[{label}] {r.line()}" for r in s.results if not r.ok)
            rows.append(dict(label=label, conc=poll_settings.concurrency, wall=wall, calls=calls, new=s.new_posts,
                             http=len(fake.requests), post_reads=s.post_reads, user_reads=s.user_reads, cost=s.cost,
                             floor=calls * args.latency / poll_settings.concurrency, failed=s.failed))
            return rows[-1]

        backfill = cycle("backfill", settings)
        with sessions() as session:
            stored = session.scalar(select(func.count()).select_from(Post))  # after backfill only
        for name in names:  # fake.post is in-process: no HTTP, no latency
            for n in range(args.new):
                fake.post(name, f"{name} fresh {n}")
        newposts = cycle("new_posts", settings)
        idle = cycle("idle", settings)
        serial = cycle("idle_serial", dataclasses.replace(settings, concurrency=1))
        sessions.kw["bind"].dispose()

    print(f"\n{args.sources} sources, {args.latency * 1000:.0f} ms latency per response, "
          f"database {db_url.split(':', 1)[0]}\n")
    cols = [("label", "cycle", "<12"), ("conc", "conc", ">5"), ("wall", "wall s", ">9.2f"),
            ("floor", "floor s", ">9.2f"), ("calls", "calls", ">7"), ("new", "new", ">7"),
            ("post_reads", "post rd", ">9"), ("user_reads", "user rd", ">9"), ("cost", "cost $", ">9.3f"),
            ("failed", "failed", ">8")]
    head = "".join(f"{title:{fmt.split('.')[0]}}" for _, title, fmt in cols)
    print(head + "\n" + "-" * len(head))
    print("\n".join("".join(f"{r[key]:{fmt}}" for key, _, fmt in cols) for r in rows) + "\n")
    figures = {
        "sources": args.sources, "latency_s": args.latency, "concurrency": args.concurrency,
        "backfill_wall_s": f"{backfill['wall']:.2f}", "backfill_timeline_calls": backfill["calls"],
        "backfill_posts_stored": stored, "backfill_post_reads": backfill["post_reads"],
        "backfill_user_reads": backfill["user_reads"],
        "backfill_billable_reads": backfill["post_reads"] + backfill["user_reads"],
        "backfill_cost_usd": f"{backfill['cost']:.3f}", "backfill_floor_s": f"{backfill['floor']:.2f}",
        "new_wall_s": f"{newposts['wall']:.2f}", "new_timeline_calls": newposts["calls"],
        "new_posts": newposts["new"], "new_floor_s": f"{newposts['floor']:.2f}",
        "idle_wall_s": f"{idle['wall']:.2f}", "idle_timeline_calls": idle["calls"],
        "idle_other_calls": idle["http"] - idle["calls"], "idle_post_reads": idle["post_reads"],
        "idle_floor_s": f"{idle['floor']:.2f}", "serial_idle_wall_s": f"{serial['wall']:.2f}",
        "serial_idle_timeline_calls": serial["calls"], "serial_idle_floor_s": f"{serial['floor']:.2f}",
        "serial_over_concurrent": f"{serial['wall'] / idle['wall']:.2f}",
        "idle_wall_over_floor": f"{idle['wall'] / idle['floor']:.2f}" if idle["floor"] else "n/a",
    }
    for name, value in figures.items():
        print(f"{name}: {value}")
    if idle["calls"] != args.sources or idle["post_reads"] or stored != args.sources * min(args.posts, settings.backfill):
        print("WARNING: idle calls/post reads or stored posts differ from what is expected")
    if failures:
        print(f"\n{len(failures)} source failures:\n" + "\n".join(failures))
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
