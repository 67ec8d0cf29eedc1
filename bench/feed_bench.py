"""Feed-page benchmark: the uncached feed page at 1,000 in-scope sources against 10, same total posts.

One database holds two offices and no company-wide source: office "few" with 10 sources and
office "many" with 1,000, each with --posts posts in all (stored through store_posts, ids
interleaved across the sources). Every GET is `/offices/SLUG?before=ID` with a cursor not asked
before, so each one misses the render cache: routing, the feed query, the template and
compression, through the Flask test client (a WSGI call; no network). The two offices are asked
in turn, so load on the machine weighs on both alike. Printed per engine: ms per page (mean,
median, p95), ms of the feed query alone, SQL statements per page, and the ratio many/few.

Run from anywhere (only 127.0.0.1 is contacted, and only for PostgreSQL):
  .venv/bin/python bench/feed_bench.py [--posts 20000] [--samples 200]
  .venv/bin/python bench/feed_bench.py --postgres   # also on a throwaway db on $FEEDAPP_TEST_POSTGRES
"""

from __future__ import annotations

import argparse
import os
import random
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, event, insert, select, text  # noqa: E402

from feedapp import assets, create_app, queries  # noqa: E402
from feedapp.db import make_engine, make_session_factory  # noqa: E402
from feedapp.db import sessions as app_sessions  # noqa: E402
from feedapp.ingest.store import store_posts  # noqa: E402
from feedapp.migrate import upgrade  # noqa: E402
from feedapp.models import Office, Post, Source  # noqa: E402
from feedapp.queries import posts_for_feed  # noqa: E402
from feedapp.xapi.types import Link, XMedia, XPost, XUser  # noqa: E402

