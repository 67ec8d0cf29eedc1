"""Stream benchmark: publish-to-visible latency of 100 posts with X's filtered stream, then with polling only.

Setup (not timed), per run: a fresh database (`flask db upgrade`), the fake X API (tests/fakex.py, in this process,
on 127.0.0.1) with a few public accounts followed (`flask sources add`), and the site served by a real
gunicorn (tests/gunicorn_proc.py: gunicorn.conf.py, 2 workers x 4 threads) with the default
FEEDAPP_STATE_TTL (1.0 s: a web worker trusts its copy of the content version that long, so visible
latency includes up to that).
Timed, per run: `flask poll --loop` runs as a subprocess (SIGTERM at the end); --posts posts (default 100)
are published on the fake at random moments (seeded) over --spread seconds, each with a unique marker in
its text; a watcher thread GETs `/` every 50 ms and records the moment each marker first shows. Latency is
that moment minus the moment of publishing (both this process's monotonic clock).
  1. stream  - FEEDAPP_STREAM on (the default with a bearer token), FEEDAPP_POLL_INTERVAL=300; publishing
               starts once the stream_status row says "live" covering every source.
  2. polling - FEEDAPP_STREAM=off, FEEDAPP_POLL_INTERVAL=--interval (default 60); publishing starts once
               a cycle after the first has polled every source (steady state: the cycle an interval after
               a start polls nothing, as its clock reads a few ms short of the sources' next check; the
               per-cycle line shows it) and spreads over at least two intervals.
A poll cycle brings in more posts than the 20 `/` shows, so the watcher also follows `/`'s "Older posts"
links (`/?before=ID`) while a published post not seen yet may be further down: "visible" is "in the
company-wide feed, read from `/` down". Printed per run: posts seen, median, 90th percentile and worst;
then the ratio of medians (polling / stream), the figure to expect at the default interval of 300 s, and
the load average at start and end (the machine is shared: other work slows every part). Exits 1 unless
every post was seen in both runs.
  .venv/bin/python bench/stream_bench.py [--posts 100] [--spread 45] [--interval 60] [--only stream|polling]
  .venv/bin/python bench/stream_bench.py --postgres   # throwaway databases on $FEEDAPP_TEST_POSTGRES (created, dropped)
"""

from __future__ import annotations

import argparse
import math
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from sqlalchemy import create_engine, func, select, text  # noqa: E402

from feedapp.config import SETTINGS  # noqa: E402
from feedapp.models import Source, StreamStatus, utcnow  # noqa: E402
from tests.conftest import x_config  # noqa: E402
from tests.fakex import FakeX  # noqa: E402
from tests.gunicorn_proc import base_env, gunicorn  # noqa: E402

