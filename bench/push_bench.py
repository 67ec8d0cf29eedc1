"""Must-read push benchmark: one company-wide must-read to 10,000 subscriptions against a loopback push service.

Setup (not timed): a fresh database, the VAPID keys, --subscriptions browsers (each its own P-256 key pair and
16-byte auth secret, made by the push service's process with cryptography), spread over a few offices, one
post and its MustRead row, as feedapp.mustread.mark writes it.
Timed: announce_due (the fan-out into the outbox) and deliver (pywebpush: aes128gcm, a VAPID JWT per request)
until the outbox is empty. Printed: wall time, deliveries/s, the worker's CPU time (time.process_time: every
thread of this process) per delivery, and the load average (other work on the machine slows the run too).
Then every subscription must have received exactly one message (counted at the push service), or exit 1.

The push service (tests/fakepush.py) runs in a process of its own, as a real one does not share the worker's
CPU and GIL, and checks VAPID and decrypts one push in --sample (default 10; 1: every one), counting all.
--fake-in-process puts it in the worker's process, to see what that costs.
  .venv/bin/python bench/push_bench.py [--subscriptions 10000] [--concurrency 8] [--batch 100] [--sample 10]
  .venv/bin/python bench/push_bench.py --postgres   # throwaway database on $FEEDAPP_TEST_POSTGRES (created, dropped)
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import create_engine, func, insert, select, text  # noqa: E402

from feedapp import create_app  # noqa: E402
from feedapp.db import sessions as app_sessions  # noqa: E402
from feedapp.migrate import upgrade  # noqa: E402
from feedapp.models import MustRead, Office, Post, PushMessage, PushSubscription, Source  # noqa: E402
from feedapp.push.announce import AnnounceSettings, announce_due  # noqa: E402
from feedapp.push.keys import ensure_vapid_keys  # noqa: E402
from feedapp.push.outbox import DeliverySettings, deliver, hold_for_quiet_hours, outbox_counts  # noqa: E402
from tests.fakepush import FakePush  # noqa: E402

PG_ADMIN_URL = os.environ.get("FEEDAPP_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
SUBJECT = "mailto:bench@example.com"
OFFICES = 4
POST_ID = 1900000000000000001


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--subscriptions", type=int, default=10_000)
    p.add_argument("--concurrency", type=int, default=8, help="DeliverySettings.concurrency: sends in flight")
    p.add_argument("--batch", type=int, default=100, help="DeliverySettings.batch: rows claimed at a time")
    p.add_argument("--sample", type=int, default=10, help="the push service checks and decrypts 1 push in N")
    p.add_argument("--fake-in-process", action="store_true", help="run the push service in the worker's process")
    db = p.add_mutually_exclusive_group()
    db.add_argument("--postgres", action="store_true", help="a throwaway database on $FEEDAPP_TEST_POSTGRES")
    db.add_argument("--database-url", help="an existing, empty database")
    return p.parse_args()


class LocalPush:
    """The push service in this process."""

    def __init__(self, public_key: str, n: int, sample: int):
        self.fake = FakePush(public_key, SUBJECT, sample=sample).__enter__()
        self.origin = self.fake.origin
        self.subscriptions = [self.fake.subscribe()[1] for _ in range(n)]

    def results(self):
        return dict(self.fake.counts), list(self.fake.problems), len(self.fake.received)

    def stop(self):
        self.fake.__exit__(None, None, None)


class PushProcess:
    """The push service in a child process (spawned: a clean interpreter), driven over a pipe."""

    def __init__(self, public_key: str, n: int, sample: int):
        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_push_main, args=(child, public_key, n, sample), daemon=True)
        self.proc.start()
        self.origin, self.subscriptions = self.conn.recv()

    def results(self):
        self.conn.send("results")
        return self.conn.recv()

    def stop(self):
        self.conn.send("stop")
        self.proc.join(10)


def _push_main(conn, public_key: str, n: int, sample: int) -> None:
    fake = FakePush(public_key, SUBJECT, sample=sample).__enter__()
    conn.send((fake.origin, [fake.subscribe()[1] for _ in range(n)]))
    while (command := conn.recv()) != "stop":
        if command == "results":
            conn.send((dict(fake.counts), list(fake.problems), len(fake.received)))
    fake.__exit__(None, None, None)


def seed(factory, subscriptions: list[dict]) -> None:
    """Offices, a company-wide source and post, the subscriptions (executemany), the must-read."""
    now = datetime.now(timezone.utc)
    with factory() as s:
        offices = [Office(slug=f"office-{n}", name=f"Office {n}", language="fr" if n % 2 else None)
                   for n in range(OFFICES)]
        s.add_all(offices)
        s.add(Source(x_id="42", username="harborcomms", display_name="Harbor Comms"))
        s.flush()
        source_id = s.scalar(select(Source.id))
        s.add(Post(id=POST_ID, source_id=source_id, created_at=now, author_id="42", author_username="harborcomms",
                   author_name="Harbor Comms", canonical_id=POST_ID,
                   text="Line 4 is closed tomorrow morning: take the detour by quay B. Map at the gate."))
        ids = [None] + [o.id for o in offices]
        s.execute(insert(PushSubscription), [
            {"endpoint": sub["endpoint"], "p256dh": sub["keys"]["p256dh"], "auth": sub["keys"]["auth"],
             "office_id": ids[n % len(ids)], "staff": False, "failures": 0, "created_at": now}
            for n, sub in enumerate(subscriptions)])
        s.add(MustRead(post_id=POST_ID, office_id=None, staff_only=False, marked_by="bench", marked_at=now))
        s.commit()


def run(args, db_url: str, instance: str) -> int:
    upgrade(db_url)
    ensure_vapid_keys(instance)
    started = time.perf_counter()
    probe = create_app({"TESTING": True, "INSTANCE_PATH": instance, "FEEDAPP_DATABASE_URL": db_url,
                        "FEEDAPP_VAPID_SUBJECT": SUBJECT})
    public_key = probe.extensions["feedapp.push"].keys.public_key
    service = (LocalPush if args.fake_in_process else PushProcess)(public_key, args.subscriptions, args.sample)
    try:
        app = create_app({"TESTING": True, "INSTANCE_PATH": instance, "FEEDAPP_DATABASE_URL": db_url,
                          "FEEDAPP_VAPID_SUBJECT": SUBJECT, "FEEDAPP_PUSH_HOSTS": service.origin,
                          "FEEDAPP_BASE_URL": "https://feed.example.com"})
        factory = app_sessions(app)
        seed(factory, service.subscriptions)
        print(f"setup: {args.subscriptions} subscriptions with their own keys in {time.perf_counter() - started:.1f} s")
        announce = AnnounceSettings.from_config(app.config)
        delivery = DeliverySettings.from_push(app.extensions["feedapp.push"], concurrency=args.concurrency,
                                              batch=args.batch)

        wall0, cpu0 = time.perf_counter(), time.process_time()
        queued = announce_due(factory, datetime.now(timezone.utc), announce)
        wall1, cpu1 = time.perf_counter(), time.process_time()
        # As the worker does (feedapp/cli/push.py): the quiet-hours check before every batch.
        summary = deliver(factory, delivery, before_batch=lambda now: hold_for_quiet_hours(factory, now, announce.quiet))
        wall2, cpu2 = time.perf_counter(), time.process_time()

        with factory() as s:
            left = outbox_counts(s)
            pending = s.scalar(select(func.count()).select_from(PushMessage).where(PushMessage.state == "pending"))
        counts, problems, checked = service.results()
    finally:
        service.stop()
    total_wall, total_cpu = wall2 - wall0, cpu2 - cpu0
    once = sum(1 for c in counts.values() if c == 1)
    engine = "postgresql" if db_url.startswith("postgresql") else "sqlite"
    where = "in the worker's process" if args.fake_in_process else "in its own process"
    figures = {
        "engine": engine,
        "subscriptions": args.subscriptions,
        "concurrency": args.concurrency,
        "batch": args.batch,
        "push_service": f"{where}; VAPID checked and payload decrypted for 1 push in {args.sample} ({checked} checked)",
        "announce_rows": queued,
        "announce_wall_s": f"{wall1 - wall0:.2f}",
        "announce_cpu_ms": f"{(cpu1 - cpu0) * 1000:.0f}",
        "deliver_wall_s": f"{wall2 - wall1:.2f}",
        "total_wall_s": f"{total_wall:.2f}",
        "deliveries": summary.sent,
        "retried_failed_gone": f"{summary.retried}/{summary.failed}/{summary.gone}",
        "deliveries_per_s": f"{summary.sent / total_wall:.0f}",
        "cpu_ms_per_delivery": f"{total_cpu * 1000 / max(summary.sent, 1):.2f}",
        "worker_cpu_s": f"{total_cpu:.2f}",
        "loadavg_1m": f"{os.getloadavg()[0]:.2f}",
        "cpus": os.cpu_count(),
        "received_exactly_once": f"{once}/{args.subscriptions}",
        "outbox_left_pending": pending,
        "outbox_states": left,
    }
    for name, value in figures.items():
        print(f"{name}: {value}")
    ok = (once == args.subscriptions == len(counts) == summary.sent == queued and not problems and not pending
          and summary.failed == summary.retried == 0)
    if problems:
        print("push service refusals:\n" + "\n".join(problems[:10]))
    if summary.problems:
        print("worker's failures:\n" + "\n".join(summary.problems[:10]))
    print("OK: every subscription received exactly one message" if ok else "FAILED: see the counts above")
    if total_wall >= 30:
        print(f"NOTE: {total_wall:.1f} s is over the 30 s target")
    return 0 if ok else 1


def main() -> int:
    args = parse_args()
    with tempfile.TemporaryDirectory(prefix="feedapp-push-bench-") as tmp:
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
