"""HTTP benchmark: feedapp under gunicorn against a bare Flask "Hello, World!" (bench/hello.py) and a raw WSGI
callable returning constant bytes (bench/raw.py, the ceiling for any Python app on that server), same settings.

Seeds a fresh database (10k posts over 50 sources), then measures with wrk raw `/`, hello `/`, feedapp `/`,
`/feed.rss` and `/feed.rss` answered 304 (ratios to hello, targets >= 1.0, 1.0, 1.5; each also as a fraction of
raw); the first view (`/` + its CSS and JS, brotli; target 14 KB); and the uncached page path (GETs of
`/?before=ID`, all cursors distinct: each misses the render cache) at 10k posts and after growing the same database
to 1M (target: ratio <= 1.3). Exit 1: a target missed; 2: no wrk.
Only 127.0.0.1 is contacted. Needs wrk: `apt-get install -y wrk` (`make bench-http` installs it). Run from anywhere:
  .venv/bin/python bench/http_bench.py [-t 2] [-c 16] [-d 10] [--gunicorn "-w 4 --threads 8"] [--scale 0]
  .venv/bin/python bench/http_bench.py --postgres  # throwaway db on $FEEDAPP_TEST_POSTGRES, dropped after
"""

import argparse, contextlib, os, random, re, secrets, shutil, signal, socket, statistics, subprocess, sys, tempfile, time  # noqa: E401
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import brotli  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from feedapp.content_scopes import SITE  # noqa: E402
from feedapp.db import make_engine  # noqa: E402
from feedapp.ingest.store import bump_content_version, store_posts  # noqa: E402
from feedapp.migrate import upgrade  # noqa: E402
from feedapp.models import Office, Post, Source  # noqa: E402
from feedapp.xapi.types import Link, XMedia, XPost, XUser  # noqa: E402