PG_ADMIN_URL = os.environ.get("FEEDAPP_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
ACCOUNTS = ("depot_north", "depot_south", "harbor_ops", "night_shift")
EVERY = 0.05  # seconds between the watcher's sweeps of `/`
DEFAULT_INTERVAL = 300  # FEEDAPP_POLL_INTERVAL's default, for the expected figure
GUARD = 120.0  # seconds: a bound against hanging while waiting for the worker, never a measurement
MARK_RE = re.compile(r"sbm[sp]\d{4}x[0-9a-f]{6}")
OLDER_RE = re.compile(r'rel="next" href="\?before=(\d+)"')


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--posts", type=int, default=100, help="posts published per run")
    p.add_argument("--spread", type=float, default=45.0, help="seconds the stream run's posts are spread over")
    p.add_argument("--interval", type=int, default=60, help="FEEDAPP_POLL_INTERVAL of the polling run")
    p.add_argument("--only", choices=("stream", "polling"), help="one run instead of both")
    p.add_argument("--seed", type=int, default=7, help="seeds the publishing moments and authors")
    p.add_argument("--postgres", action="store_true", help="a throwaway database on $FEEDAPP_TEST_POSTGRES")
    return p.parse_args()


class Watcher(threading.Thread):
    """GETs `/` every EVERY seconds (and older pages while an awaited post may be there); first sighting per marker."""

    def __init__(self, url: str):
        super().__init__(name="watcher", daemon=True)
        self.url = url
        self.http = requests.Session()
        self.http.trust_env = False  # loopback only: no proxy from the environment
        self.seen: dict[str, float] = {}  # marker -> monotonic time of the first response showing it
        self.awaited: dict[str, int] = {}  # marker -> post id, published and not seen yet
        self.sweeps: list[float] = []  # seconds each sweep took
        self.pages = 0
        self.errors: list[str] = []
        self.changed = threading.Condition()
        self.halt = threading.Event()

    def expect(self, marker: str, post_id: int) -> None:
        """Say a post was published: sweeps read down the feed until it is seen."""
        with self.changed:
            if marker not in self.seen:
                self.awaited[marker] = post_id

    def wait_seen(self, markers: list[str], timeout: float) -> bool:
        """Block until every marker was seen, or timeout."""
        with self.changed:
            return self.changed.wait_for(lambda: all(m in self.seen for m in markers), timeout)

    def run(self) -> None:
        next_at = time.monotonic()
        while not self.halt.is_set():
            started = time.monotonic()
            self._sweep()
            self.sweeps.append(time.monotonic() - started)
            next_at = max(next_at + EVERY, time.monotonic())
            self.halt.wait(next_at - time.monotonic())

    def _sweep(self) -> None:
        path = "/"
        while path is not None:
            try:
                answer = self.http.get(self.url + path, timeout=30)
                at = time.monotonic()
                answer.raise_for_status()
            except requests.RequestException as exc:
                self.errors.append(f"GET {path}: {exc}")
                return
            self.pages += 1
            with self.changed:
                for marker in MARK_RE.findall(answer.text):
                    if marker not in self.seen:
                        self.seen[marker] = at
                        self.awaited.pop(marker, None)
                self.changed.notify_all()
                oldest_awaited = min(self.awaited.values(), default=None)
            older = OLDER_RE.search(answer.text)
            # Posts are listed newest id first: a page further down can only hold an awaited post older than this one.
            deeper = older is not None and oldest_awaited is not None and int(older.group(1)) > oldest_awaited
            path = f"/?before={older.group(1)}" if deeper else None

    def stop(self) -> None:
        self.halt.set()
        self.join(30)
        self.http.close()


@dataclass
class Run:
    """One run's figures."""

    name: str
    settings: str
    posts: int
    spread: float
    latencies: list[float] = field(default_factory=list)
    sweeps: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    post_ids: list[str] = field(default_factory=list)  # as the fake X API returned them
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        seen = len(self.latencies)
        out = [f"{self.name} run ({self.settings}): {seen}/{self.posts} posts seen, published over {self.spread:.0f} s"]
        if self.latencies:
            out.append(f"  latency: median {statistics.median(self.latencies):.2f} s, "
                       f"90th percentile {percentile(self.latencies, 90):.2f} s, worst {max(self.latencies):.2f} s, "
                       f"best {min(self.latencies):.2f} s")
        if self.sweeps:
            out.append(f"  watcher: {len(self.sweeps)} sweeps of / every {EVERY * 1000:.0f} ms, each "
                       f"median {statistics.median(self.sweeps) * 1000:.0f} ms, worst {max(self.sweeps) * 1000:.0f} ms")
        out += [f"  {n}" for n in self.notes]
        out += [f"  PROBLEM: {p}" for p in self.problems]
        return out


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def flask(env: dict, *args: str) -> None:
    """Run one `flask --app feedapp` command to completion; raise with its output when it fails."""
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "feedapp", *args], env=env, cwd=ROOT,
                          capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"flask {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}")


@contextmanager
def worker(env: dict, log_path: Path):
    """`flask poll --loop` as a subprocess, output to log_path; SIGTERM on the way out (then SIGKILL after 60 s)."""
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "feedapp", "poll", "--loop"], env=env,
                                cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)


