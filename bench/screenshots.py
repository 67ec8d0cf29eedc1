"""Phone screenshots of feedapp's demo feed in Debian's Chromium (Playwright), for a person to look at.

Same throwaway instance and gunicorn server as bench/lighthouse.py (SQLite in a temp dir, demo data, assets), then
a 390x844 CSS px phone (device scale factor 2, mobile viewport, touch) takes:
  bench/out/feed-light.png  /              light colour scheme, en-US
  bench/out/feed-dark.png   /              dark colour scheme, en-US
  bench/out/feed-fr.png     /offices/lyon  light, fr-FR (Accept-Language picks French)
(with --full-page also the whole page as *-full.png). The demo's avatars, photos and video poster are bundled and come
from the app's own /media/ route, so nothing else is needed: each context aborts (and reports) every request to another
host, and the launch flags send what a route cannot see to a closed local port, so nothing leaves 127.0.0.1. Each
line says how many images the screen shows and names any that did not load. Service workers are blocked (their own
fetches would bypass the routes; a first visit is what is shown).
Fonts are the machine's (DejaVu Sans here, wider than a phone's Roboto or SF, so text wraps a little earlier).
A look, not a gate: exits 0 unless the server or the browser cannot start.

Run from anywhere:
  .venv/bin/python bench/screenshots.py [--full-page]
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from lighthouse import CHROMIUM, OUT, ROOT, feedapp_server  # noqa: E402

# As tests/browser.py launches it: headless, and whatever no route sees goes to a closed local port.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=127.0.0.1",
]
PHONE = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True,
         "timezone_id": "UTC", "service_workers": "block"}
SHOTS = [  # file, path, colour scheme, locale
    ("feed-light.png", "/", "light", "en-US"),
    ("feed-dark.png", "/", "dark", "en-US"),
    ("feed-fr.png", "/offices/lyon", "light", "fr-FR"),
]
WAIT_IMAGES_JS = """() => Promise.all([...document.images]
  .filter(i => i.getBoundingClientRect().top < innerHeight * 2)
  .map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })))"""
# Images of the first two screens (those WAIT_IMAGES_JS waited for): how many, and the ones with no picture.
IMAGES_JS = """() => { const near = [...document.images].filter(i => i.getBoundingClientRect().top < innerHeight * 2);
  return {count: near.length, broken: near.filter(i => !i.naturalWidth).map(i => i.getAttribute('src'))}; }"""


class Sealed:
    """Route handler: the app's origin passes; anything else is aborted and remembered."""

    def __init__(self, origin: str):
        self.origin, self.blocked = origin, []

    def __call__(self, route) -> None:
        """Let one request through to the app, or abort it."""
        parts = urlsplit(route.request.url)
        if f"{parts.scheme}://{parts.netloc}" == self.origin:
            route.continue_()
        else:
            self.blocked.append(route.request.url)
            route.abort("blockedbyclient")


def shoot(browser, base: str, name: str, path: str, scheme: str, locale: str, full_page: bool) -> None:
    context = browser.new_context(**PHONE, color_scheme=scheme, locale=locale)
    seal = Sealed(base)
    context.route("**/*", seal)
    page = context.new_page()
    problems = []
    page.on("console", lambda m: problems.append(f"console.{m.type}: {m.text}")
            if m.type in ("error", "warning") and "blocked by Playwright" not in m.text else None)  # we block SWs
    page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
    response = page.goto(base + path, wait_until="networkidle")
    page.evaluate(WAIT_IMAGES_JS)
    images = page.evaluate(IMAGES_JS)
    target = OUT / name
    page.screenshot(path=target)
    if full_page:
        page.screenshot(path=target.with_name(target.stem + "-full.png"), full_page=True)
    info = page.evaluate("""() => ({lang: document.documentElement.lang, title: document.title,
        height: document.documentElement.scrollHeight, width: document.documentElement.scrollWidth})""")
    print(f"{target.relative_to(ROOT)}: {path} {scheme} {locale} -> HTTP {response.status}, lang={info['lang']}, "
          f"title={info['title']!r}, page {info['width']}x{info['height']} CSS px, {images['count']} images"
          + (f", NOT LOADED {images['broken']}" if images["broken"] else "")
          + (f", BLOCKED {seal.blocked}" if seal.blocked else ""))
    for problem in problems:
        print(f"  {problem}")
    context.close()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--full-page", action="store_true", help="also save the whole page as *-full.png")
    args = p.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the server and the browser on the way out
    from playwright.sync_api import sync_playwright

    OUT.mkdir(parents=True, exist_ok=True)
    with feedapp_server() as base, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for name, path, scheme, locale in SHOTS:
                shoot(browser, base, name, path, scheme, locale, args.full_page)
        finally:
            browser.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