PG_ADMIN_URL = os.environ.get("FEEDAPP_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
EPOCH_MS, STEP_MS, STEP_ID = 1288834974657, 60_000, 60_000 << 22  # X snowflake epoch; a post a minute
AE = {"Accept-Encoding": "gzip, br"}  # what real clients send
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy: 127.0.0.1 only
WORDS = ("team office launch customer release update partner service data cloud energy design week open new today thanks "
         "join read more about our we are proud to share first results from pilot project with city support").split()
APPS = {"raw": ("raw:app", ROOT / "bench", "/"), "hello": ("hello:app", ROOT / "bench", "/"),
        "feedapp": ("wsgi:app", ROOT, "/healthz")}  # app, chdir, ready


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("-t", "--wrk-threads", type=int, default=2)
    p.add_argument("-c", "--connections", type=int, default=16)
    p.add_argument("-d", "--duration", type=int, default=10, help="seconds per wrk case")
    p.add_argument("--gunicorn", default="-k gthread -w 2 --threads 4", help="gunicorn options, both servers")
    p.add_argument("--posts", type=int, default=10_000)
    p.add_argument("--scale", type=int, default=1_000_000, help="posts after growth; 0 skips the scale test")
    p.add_argument("--samples", type=int, default=200, help="uncached page GETs at each size")
    p.add_argument("--postgres", action="store_true", help=f"throwaway database on {PG_ADMIN_URL}")
    return p.parse_args()


def make_post(i: int, ms: int, src: Source, rng: random.Random) -> XPost:
    pid = str((ms - EPOCH_MS) << 22)
    url, mention, tag = f"example.com/news/{i}", f"@acme_{i * 7 % 50:02d}", "#" + WORDS[i % 10]
    body = f"{' '.join(rng.choices(WORDS, k=18)).capitalize()}. Details: {url} (thanks {mention}) {tag}"
    spans = [(url, "url", f"https://{url}"), (mention, "mention", f"https://x.com/{mention[1:]}"),
             (tag, "hashtag", f"https://x.com/hashtag/{tag[1:]}")]
    links = tuple(Link(body.index(s), body.index(s) + len(s), kind, href, s) for s, kind, href in spans)
    photo = XMedia(f"3_{pid}", "photo", f"https://pbs.twimg.com/media/G{i:011d}.jpg", None, 2048, 1365, "The team")
    created = datetime.fromtimestamp(ms / 1000, timezone.utc)
    raw = {"data": {"id": pid, "text": body, "author_id": src.x_id, "created_at": created.isoformat(), "lang": "en",
                    "conversation_id": pid, "edit_history_tweet_ids": [pid], "entities": {"urls": [vars(links[0])]}}}
    return XPost(pid, XUser(src.x_id, src.username, src.display_name, src.avatar_url), body, links,
                    (photo,) if i % 4 == 0 else (), created, lang="en", conversation_id=pid, raw=raw)


def seed(url: str, n_posts: int) -> int:
    """Schema, 10 offices, 50 sources and n_posts posts one minute apart; returns the oldest post's ms."""
    upgrade(url)
    t0_ms = (time.time_ns() // 10**6 // STEP_MS - n_posts) * STEP_MS
    rng, engine, by_source = random.Random(42), make_engine(url), {}
    with Session(engine) as s, s.begin():  # commits at the end
        offices = [Office(slug=f"office-{i}", name=f"Office {i}") for i in range(10)]
        sources = [Source(x_id=str(10**9 + i), username=f"acme_{i:02d}", display_name=f"Acme account {i}",
                          avatar_url=f"https://pbs.twimg.com/profile_images/{i}/a_normal.jpg", error_count=0,
                          office=None if i < 10 else offices[i % 10]) for i in range(50)]  # 10 company-wide
        s.add_all(offices + sources)
        s.flush()
        for i, src in enumerate(rng.choices(sources, k=n_posts)):
            by_source.setdefault(src, []).append(make_post(i, t0_ms + i * STEP_MS, src, rng))
        for src, posts in by_source.items():
            for k in range(0, len(posts), 500):
                store_posts(s, src, posts[k:k + 500])
    engine.dispose()
    return t0_ms


def grow(url: str, seeded: int, total: int, t0_ms: int) -> None:
    """Add total - seeded older posts (ids below the seeded ones, same sources), copies of seeded rows."""
    engine = make_engine(url)
    pg, id0, t0_s = engine.dialect.name == "postgresql", (t0_ms - EPOCH_MS) << 22, t0_ms // 1000
    new_id = f"({id0} - seq.n * {STEP_ID})"
    # Each copy is a post of its own: its own canonical id (a copy keeping its model's would be a second
    # row of that post, shown once by the feed query, so the table would hold 10k posts, not 1m) and no thread.
    expr = {"id": new_id, "canonical_id": new_id, "thread_id": "NULL", "conversation_id": f"CAST({new_id} AS VARCHAR(32))",
            "created_at": f"to_timestamp({t0_s} - seq.n * 60)" if pg
            else f"datetime({t0_s} - seq.n * 60, 'unixepoch') || '.000000'"}
    cols = [c.name for c in Post.__table__.columns]
    with engine.begin() as conn:
        for lo in range(1, total - seeded + 1, 100_000):
            hi = min(lo + 99_999, total - seeded)
            seq = (f"generate_series({lo}, {hi}) AS seq(n)" if pg else
                   f"(WITH RECURSIVE s(n) AS (SELECT {lo} UNION ALL SELECT n + 1 FROM s WHERE n < {hi}) SELECT n FROM s) AS seq")
            conn.execute(text(f"INSERT INTO posts ({', '.join(cols)}) SELECT {', '.join(expr.get(c, f't.{c}') for c in cols)}"
                              f" FROM {seq} JOIN posts t ON t.id = {id0} + ((seq.n - 1) % {seeded}) * {STEP_ID}"))
        if pg:  # autovacuum would analyze a table that grew this much; SQLite stays as the app leaves it
            conn.execute(text("ANALYZE posts"))
        bump_content_version(Session(bind=conn), [SITE])  # joins this transaction; SITE: every response
    engine.dispose()


def get(url: str, headers: dict | None = None, timeout: float = 15):
    try:
        with OPENER.open(urllib.request.Request(url, headers=headers or {}), timeout=timeout) as r:
            return r.status, r.headers, r.read()
    except urllib.request.HTTPError as e:  # 304 and errors arrive here
        return e.code, e.headers, e.read()


def serve(args, procs: dict, name: str, env: dict, log: Path) -> str:
    """Start gunicorn with app `name` on a port of its own (into procs at once); wait at most 30 s until it answers."""
    app, chdir, ready = APPS[name]
    # The socket is bound here and handed over (gunicorn's fd:// bind): no other process can take the port between.
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    # "-c /dev/null": the project's gunicorn.conf.py (access log, redaction) applies to no server,
    # so all run on exactly the options given here.
    cmd = [str(ROOT / ".venv/bin/gunicorn"), "-c", "/dev/null", *args.gunicorn.split(), "--no-control-socket",
           "-b", f"fd://{sock.fileno()}",
           "--chdir", str(chdir), "--error-logfile", str(log), app]
    env = {**env, "FEEDAPP_BASE_URL": env.get("FEEDAPP_BASE_URL") or f"http://127.0.0.1:{port}"}
    proc = procs[name] = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL, start_new_session=True,
                                          pass_fds=(sock.fileno(),))
    sock.close()  # gunicorn holds its own copy
    base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(OSError):  # not listening yet
            if get(base + ready, timeout=2)[0] == 200:
                return base
        time.sleep(0.1)
    raise RuntimeError(f"gunicorn {app} did not become ready:\n{log.read_text()[-2000:]}")


def stop(proc) -> None:
    proc.terminate()  # gunicorn's master stops its workers; a no-op once it has exited
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the session this script started for it


def wrk(args, name: str, url: str, headers: dict) -> float:
    for _ in range(5):  # warm up
        get(url, headers)
    cmd = ["wrk", f"-t{args.wrk_threads}", f"-c{args.connections}", f"-d{args.duration}s", "--latency"]
    cmd += [arg for k, v in headers.items() for arg in ("-H", f"{k}: {v}")] + [url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration + 60, check=True).stdout
    rps, m = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1]), re.search(r"99%\s+([\d.]+)(us|ms|s)\b", out)
    p99 = float(m[1]) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[m[2]]
    bad = [line.strip() for line in out.splitlines() if "Non-2xx" in line or "Socket errors" in line]
    print(f"{name}: rps={rps:.0f} p99_ms={p99:.2f}" + (f"  ({'; '.join(bad)})" if bad else ""), flush=True)
    return rps