def wait_until(check, what: str, proc: subprocess.Popen, log_path: Path, guard: float = GUARD):
    """Check the database every 100 ms until check() returns something truthy, and return it; fail if the worker
    exits first or after `guard` seconds."""
    deadline = time.monotonic() + guard
    while not (value := check()):
        if proc.poll() is not None:
            raise RuntimeError(f"the worker exited ({proc.returncode}) before {what}:\n{log_path.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"not within {guard:g} s: {what}\n{log_path.read_text()[-3000:]}")
        time.sleep(0.1)
    return value


def publish(fake: FakeX, watcher: Watcher, run: Run, rng: random.Random) -> dict[str, float]:
    """Publish run.posts posts at random moments over run.spread seconds; marker -> monotonic publish time."""
    moments = sorted(rng.uniform(0, run.spread) for _ in range(run.posts))
    published: dict[str, float] = {}
    start = time.monotonic()
    for n, moment in enumerate(moments):
        time.sleep(max(0.0, start + moment - time.monotonic()))  # the schedule itself: the thing being driven
        marker = f"sbm{run.name[0]}{n:04d}x{rng.getrandbits(24):06x}"
        account = rng.choice(ACCOUNTS)
        published[marker] = time.monotonic()
        post_id = fake.post(account, f"Shift note {marker}: {account.replace('_', ' ')} update {n}")
        watcher.expect(marker, int(post_id))
        run.post_ids.append(post_id)
    return published


def measure(run: Run, fake: FakeX, site: str, rng: random.Random, settle: float) -> None:
    """Publish, wait for every post on the site (at most `settle` seconds after the last), fill run's figures."""
    watcher = Watcher(site)
    watcher.start()
    try:
        published = publish(fake, watcher, run, rng)
        if not watcher.wait_seen(list(published), settle):
            run.problems.append(f"not every post seen within {settle:g} s of the last publish")
    finally:
        watcher.stop()
    run.latencies = [watcher.seen[m] - t for m, t in published.items() if m in watcher.seen]
    run.sweeps = watcher.sweeps
    if watcher.errors:
        run.problems.append(f"{len(watcher.errors)} failed GETs, first: {watcher.errors[0]}")


def stream_run(args, env: dict, engine, fake: FakeX, site: str, tmp: Path, rng: random.Random) -> Run:
    """Run 1: the worker with the filtered stream; publish once it covers every source."""
    run = Run("stream", "FEEDAPP_STREAM on, FEEDAPP_POLL_INTERVAL=300", args.posts, args.spread)
    log_path = tmp / "worker-stream.log"

    def live() -> bool:
        with engine.connect() as conn:
            row = conn.execute(select(StreamStatus.state, StreamStatus.streamed_sources)
                               .where(StreamStatus.name == "filtered")).first()
        return row is not None and row.state == "live" and row.streamed_sources == len(ACCOUNTS)

    with worker({**env, "FEEDAPP_POLL_INTERVAL": "300"}, log_path) as proc:
        wait_until(live, "the stream live and covering every source", proc, log_path)
        measure(run, fake, site, rng, settle=60.0)
        streamed = set(fake.streamed)
        run.notes.append(f"delivered by the filtered stream: {sum(i in streamed for i in run.post_ids)}/{run.posts}")
    if proc.returncode != 0:
        run.problems.append(f"the worker exited {proc.returncode} on SIGTERM:\n{log_path.read_text()[-2000:]}")
    return run


def polling_run(args, env: dict, engine, fake: FakeX, site: str, tmp: Path, rng: random.Random) -> Run:
    """Run 2: the worker polling only; publish once a cycle after its first has polled every source."""
    spread = max(args.spread, 2 * args.interval)
    run = Run("polling", f"FEEDAPP_STREAM=off, FEEDAPP_POLL_INTERVAL={args.interval}", args.posts, spread)
    log_path = tmp / "worker-polling.log"
    launched = utcnow()

    def polled_since(when):
        """The newest poll time when every source was polled after `when` (and the stream is off), else None."""
        with engine.connect() as conn:
            polled = Source.last_polled_at
            oldest, newest, never = conn.execute(select(func.min(polled), func.max(polled),
                                                        func.count().filter(polled.is_(None)))).one()
            state = conn.scalar(select(StreamStatus.state).where(StreamStatus.name == "filtered"))
        return newest if state == "off" and not never and oldest > when else None

    with worker({**env, "FEEDAPP_STREAM": "off", "FEEDAPP_POLL_INTERVAL": str(args.interval)}, log_path) as proc:
        first = wait_until(lambda: polled_since(launched), "the first poll cycle over every source", proc, log_path)
        # Steady state, not the start: the first cycle after a start is not followed by a full one an interval later
        # (see the per-cycle line), so publishing waits for the next cycle that polls every source.
        wait_until(lambda: polled_since(first), "a second poll cycle over every source", proc, log_path,
                   guard=2 * args.interval + GUARD)
        measure(run, fake, site, rng, settle=2 * args.interval + 60.0)
        cycles = re.findall(r"^total: (\d+) sources", log_path.read_text(), re.M)
        run.notes.append(f"sources polled per cycle, first cycle first: {' '.join(cycles)}")
    if proc.returncode != 0:
        run.problems.append(f"the worker exited {proc.returncode} on SIGTERM:\n{log_path.read_text()[-2000:]}")
    return run


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) + " (1/5/15 min)"


