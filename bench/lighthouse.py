"""Lighthouse (mobile, simulated throttling) on feedapp's demo feed, served by gunicorn on 127.0.0.1.

Sets up a throwaway instance (SQLite in a temp dir as FEEDAPP_INSTANCE_PATH: `flask db upgrade`, `demo`, `assets`,
translations compiled), starts gunicorn on a free 127.0.0.1 port, installs Lighthouse into bench/node_modules when it
is missing (`npm ci --prefix bench`, the version pinned in bench/package.json), runs it with Debian's Chromium against
`/` and writes bench/out/lighthouse.json. Prints the category scores, every failing audit, the metrics and the first
view (transfer size of the document + CSS + JS, images excluded) against targets: performance >= 98,
accessibility 100, best practices 100, first view <= 14 KB. A benchmark, not a gate: always exits 0.

Nothing leaves the machine. Chromium gets `--proxy-server=http://127.0.0.1:9` (a closed port) so any request to another
host fails at once; Lighthouse runs with error reporting off. The demo company's avatars, photos and video poster are
bundled (feedapp/demo/media/) and served by the app's own /media/ route, so the page under test needs no other host:
the script checks that every image the page names is a /media/ URL and prints any image that did not load.

Run from anywhere:
  .venv/bin/python bench/lighthouse.py [--path /offices/lyon] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import html
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUT = BENCH / "out"
CHROMIUM = "/usr/bin/chromium"
LIGHTHOUSE = BENCH / "node_modules/.bin/lighthouse"
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never a proxy: 127.0.0.1 only
CHROME_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=127.0.0.1"]
TARGETS = {"performance": 98, "accessibility": 100, "best-practices": 100}
FIRST_VIEW_KB = 14
FIRST_VIEW_TYPES = ("Document", "Stylesheet", "Script")
METRICS = ("first-contentful-paint", "largest-contentful-paint", "total-blocking-time", "cumulative-layout-shift",
           "speed-index", "interactive")


# ---------------------------------------------------------------- the app: temp instance + gunicorn

def app_env(instance: Path) -> dict:
    """The environment of every flask/gunicorn command: the temp instance, no X credentials (demo data only)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEEDAPP_")}
    env.update(FEEDAPP_INSTANCE_PATH=str(instance), FEEDAPP_DATABASE_URL=f"sqlite:///{instance / 'feedapp.db'}",
               FEEDAPP_LOG_LEVEL="WARNING", NO_PROXY="127.0.0.1,localhost")
    return env


def setup_instance(instance: Path) -> dict:
    """db upgrade, demo data, static assets (under the lock the test suite uses), translations; returns the env."""
    env = app_env(instance)
    flask = [str(ROOT / ".venv/bin/flask"), "--app", "feedapp"]
    def run(cmd: list[str]) -> None:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd[-3:])} exited {proc.returncode}:\n{(proc.stdout + proc.stderr)[-2000:]}")

    run(flask + ["db", "upgrade"])
    run(flask + ["demo"])
    with open(ROOT / ".assets.lock", "w") as lock:  # pytest-xdist workers and other runs share static/dist/
        fcntl.flock(lock, fcntl.LOCK_EX)
        run(flask + ["assets"])
        run([str(ROOT / ".venv/bin/pybabel"), "-q", "compile", "-d", "translations"])
    return env


def free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        return sock.getsockname()[1]


