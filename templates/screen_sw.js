/* feedapp's break-room screen worker (/screen/sw.js, scope /screen/): a screen that reloads or reboots while the
   server or the network is down shows its last good posts, marked offline, instead of the browser's error page.

   The page works without it (some players have no service worker) and registers it when it can. For /screen/ pages
   it wins over the site's /sw.js (scope /): the most specific scope controls a page (SW spec, "Match Service Worker
   Registration"). Network first for the page and posts.json, so online nothing changes; their last good copies are
   kept per screen, with the images it showed (bounded), and all of that goes as soon as the app says the screen is
   gone (the page's 404, posts.json's {"gone":true}): a removed screen never comes back from here. */
"use strict";
const VERSION = {{ version|tojson }};
const ASSETS = "screen-assets-" + VERSION;
const ASSET_FILES = {{ assets|tojson }}; // fingerprinted stylesheet and script, icon, logo: their URL names their bytes
const ASSET_PATHS = new Set(ASSET_FILES);
const TOKEN = "([A-Za-z0-9_-]{1,100})"; // feedapp.web.screens: tokens are URL-safe base64 (no ".": never "sw.js")
const PAGE_RE = new RegExp("^/screen/" + TOKEN + "$");
const POSTS_RE = new RegExp("^/screen/" + TOKEN + "/posts\\.json$");
const QR_RE = new RegExp("^/screen/" + TOKEN + "/qr/[0-9]+\\.svg$");
// The page's posts (templates/screen.html): JSON with no "<" in it, so the first "</script>" ends it.
const DATA_RE = /(<script type="application\/json" id="screen-data">)[^<]*(<\/script>)/;
const SAVED_AT = "X-Screen-Saved-At";
const NETWORK_TIMEOUT_MS = 10000; // a network that swallows packets: the saved page rather than a blank wall
const MAX_IMAGES = 80; // photos and QR codes of one screen: 28 posts at most, each twice over

const savedCache = (token) => "screen-saved-" + token; // its page and posts.json
const imageCache = (token) => "screen-images-" + token;
const pageKey = (token) => "/screen/" + token; // with or without ?r=VERSION (a deploy's reload), one page
const postsKey = (token) => "/screen/" + token + "/posts.json";

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(ASSETS).then((cache) => cache.addAll(ASSET_FILES)).then(() => self.skipWaiting()));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    const names = await caches.keys();
    await Promise.all(names.filter((n) => n.startsWith("screen-assets-") && n !== ASSETS).map((n) => caches.delete(n)));
    await self.clients.claim();
    // The page that registered this worker loaded before it: saved now, or a reboot before its next reload
    // (weeks away, on a wall) would find nothing.
    const pages = await self.clients.matchAll({ type: "window" });
    await Promise.all(pages.map((client) => new URL(client.url).pathname.match(PAGE_RE)).filter(Boolean)
      .map((match) => savePage(match[1]).catch(() => undefined)));
  })());
});

async function savePage(token) {
  const response = await fetch(pageKey(token), { cache: "no-store", credentials: "omit", redirect: "error" });
  if (response.status === 404 || response.status === 410) await forget(token);
  else if (response.ok) await keep(token, pageKey(token), response);
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  // Other origins (X's images with FEEDAPP_MEDIA_PROXY off) are the browser's: opaque here, and outside this
  // worker's CSP. So is the page's own check before a deploy's reload (a fetch, not a navigation): it must see
  // the network, never a saved copy.
  if (url.origin !== self.location.origin) return;
  let match;
  if (request.mode === "navigate" && (match = url.pathname.match(PAGE_RE))) {
    event.respondWith(page(event, match[1]));
  } else if ((match = url.pathname.match(POSTS_RE))) {
    event.respondWith(posts(request, match[1]));
  } else if (ASSET_PATHS.has(url.pathname)) {
    event.respondWith(caches.open(ASSETS).then((cache) => cache.match(request)).then((hit) => hit || fetch(request)));
  } else if (request.destination === "image") {
    event.respondWith(image(event, url));
  }
});

function forget(token) {
  return Promise.all([caches.delete(savedCache(token)), caches.delete(imageCache(token))]);
}

async function keep(token, key, response) {
  const headers = new Headers(response.headers);
  headers.set(SAVED_AT, new Date().toISOString());
  const body = await response.text();
  // Only the screen's own page: a filtering proxy's or captive portal's 200 must not replace the last good copy.
  if (key === pageKey(token) && !DATA_RE.test(body)) return;
  await (await caches.open(savedCache(token))).put(key, new Response(body, { status: 200, headers }));
}