def uncached(base: str, url: str, n: int) -> float:
    """n sequential GETs of `/?before=ID`, distinct cursors spread over the table (oldest 2% left out)."""
    engine = make_engine(url)
    with engine.connect() as conn:
        ids = list(conn.execute(text("SELECT id FROM posts ORDER BY id")).scalars())
    engine.dispose()
    times, deadline = [], time.monotonic() + 120
    for c in ids[1:20:4]:  # warm up on other keys
        get(f"{base}/?before={c}", AE)
    for k in range(n):
        c = ids[int(len(ids) * (0.02 + 0.98 * k / n))]
        start = time.perf_counter()
        status = get(f"{base}/?before={c}", AE)[0]
        times.append((time.perf_counter() - start) * 1000)
        assert status == 200 and time.monotonic() < deadline, f"/?before={c}: {status} (or over 120 s)"
    mean, p99 = statistics.fmean(times), statistics.quantiles(times, n=100)[98]
    label = f"{len(ids) // 10**6}m" if len(ids) >= 10**6 else f"{len(ids) // 1000}k"
    print(f"page_uncached_{label}: posts={len(ids)} n={n} mean_ms={mean:.2f} p99_ms={p99:.2f}", flush=True)
    return mean


def first_view(base: str) -> int:
    """Brotli bytes of `/` plus the CSS and JS it links (bodies only, headers not counted)."""
    total, paths = 0, ["/"]
    for path in paths:  # the page, then the assets it links (appended to paths below)
        _, headers, body = get(base + path, {"Accept-Encoding": "br"})
        served = headers.get("Content-Encoding") == "br"
        size = len(body) if served else len(brotli.compress(body, quality=11))
        print(f"first_view {path}: {size} B br" + ("" if served else " (served uncompressed; brotli q11 estimate)"))
        total += size
        if path == "/":  # then the stylesheets and scripts it links
            html = (brotli.decompress(body) if served else body).decode()
            paths += re.findall(r'<(?:link[^>]*rel="?stylesheet"?[^>]*href|script[^>]*src)="([^"]+)"', html)
    return total