def get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    try:
        with OPENER.open(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.request.HTTPError as e:
        return e.code, e.read()


def stop(proc: subprocess.Popen) -> None:
    """Stop a process this script started in its own session (gunicorn's master takes its workers along)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


@contextlib.contextmanager
def feedapp_server(keep: bool = False, commands: tuple[tuple[list[str], str], ...] = ()) -> Iterator[str]:
    """A temp instance with the demo data served by gunicorn on a free 127.0.0.1 port; yields its base URL.

    commands: more `flask --app feedapp` commands (arguments, standard input) run before it starts.
    """
    tmp = Path(tempfile.mkdtemp(prefix="feedapp-bench-"))
    proc = log = None
    try:
        env = setup_instance(tmp)
        for arguments, stdin in commands:
            subprocess.run([str(ROOT / ".venv/bin/flask"), "--app", "feedapp", *arguments], cwd=ROOT, env=env,
                           input=stdin, text=True, capture_output=True, check=True)
        port = free_port()
        env["FEEDAPP_BASE_URL"] = f"http://127.0.0.1:{port}"  # the web app needs its public address
        log = open(tmp / "gunicorn.log", "wb")
        cmd = [str(ROOT / ".venv/bin/gunicorn"), "-c", "gunicorn.conf.py", "-b", f"127.0.0.1:{port}", "wsgi:app"]
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError):
                if get(base + "/healthz", 2)[0] == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not become ready:\n" + (tmp / "gunicorn.log").read_text()[-3000:])
            time.sleep(0.1)
        yield base
    finally:
        if proc:
            stop(proc)
        if log:
            log.close()
            bad = [ln for ln in (tmp / "gunicorn.log").read_text(errors="replace").splitlines()
                   if re.search(r"Traceback|ERROR|CRITICAL|Exception|TIMEOUT", ln)]
            print(f"gunicorn log: {len(bad)} error lines" + "".join(f"\n  {ln}" for ln in bad[:5]))
        if keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- the page's images

IMAGE_ATTR_RE = re.compile(r'<(?:img\b[^>]*?\ssrc|video\b[^>]*?\sposter)="([^"]*)"')


def check_images(base: str, path: str) -> None:
    """Every picture the page names (lazy ones too) is ours under /media/ and answers 200; prints what is not."""
    status, body = get(base + path)
    if status != 200:
        raise RuntimeError(f"{path} answered {status}")
    urls = sorted({html.unescape(u) for u in IMAGE_ATTR_RE.findall(body.decode(errors="replace"))})
    foreign = [u for u in urls if not u.startswith("/media/")]
    broken = [(u, code) for u in urls if u.startswith("/media/") and (code := get(base + u)[0]) != 200]
    print(f"images named by {path}: {len(urls)}, from /media/: {len(urls) - len(foreign)}, "
          f"answering 200: {len(urls) - len(foreign) - len(broken)}")
    for url in foreign:
        print(f"  NOT OURS {url[:120]}")
    for url, code in broken:
        print(f"  BROKEN {url[:120]} (status {code})")


# ---------------------------------------------------------------- Lighthouse

def ensure_lighthouse() -> None:
    """npm-install the pinned Lighthouse into bench/node_modules when it is missing."""
    if LIGHTHOUSE.exists():
        return
    npm = ["--prefix", str(BENCH), "--no-audit", "--no-fund"]
    print("installing Lighthouse: npm ci --prefix bench", flush=True)
    if subprocess.run(["npm", "ci", *npm]).returncode != 0:
        # A dependency of Lighthouse asks for another package's dist-tag "latest" (@paulirish/trace_engine wants
        # third-party-web@latest); when that tag moves, `npm ci` calls the lock file out of sync. `npm install`
        # keeps the pinned versions and adds the newer tagged one beside them.
        print("npm ci refused the lock file; falling back to: npm install --prefix bench", flush=True)
        subprocess.run(["npm", "install", *npm], check=True)


def run_lighthouse(url: str, out: Path, log: Path) -> dict:
    cmd = [str(LIGHTHOUSE), url, "--output=json", f"--output-path={out}", f"--chrome-flags={' '.join(CHROME_FLAGS)}",
           "--form-factor=mobile", "--no-enable-error-reporting"]
    env = {**os.environ, "CHROME_PATH": CHROMIUM, "NO_PROXY": "127.0.0.1,localhost"}
    with open(log, "wb") as fh:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, stdout=fh, stderr=subprocess.STDOUT, timeout=300)
    if proc.returncode != 0 or not out.exists():
        raise RuntimeError(f"lighthouse exited {proc.returncode}:\n" + log.read_text(errors="replace")[-3000:])
    return json.loads(out.read_text())


def failing(report: dict) -> list[tuple[str, str, dict]]:
    """(category, audit id, audit) of every scored audit below Lighthouse's pass mark (0.9; binary audits: 1)."""
    rows, seen = [], set()
    for cat_id, cat in report["categories"].items():
        for ref in cat["auditRefs"]:
            audit = report["audits"][ref["id"]]
            if ref["id"] in seen or audit.get("scoreDisplayMode") in ("notApplicable", "informative", "manual"):
                continue
            score = audit.get("score")
            if score is not None and score < (1 if audit.get("scoreDisplayMode") == "binary" else 0.9):
                seen.add(ref["id"])
                rows.append((cat_id, ref["id"], {**audit, "weight": ref.get("weight", 0)}))
    return rows


def item_line(item: dict) -> str:
    """One line about one detail item of an audit (an element, a URL, a console message...)."""
    node = item.get("node") if isinstance(item.get("node"), dict) else {}
    sizes = ", ".join(f"{k} {item[k]}" for k in ("displayedSize", "actualSize", "expectedSize") if item.get(k))
    parts = [node.get("selector"), item.get("source"), item.get("description"), item.get("url"), sizes,
             item.get("explanation") or node.get("explanation")]
    text = " | ".join(str(p) for p in parts if p)
    return re.sub(r"\s+", " ", text)[:300]


def report_on(report: dict) -> None:
    cats = report["categories"]
    print(f"lighthouse {report.get('lighthouseVersion')} on {report.get('finalDisplayedUrl')} "
          f"({report['configSettings']['formFactor']}, throttling {report['configSettings']['throttlingMethod']}), "
          f"{report.get('environment', {}).get('hostUserAgent', '').split(' ')[-2]}")
    for cat_id in ("performance", "accessibility", "best-practices", "seo"):
        score = cats[cat_id]["score"]
        shown = "n/a" if score is None else round(score * 100)
        target = TARGETS.get(cat_id)
        verdict = "" if target is None or score is None else (
            f" (target >= {target}) {'PASS' if round(score * 100) >= target else 'FAIL'}")
        print(f"score {cat_id}: {shown}{verdict}")
    for metric in METRICS:
        audit = report["audits"].get(metric)
        if audit:
            print(f"metric {metric}: {audit.get('displayValue', '')} (score {audit.get('score')})")
    rows = failing(report)
    print(f"failing audits: {len(rows)}")
    for cat_id, audit_id, audit in rows:
        shown = f"{audit['score']:.2f}" if isinstance(audit.get("score"), float) else audit.get("score")
        value = f" [{audit['displayValue']}]" if audit.get("displayValue") else ""
        weight = f"weight {audit['weight']:g}" if audit["weight"] else "no weight in the score"
        print(f"  FAIL {cat_id}/{audit_id}: {audit['title']} (score {shown}, {weight}){value}")
        for item in (audit.get("details") or {}).get("items", [])[:5]:
            line = item_line(item) if isinstance(item, dict) else ""
            if line:
                print(f"       - {line}")
    for wid, audit in report["audits"].items():  # Lighthouse's own warnings (e.g. about the run itself)
        for warning in audit.get("warnings") or []:
            print(f"  warning {wid}: {warning}")
    for warning in report.get("runWarnings", []):
        print(f"  run warning: {warning}")


def first_view(report: dict, origin: str) -> float:
    """Bytes on the wire (headers + compressed body) of the page's own document, CSS and JS; prints each."""
    items = report["audits"]["network-requests"]["details"]["items"]
    total, other = 0, []
    for item in items:
        same = item["url"].startswith(origin + "/")
        if same and item.get("resourceType") in FIRST_VIEW_TYPES:
            total += item.get("transferSize", 0)
            print(f"first_view {item['resourceType']:<10} {item.get('transferSize', 0):>6} B  "
                  f"{item['url'][len(origin):]}  (status {item.get('statusCode')})")
        else:
            other.append(item)
    for item in other:
        url = item["url"] if not item["url"].startswith(origin) else item["url"][len(origin):]
        print(f"also fetched {item.get('resourceType', '?'):<10} {item.get('transferSize', 0):>6} B  {url[:90]}"
              f"  (status {item.get('statusCode')}{', failed' if item.get('statusCode', 0) <= 0 else ''})")
    kb = total / 1024
    print(f"first_view_kb: {kb:.2f} (target <= {FIRST_VIEW_KB}) {'PASS' if kb <= FIRST_VIEW_KB else 'FAIL'}")
    return kb


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--path", default="/", help="page to audit (default /)")
    p.add_argument("--output", type=Path, default=OUT / "lighthouse.json")
    p.add_argument("--keep", action="store_true", help="keep the temp instance (database, logs)")
    return p.parse_args()


def main() -> int:
    args = parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the clean-ups below
    OUT.mkdir(parents=True, exist_ok=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    begin = time.perf_counter()
    try:
        if not os.access(CHROMIUM, os.X_OK):
            print(f"{CHROMIUM} is missing: `make browser` (apt-get install chromium)")
            return 0
        ensure_lighthouse()
        with feedapp_server(args.keep) as base, tempfile.TemporaryDirectory(prefix="lighthouse-") as work:
            check_images(base, args.path)
            report = run_lighthouse(base + args.path, args.output, Path(work) / "lighthouse.log")
            report_on(report)
            first_view(report, base)
            print(f"report: {args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output}")
    except Exception as exc:  # a benchmark: say what broke, exit 0
        print(f"ERROR: {type(exc).__name__}: {exc}")
    print(f"total_s: {time.perf_counter() - begin:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