PG_ADMIN_URL = os.environ.get("FEEDAPP_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
EPOCH_MS = 1288834974657  # X's snowflake epoch
AE = {"Accept-Encoding": "gzip, br"}  # what real clients send
WORDS = ("team office launch customer release update partner service data depot energy design week open new "
         "today thanks join read more about our proud share first results pilot project city support").split()
SCOPES = {"few": 10, "many": 1000}
PAGE_SIZE = 21  # what the feed page asks for: 20 posts and one to know there is an older page


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--posts", type=int, default=20_000, help="posts in each office")
    p.add_argument("--samples", type=int, default=200, help="uncached pages per office")
    p.add_argument("--postgres", action="store_true", help=f"also run on a throwaway database on {PG_ADMIN_URL}")
    return p.parse_args()


def make_post(pid: int, src: Source, rng: random.Random) -> XPost:
    """A post like the ones the feed shows: a sentence, a link, a mention, a hashtag, a photo in four."""
    url, tag = f"example.com/news/{pid % 997}", "#" + rng.choice(WORDS)
    body = f"{' '.join(rng.choices(WORDS, k=18)).capitalize()}. Details: {url} {tag}"
    links = (Link(body.index(url), body.index(url) + len(url), "url", f"https://{url}", url),
             Link(body.index(tag), body.index(tag) + len(tag), "hashtag", f"https://x.com/hashtag/{tag[1:]}", tag))
    media = (XMedia(f"3_{pid}", "photo", f"https://pbs.twimg.com/media/G{pid % 10**11:011d}.jpg", None, 2048, 1365,
                   "The team"),) if pid % 4 == 0 else ()
    created = datetime.fromtimestamp(((pid >> 22) + EPOCH_MS) / 1000, timezone.utc)
    return XPost(str(pid), XUser(src.x_id, src.username, src.display_name, src.avatar_url), body, links, media,
                    created, lang="en", conversation_id=str(pid))


def seed(url: str, n_posts: int) -> dict[str, list[int]]:
    """Schema, the two offices, their sources (made directly) and posts (through store_posts); the ids per office."""
    upgrade(url)
    rng, engine = random.Random(42), make_engine(url)
    now_ms = time.time_ns() // 10**6
    ids: dict[str, list[int]] = {}
    with make_session_factory(engine)() as s:
        for slug, n_sources in SCOPES.items():
            office = Office(slug=slug, name=f"Office {slug}")
            s.add(office)
            s.flush()
            s.execute(insert(Source), [
                {"x_id": f"{slug}{i}", "username": f"{slug}_{i}", "display_name": f"{slug.title()} account {i}",
                 "avatar_url": f"https://pbs.twimg.com/profile_images/{i}/a_normal.jpg", "office_id": office.id,
                 "error_count": 0, "staff_only": False, "protected": False} for i in range(n_sources)])
            sources = list(s.scalars(select(Source).where(Source.office_id == office.id).order_by(Source.id)))
            by_source: dict[Source, list[XPost]] = {}
            for k in range(n_posts):  # one post a minute, spread evenly over the sources, interleaved
                ms = now_ms - (n_posts - k) * 60_000 + (1 if slug == "many" else 0)
                src = sources[k % n_sources]
                by_source.setdefault(src, []).append(make_post((ms - EPOCH_MS) << 22 | k % 4096, src, rng))
            for src, posts in by_source.items():
                for start in range(0, len(posts), 500):
                    store_posts(s, src, posts[start:start + 500])
                src.since_id = max(int(p.id) for p in posts)  # what the poller keeps
            s.commit()
            ids[slug] = sorted(s.scalars(select(Post.id).join(Source).where(Source.office_id == office.id)))
    engine.dispose()
    return ids


def measure(url: str, ids: dict[str, list[int]], samples: int, tmp: Path) -> dict[str, dict[str, float]]:
    app = create_app({"FEEDAPP_DATABASE_URL": url, "INSTANCE_PATH": str(tmp / "instance"),
                      "SECRET_KEY": secrets.token_urlsafe(32), "FEEDAPP_SECRET_KEY": secrets.token_urlsafe(32),
                      "FEEDAPP_BASE_URL": "http://127.0.0.1"})
    client, engine = app.test_client(), app_sessions(app).kw["bind"]
    statements = [0]
    event.listen(engine, "before_cursor_execute", lambda *args: statements.__setitem__(0, statements[0] + 1))
    # Distinct cursors spread over each office's posts (the oldest 2% left out: full pages only).
    cursors = {slug: [ids[slug][int(len(ids[slug]) * (0.02 + 0.98 * k / (samples + 10)))]
                      for k in range(samples + 10)] for slug in SCOPES}
    times = {slug: [] for slug in SCOPES}
    counts = {slug: [] for slug in SCOPES}
    for k in range(samples + 10):
        for slug in SCOPES:
            before = statements[0]
            start = time.perf_counter()
            response = client.get(f"/offices/{slug}?before={cursors[slug][k]}", headers=AE)
            elapsed = (time.perf_counter() - start) * 1000
            assert response.status_code == 200, (slug, response.status_code)
            if k >= 10:  # the first ten warm up: statements built, templates compiled, plans prepared
                times[slug].append(elapsed)
                counts[slug].append(statements[0] - before)
    query = {slug: [] for slug in SCOPES}
    office_ids = {}
    with app_sessions(app)() as s:
        office_ids = {slug: s.scalar(select(Office.id).where(Office.slug == slug)) for slug in SCOPES}
        for k in range(samples + 10):
            for slug in SCOPES:
                start = time.perf_counter()
                posts = posts_for_feed(s, office_ids[slug], before=cursors[slug][k], limit=PAGE_SIZE)
                elapsed = (time.perf_counter() - start) * 1000
                assert len(posts) == PAGE_SIZE
                if k >= 10:
                    query[slug].append(elapsed)
    engine.dispose()
    return {slug: {"mean": statistics.fmean(times[slug]), "median": statistics.median(times[slug]),
                   "p95": statistics.quantiles(times[slug], n=20)[18], "query": statistics.median(query[slug]),
                   "statements": statistics.median(counts[slug])} for slug in SCOPES}


def report(label: str, n_posts: int, samples: int, result: dict) -> None:
    for slug, n_sources in SCOPES.items():
        r = result[slug]
        print(f"{label} page_uncached sources={n_sources} posts={n_posts} n={samples}: mean_ms={r['mean']:.2f} "
              f"median_ms={r['median']:.2f} p95_ms={r['p95']:.2f} query_median_ms={r['query']:.2f} "
              f"statements_per_page={r['statements']:.0f}", flush=True)
    many, few = result["many"], result["few"]
    print(f"{label} ratio_1000_over_10: page_median={many['median'] / few['median']:.2f} "
          f"page_mean={many['mean'] / few['mean']:.2f} query_median={many['query'] / few['query']:.2f}", flush=True)


def main() -> int:
    args = parse_args()
    static = ROOT / "static"
    if not assets.is_current(static):  # pages link the fingerprinted files (`flask assets` does the same)
        assets.build(static)
    tmp = Path(tempfile.mkdtemp(prefix="feed-bench-"))
    admin, pg_db = None, None
    try:
        runs = [("sqlite", f"sqlite:///{tmp / 'bench.db'}")]
        if args.postgres:
            admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
            pg_db = f"feedapp_bench_{secrets.token_hex(4)}"
            with admin.connect() as conn:
                conn.execute(text(f'CREATE DATABASE "{pg_db}"'))
            runs.append(("postgresql", admin.url.set(database=pg_db).render_as_string(hide_password=False)))
        for name, url in runs:
            begin = time.perf_counter()
            ids = seed(url, args.posts)
            if name == "postgresql":  # what autovacuum does after a load this size
                with create_engine(url).begin() as conn:
                    conn.execute(text("ANALYZE"))
            print(f"{name}: seeded {len(SCOPES)} offices x {args.posts} posts "
                  f"({' and '.join(str(n) for n in SCOPES.values())} sources) in {time.perf_counter() - begin:.0f} s",
                  flush=True)
            default = queries.RECENT_PAGES
            for path, recent_pages in (("recent", default), ("ranges", 0)):
                queries.RECENT_PAGES = recent_pages
                report(f"{name} path={path}", args.posts, args.samples, measure(url, ids, args.samples, tmp))
            queries.RECENT_PAGES = default
        return 0
    finally:
        if pg_db:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)'))
            admin.dispose()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