async function page(event, token) {
  const network = fetch(event.request);
  network.catch(() => undefined); // awaited below, or not at all once the saved copy answered
  const timeout = new Promise((resolve) => setTimeout(resolve, NETWORK_TIMEOUT_MS));
  let response;
  try {
    response = await Promise.race([network, timeout]);
  } catch (error) { /* down: the saved copy */ }
  if (response) {
    if (response.status === 404 || response.status === 410) {
      await forget(token); // removed (or never was): nothing of it is shown again
      return response;
    }
    if (response.ok && response.type === "basic" && !response.redirected) {
      event.waitUntil(keep(token, pageKey(token), response.clone()));
      return response;
    }
    if (response.status < 500) return response;
  }
  const saved = await savedCopy(token);
  if (saved) return saved;
  return response || network; // nothing saved: the server's own error, or the browser's
}

// The saved page, its posts replaced by posts.json's when that copy is newer (the page may be weeks older than the
// posts it last showed), marked for static/screen.js: data-saved on <body> says it is a copy, and from when.
async function savedCopy(token) {
  const cache = await caches.open(savedCache(token));
  const saved = await cache.match(pageKey(token));
  if (!saved) return null;
  let html = await saved.text();
  let at = saved.headers.get(SAVED_AT) || "";
  const posts = await cache.match(postsKey(token));
  const postsAt = posts ? posts.headers.get(SAVED_AT) || "" : "";
  if (posts && postsAt > at && DATA_RE.test(html)) { // ISO 8601 times in UTC sort as text
    // As feedapp.web.screens.script_json escapes it: nothing in the JSON can end the script element.
    const json = (await posts.text()).replace(/[<>&\u2028\u2029]/g,
      (c) => "\\u" + c.charCodeAt(0).toString(16).padStart(4, "0"));
    const etag = (posts.headers.get("ETag") || "").replace(/[^0-9a-f]/g, "");
    html = html.replace(DATA_RE, (all, open, close) => open + json + close) // a function: no "$&" patterns
      .replace(/ data-etag="[0-9a-f]*"/, ' data-etag="' + etag + '"');
    at = postsAt;
  }
  html = html.replace("<body>", '<body data-saved="' + at.replace(/[^0-9TZ:.-]/g, "") + '">');
  const headers = new Headers(saved.headers); // the page's own CSP and framing rules with it
  headers.delete("Content-Length");
  headers.delete("Content-Encoding");
  return new Response(html, { status: 200, headers });
}

// Straight to the network, as the page asked (If-None-Match, no redirects): a failure reaches the page, which marks
// itself offline and keeps what it shows. A 200 of the screen's shape is kept; the app's "gone" drops everything.
async function posts(request, token) {
  const response = await fetch(request);
  if (response.status === 404) {
    const data = await response.clone().json().catch(() => null);
    if (data && data.gone === true) await forget(token);
  } else if (response.status === 200 && response.type === "basic" && !response.redirected) {
    const copy = response.clone();
    const body = await copy.clone().text();
    if (shaped(body)) await keep(token, postsKey(token), copy);
  }
  return response;
}

// The shape posts.json has (a captive portal's JSON answering 200 must not become the offline copy);
// static/screen.js checks every post as well.
function shaped(body) {
  try {
    const data = JSON.parse(body);
    return Array.isArray(data.posts) && Array.isArray(data.order) &&
      data.order.every((i) => Number.isInteger(i) && i >= 0 && i < data.posts.length);
  } catch (error) {
    return false;
  }
}

// Photos (our own /media/ URLs) and QR codes: their URL names their content, so the saved one while there is one.
async function image(event, url) {
  const token = await screenOf(event, url);
  if (!token) return fetch(event.request);
  const cache = await caches.open(imageCache(token));
  const hit = await cache.match(event.request);
  if (hit) return hit;
  const response = await fetch(event.request);
  if (response.ok && response.type === "basic") {
    await cache.delete(event.request);
    await cache.put(event.request, response.clone());
    const keys = await cache.keys(); // oldest first
    await Promise.all(keys.slice(0, Math.max(0, keys.length - MAX_IMAGES)).map((key) => cache.delete(key)));
  }
  return response;
}

// The screen an image is for: a QR code names it; a photo's is the page's that asked (screens send no Referer).
async function screenOf(event, url) {
  const qr = url.pathname.match(QR_RE);
  if (qr) return qr[1];
  const client = event.clientId ? await self.clients.get(event.clientId) : null;
  const match = client ? new URL(client.url).pathname.match(PAGE_RE) : null;
  return match ? match[1] : null;
}
