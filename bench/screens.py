"""Screenshots of a break-room screen (/screen/TOKEN) in Debian's Chromium, both ways round, for a person to look at.

A throwaway instance with the demo data (bench/lighthouse.py's set-up), one staff-only screen of the Lyon office made
with `screens add`, a post with a photo pinned, served by gunicorn with FEEDAPP_SCREEN_SECONDS=1; Playwright's clock moves the
rotation on to each chosen post and holds it there. Writes, at device scale factor 1:
  bench/out/screen-landscape-photo.png  1920x1080  the pinned post with its photo
  bench/out/screen-landscape-text.png   1920x1080  the longest post without a photo
  bench/out/screen-portrait-photo.png   1080x1920
  bench/out/screen-portrait-text.png    1080x1920
Each line says the post's font size, whether its text was cut, and whether anything overflows. Nothing leaves
127.0.0.1 (as bench/screenshots.py). A look, not a gate: exits 0 unless the server or the browser cannot start.

  .venv/bin/python bench/screens.py      (or `make screens-screenshots`)
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lighthouse import CHROMIUM, OUT, ROOT, free_port, get, setup_instance, stop  # noqa: E402
from screenshots import CHROMIUM_ARGS, Sealed  # noqa: E402

FLASK = [str(ROOT / ".venv/bin/flask"), "--app", "feedapp"]
SIZES = {"landscape": {"width": 1920, "height": 1080}, "portrait": {"width": 1080, "height": 1920}}
# What the test suite checks too: every element inside the viewport, the text inside its box.
LAYOUT_JS = """() => {
  const text = document.getElementById('text');
  const outside = [...document.querySelectorAll('#screen *')].filter(e => {
    const r = e.getBoundingClientRect();
    return r.width && (r.right > innerWidth + 0.5 || r.bottom > innerHeight + 0.5 || r.left < -0.5 || r.top < -0.5);
  }).map(e => e.id || e.className);
  return {font: getComputedStyle(text).fontSize, cut: !document.getElementById('more').hidden,
          overflow: text.scrollHeight > text.clientHeight + 1, outside};
}"""


@contextlib.contextmanager
def screen_server():
    """The demo instance with one screen, served by gunicorn; yields (base URL, screen path)."""
    tmp = Path(tempfile.mkdtemp(prefix="feedapp-screens-"))
    proc = None
    try:
        env = setup_instance(tmp)
        env.update(FEEDAPP_SCREEN_SECONDS="1", FEEDAPP_SCREEN_REFRESH="60")

        def flask(*args: str) -> str:
            return subprocess.run(FLASK + list(args), cwd=ROOT, env=env, capture_output=True, text=True,
                                  check=True).stdout

        port = free_port()
        env["FEEDAPP_BASE_URL"] = base = f"http://127.0.0.1:{port}"
        added = flask("screens", "add", "Lyon break room", "--office", "lyon", "--staff-only")
        path = re.search(r"/screen/[A-Za-z0-9_-]+", added)[0]
        log = open(tmp / "gunicorn.log", "wb")
        cmd = [str(ROOT / ".venv/bin/gunicorn"), "-c", "gunicorn.conf.py", "-b", f"127.0.0.1:{port}", "wsgi:app"]
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError):
                if get(base + "/healthz", 2)[0] == 200:
                    break
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("gunicorn did not become ready:\n" + (tmp / "gunicorn.log").read_text()[-3000:])
            time.sleep(0.1)
        # Pin the first post with a photo (of the company, else of Lyon) so the pinned badge shows too.
        photo = next(p for p in json.loads(get(base + path + "/posts.json")[1])["posts"] if p["image"])
        try:
            flask("posts", "pin", str(photo["id"]))
        except subprocess.CalledProcessError:
            flask("posts", "pin", str(photo["id"]), "--office", "lyon")
        yield base, path
    finally:
        if proc:
            stop(proc)
        shutil.rmtree(tmp, ignore_errors=True)


def chosen_posts(base: str, path: str) -> dict[str, int]:
    """The pinned post with a photo, and the longest post without one."""
    posts = json.loads(get(base + path + "/posts.json")[1])["posts"]
    photo = next(p for p in posts if p["image"])
    text = max((p for p in posts if not p["image"]), key=lambda p: len(p["text"]))
    return {"photo": photo["id"], "text": text["id"]}


def shoot(browser, base: str, path: str, orientation: str, kind: str, post_id: int) -> None:
    context = browser.new_context(viewport=SIZES[orientation], device_scale_factor=1, locale="en-US",
                                  timezone_id="UTC", reduced_motion="reduce", service_workers="block")
    seal = Sealed(base)
    context.route("**/*", seal)
    # A player without a service worker: the worker's requests would pass the seal's route unseen, and a
    # blocked registration only warns.
    context.add_init_script("delete Navigator.prototype.serviceWorker;")
    page = context.new_page()
    problems = []
    page.on("console", lambda m: problems.append(f"console.{m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    page.clock.install()  # the page's timers run only when told: the rotation stops at the chosen post
    page.goto(base + path)
    for _ in range(200):
        if page.get_attribute("#screen", "data-post") == str(post_id):
            break
        page.clock.run_for(500)
    else:
        print(f"  the rotation did not reach post {post_id}: at {page.get_attribute('#screen', 'data-post')} "
              f"after {page.get_attribute('#screen', 'data-rotations')} rotations")
    page.wait_for_function("() => [...document.images].every(i => i.complete)")
    layout = page.evaluate(LAYOUT_JS)
    target = OUT / f"screen-{orientation}-{kind}.png"
    page.screenshot(path=target)
    print(f"{target.relative_to(ROOT)}: post {post_id}, text {layout['font']}, "
          f"{'cut' if layout['cut'] else 'whole'}, {'OVERFLOWS' if layout['overflow'] else 'fits'}"
          + (f", OUTSIDE THE SCREEN {layout['outside']}" if layout["outside"] else "")
          + (f", BLOCKED {seal.blocked}" if seal.blocked else ""))
    for problem in problems:
        print(f"  {problem}")
    context.close()


def main() -> int:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with screen_server() as (base, path), sync_playwright() as pw:
        posts = chosen_posts(base, path)
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for orientation in SIZES:
                for kind, post_id in posts.items():
                    shoot(browser, base, path, orientation, kind, post_id)
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
