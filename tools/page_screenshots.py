"""Screenshots of every kind of page, for a person to look at (`make screenshots`).

Same throwaway instance, gunicorn server and network seal as bench/screenshots.py (demo data, nothing leaves
127.0.0.1), in Debian's Chromium through Playwright. The demo's avatars, photos and video poster are its own,
served by the app's /media/ route, so the pages look as a reader sees them. Writes, for `/`, `/offices/lyon` and its second page (the demo's media), `/posts/ID` (ID: the demo
thread's first post), `/login`, `/offline` and a 404 page, at 390x844 (phone, 2x) and 1280x800 (desktop), light
and dark, English and French:

    OUT/post-phone-light-en.png  OUT/feed-desktop-dark-fr.png  …  (56 files)

Run: .venv/bin/python tools/page_screenshots.py [--out screenshots] [--full-page] [--only feed,post]
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))

from lighthouse import CHROMIUM, feedapp_server, get  # noqa: E402
from screenshots import CHROMIUM_ARGS, WAIT_IMAGES_JS, Sealed  # noqa: E402

SIZES = {
    "phone": {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True,
              "has_touch": True},
    "desktop": {"viewport": {"width": 1280, "height": 800}, "device_scale_factor": 1},
}
LOCALES = {"en": "en-US", "fr": "fr-FR"}
# Pages of a signed-in admin (made in the throwaway instance with the CLI): the console and the account page.
ADMIN, ADMIN_PASSWORD = "chief", "screenshots only 42"
SIGNED_IN = {"account": "/account", "console": "/admin/", "console-posts": "/admin/posts", "console-users": "/admin/users",
             "console-audit": "/admin/audit", "console-branding": "/admin/branding", "console-poster": "/admin/poster",
             "console-sources": "/admin/sources", "console-offices": "/admin/offices",
             "console-must-read": "/admin/must-read", "console-survey": "/admin/survey", "console-reach": "/admin/reach",
             "console-screens": "/admin/screens", "feed-staff": "/"}
THREAD_HEAD_RE = re.compile(r'<article class="post" id="p(\d+)"(?:(?!<article class="post").)*?<ol class="thread">', re.S)


def thread_head(base: str) -> str:
    """The id of the first thread's first post on the front page."""
    status, body = get(base + "/")
    match = THREAD_HEAD_RE.search(body.decode())
    if status != 200 or not match:
        raise RuntimeError("the front page shows no thread")
    return match[1]


def older_page(base: str, path: str) -> str:
    """The second page of a feed (where the demo's photos, video, quote and repost are)."""
    _, body = get(base + path)
    match = re.search(r'rel="next" href="([^"]+)"', body.decode())
    if not match:
        raise RuntimeError(f"{path} has no older page")
    return path + match[1].replace("&amp;", "&")


def shoot(browser, base: str, out: Path, name: str, path: str, size: str, scheme: str, lang: str,
          full_page: bool, signed_in: bool = False) -> None:
    """One screenshot, with a line saying what it shows and anything the page complained about."""
    context = browser.new_context(**SIZES[size], color_scheme=scheme, locale=LOCALES[lang], timezone_id="UTC",
                                  service_workers="block")
    seal = Sealed(base)
    context.route("**/*", seal)  # the demo's pictures come from our own /media/ route: no other host is needed
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    if signed_in:
        page.goto(base + "/login")
        page.fill("#username", ADMIN)
        page.fill("#password", ADMIN_PASSWORD)
        page.locator("form.form button[type=submit]").click()
        page.wait_for_url(lambda url: "/login" not in url)
    response = page.goto(base + path, wait_until="networkidle")
    page.evaluate(WAIT_IMAGES_JS)
    target = out / f"{name}-{size}-{scheme}-{lang}.png"
    page.screenshot(path=target, full_page=full_page)
    width = page.evaluate("() => document.documentElement.scrollWidth")
    print(f"{target}: {path} -> HTTP {response.status}, page width {width} CSS px"
          + (f", BLOCKED {seal.blocked}" if seal.blocked else "") + "".join(f"\n  {p}" for p in problems))
    context.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("screenshots"), help="folder for the PNG files")
    parser.add_argument("--only", default="", help="comma-separated page names (feed, lyon, lyon-older, post, login, offline, error, "
                             "account, console, console-posts, console-users, console-audit, feed-staff)")
    parser.add_argument("--full-page", action="store_true", help="the whole page, not only the first screen")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the server and the browser on the way out
    from playwright.sync_api import sync_playwright

    args.out.mkdir(parents=True, exist_ok=True)
    users = ((["users", "add", ADMIN, "--role", "admin", "--office", "lyon"], ""),
             (["users", "set-password", ADMIN], ADMIN_PASSWORD + "\n"),
             # A pin and a shout-out on the front page, as a comms team would leave them (the demo's own ids).
             (["posts", "pin", "2125696844824289283"], ""), (["posts", "highlight", "2125828906680713221"], ""),
             # A must-read, the survey and a break-room screen, so their cards and console pages have something.
             (["posts", "must-read", "2125582931720052743"], ""),
             (["survey", "start", "Would you follow one account for all company news?", "--option", "Yes",
               "--option", "No", "--option", "Not sure"], ""),
             (["screens", "add", "Lyon break room", "--office", "lyon"], ""))
    with feedapp_server(commands=users) as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            pages = {"feed": "/", "lyon": "/offices/lyon", "lyon-older": older_page(base, "/offices/lyon"), "post": f"/posts/{thread_head(base)}", "login": "/login",
                     "offline": "/offline", "error": "/posts/1"}
            only = set(filter(None, args.only.split(",")))
            for name, path in [*pages.items(), *SIGNED_IN.items()]:
                if only and name not in only:
                    continue
                for size in SIZES:
                    for scheme in ("light", "dark"):
                        for lang in LOCALES:
                            shoot(browser, base, args.out, name, path, size, scheme, lang, args.full_page,
                                  signed_in=name in SIGNED_IN)
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