def check(name: str, value: float, op: str, target: float) -> bool:
    ok = value >= target if op == ">=" else value <= target
    print(f"{name}: {value:.2f} (target {op} {target}) {'PASS' if ok else 'FAIL'}", flush=True)
    return ok


def main() -> int:
    args = parse_args()
    if not shutil.which("wrk"):
        print("wrk is not installed; install it with: apt-get install -y wrk  (or run `make bench-http`)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally below
    tmp, procs, pg_db, admin, begin = Path(tempfile.mkdtemp(prefix="http-bench-")), {}, None, None, time.perf_counter()
    try:
        url = f"sqlite:///{tmp / 'bench.db'}"
        if args.postgres:
            admin, pg_db = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT"), f"feedapp_bench_{secrets.token_hex(4)}"
            with admin.connect() as conn:
                conn.execute(text(f"CREATE DATABASE {pg_db}"))
            url = admin.url.set(database=pg_db).render_as_string(hide_password=False)
        t0_ms = seed(url, args.posts)
        print(f"seeded {args.posts} posts on {url.split(':')[0]} (t={time.perf_counter() - begin:.0f}s)", flush=True)
        env = {**os.environ, "FEEDAPP_DATABASE_URL": url, "FEEDAPP_INSTANCE_PATH": str(tmp),
               "FEEDAPP_SECRET_KEY": secrets.token_urlsafe(32)}
        raw = serve(args, procs, "raw", env, tmp / "raw.log")
        hello = serve(args, procs, "hello", env, tmp / "hello.log")
        feed = serve(args, procs, "feedapp", env, tmp / "feedapp.log")
        etag = get(feed + "/feed.rss", AE)[1]["ETag"]
        assert get(feed + "/feed.rss", {**AE, "If-None-Match": etag})[0] == 304, "conditional GET of /feed.rss: not 304"
        cases = [("raw", raw + "/", {}, 0), ("hello", hello + "/", {}, 0), ("page", feed + "/", AE, 1.0),
                 ("rss", feed + "/feed.rss", AE, 1.0), ("not_modified", feed + "/feed.rss", {**AE, "If-None-Match": etag}, 1.5)]
        rps = {name: wrk(args, name, case_url, headers) for name, case_url, headers, _ in cases}
        ok = [check(f"{name}_over_hello", rps[name] / rps["hello"], ">=", t) for name, _, _, t in cases[2:]]
        for name, *_ in cases[1:]:
            print(f"{name}_of_raw: {rps[name] / rps['raw']:.2f}", flush=True)
        ok.append(check("first_view_kb", first_view(feed) / 1024, "<=", 14))
        small = uncached(feed, url, args.samples)
        if args.scale > args.posts:
            stop(procs.pop("feedapp"))
            grow(url, args.posts, args.scale, t0_ms)
            print(f"grew to {args.scale} posts (t={time.perf_counter() - begin:.0f}s)", flush=True)
            feed = serve(args, procs, "feedapp", env, tmp / "feedapp.log")
            ok.append(check("uncached_1m_over_10k", uncached(feed, url, args.samples) / small, "<=", 1.3))
        print(f"total_s: {time.perf_counter() - begin:.0f}")
        return 0 if all(ok) else 1
    finally:
        for proc in procs.values():
            stop(proc)
        for log in sorted(tmp.glob("*.log")):
            bad = [ln for ln in log.read_text().splitlines() if re.search(r"Traceback|ERROR|CRITICAL|Exception|TIMEOUT", ln)]
            print(f"gunicorn_log {log.stem}: {len(bad)} error lines" + "".join(f"\n  {ln}" for ln in bad[:5]))
        if pg_db:
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS {pg_db} WITH (FORCE)"))
            admin.dispose()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