@contextmanager
def fresh_database(args, tmp: Path, name: str):
    """A new, empty database for one run: SQLite in tmp, or a throwaway PostgreSQL one (created, then dropped)."""
    if not args.postgres:
        yield f"sqlite:///{tmp / f'{name}.db'}"
        return
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3})
    db = f"feedapp_bench_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{db}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{db}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        admin.dispose()


def check_site(server) -> None:
    """One GET of `/` before anything is timed: the site must answer 200 (a request waits in the backlog)."""
    with requests.Session() as http:
        http.trust_env = False
        try:
            status = http.get(server.url + "/", timeout=60).status_code
        except requests.RequestException as exc:
            status = exc
    if status != 200:
        raise RuntimeError(f"the site does not answer GET / ({status}):\n{server.log()[-3000:]}")


def one_run(args, name: str, fake: FakeX, tmp: Path, rng: random.Random) -> Run:
    """A fresh database and site, the sources followed, then the run (each run starts from the same state)."""
    with ExitStack() as stack:
        db_url = stack.enter_context(fresh_database(args, tmp, name))
        instance = tmp / f"instance-{name}"
        env = base_env(instance, db_url, PYTHONUNBUFFERED="1")
        env.update({k: str(v) for k, v in x_config(fake).items()})
        flask(env, "db", "upgrade")
        flask(env, "sources", "add", *ACCOUNTS)
        engine = create_engine(db_url)
        stack.callback(engine.dispose)
        # The web server gets no X settings (views never call X); links name 127.0.0.1 (only loopback is used).
        server = stack.enter_context(gunicorn(base_env(instance, db_url, FEEDAPP_BASE_URL="http://127.0.0.1")))
        check_site(server)
        runner = stream_run if name == "stream" else polling_run
        return runner(args, env, engine, fake, server.url, tmp, rng)


def bench(args, tmp: Path) -> int:
    print(f"machine: {os.cpu_count()} CPUs, load average at start {loadavg()}")
    rng = random.Random(args.seed)
    ttl = next(s.default for s in SETTINGS if s.name == "FEEDAPP_STATE_TTL")
    print(f"engine: {'postgresql' if args.postgres else 'sqlite'}, a fresh database per run; "
          f"{len(ACCOUNTS)} public accounts followed; the fake X API in this process")
    print(f"site: gunicorn (gunicorn.conf.py) on 127.0.0.1, FEEDAPP_STATE_TTL={ttl} s (default): visible latency "
          f"includes up to {ttl} s of a web worker trusting its copy of the content version")
    runs: dict[str, Run] = {}
    with FakeX() as fake:
        for account in ACCOUNTS:
            fake.add_user(account, name=account.replace("_", " ").title())
            for n in range(3):  # something for the first poll to read
                fake.post(account, f"Earlier note {n} from {account}")
        for name in ("stream", "polling"):
            if args.only in (None, name):
                runs[name] = one_run(args, name, fake, tmp, rng)
                print("\n".join(runs[name].lines()), flush=True)
    if "polling" in runs:
        print(f"polling latency scales with FEEDAPP_POLL_INTERVAL (here {args.interval} s): a post waits for the "
              f"next cycle, about half the interval on average and at worst the full interval, plus the cycle and "
              f"the state TTL; at the default {DEFAULT_INTERVAL} s expect about {DEFAULT_INTERVAL / 2:.0f} s on "
              f"average and up to {DEFAULT_INTERVAL} s")
    if len(runs) == 2 and runs["stream"].latencies and runs["polling"].latencies:
        ratio = statistics.median(runs["polling"].latencies) / statistics.median(runs["stream"].latencies)
        print(f"ratio of medians (polling / stream): {ratio:.1f}")
    print(f"load average at end: {loadavg()}")
    ok = all(len(r.latencies) == r.posts and not r.problems for r in runs.values())
    print("OK: every post seen in every run" if ok else "FAILED: see the runs above")
    return 0 if ok else 1


def main() -> int:
    args = parse_args()
    # A SIGTERM to the benchmark unwinds through every `finally`: the worker and gunicorn are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("stopped by SIGTERM"))
    with tempfile.TemporaryDirectory(prefix="feedapp-stream-bench-") as tmp:
        return bench(args, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
