/* feedapp service worker: app shell precache, network-first pages with an offline copy,
   a bounded image cache, and no staff-only page for a reader who signed out. */
"use strict";
const VERSION = {{ version|tojson }};
const SHELL = "shell-" + VERSION;
const PAGES = "pages-public";
const STAFF = "pages-staff";
const MEDIA = "media";
const SHELL_FILES = {{ shell|tojson }};
const OFFLINE_URLS = {{ offline_urls|tojson }}; // language code -> offline page
const LANG_KEY = "/__feedapp/lang"; // the language of the last page seen online, kept in the shell cache
const REMOVED_URL = {{ removed_url|tojson }}; // ids of posts editors hid: dropped from saved pages
const REMOVED_KEY = "/__feedapp/removed"; // the ETag of the last list applied
const NETWORK_TIMEOUT_MS = 4000;
const MAX_PAGES = 20;
const MAX_MEDIA = 150;

self.addEventListener("install", (event) => {
  event.waitUntil(caches.open(SHELL).then((cache) => cache.addAll(SHELL_FILES)));
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    const names = await caches.keys();
    await Promise.all(names.filter((n) => n.startsWith("shell-") && n !== SHELL).map((n) => caches.delete(n)));
    await self.clients.claim();
  })());
});

self.addEventListener("message", (event) => {
  const type = event.data && event.data.type;
  if (type === "SKIP_WAITING") self.skipWaiting();
  if (type === "LOGOUT") event.waitUntil(forgetStaff());
});

function forgetStaff() {
  return Promise.all([caches.delete(STAFF), caches.delete(MEDIA)]);
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (request.mode === "navigate" && url.origin === self.location.origin) {
    event.respondWith(page(event));
  } else if (url.origin === self.location.origin
             && (url.pathname.startsWith("/static/dist/") || url.pathname.startsWith("/brand/"))) {
    // Fingerprinted files (their URL changes with their bytes): the shell's copy while it has one.
    event.respondWith(caches.match(request).then((hit) => hit || fetch(request)));
  } else if (request.destination === "image" && url.origin === self.location.origin) {
    // Our own /media/ images only: their real size counts against the quota. A cross-origin
    // (opaque) response would count as megabytes each in Chromium, so X's CDN images, when
    // FEEDAPP_MEDIA_PROXY is off, are left to the browser's HTTP cache.
    event.respondWith(image(request));
  }
});

async function page(event) {
  const request = event.request;
  const network = fetch(request).then(async (response) => {
    const audience = response.headers.get("X-Feedapp-Audience");
    const lang = response.headers.get("Content-Language");
    if (lang && OFFLINE_URLS[lang]) await caches.open(SHELL).then((c) => c.put(LANG_KEY, new Response(lang)));
    if (audience === "public") await caches.delete(STAFF); // signed out: never show a staff page again
    if (response.ok && response.headers.get("X-Feedapp-Offline") === "page" && audience) {
      await remember(audience === "staff" ? STAFF : PAGES, request, response.clone(), MAX_PAGES);
    }
    return response;
  });
  // Online again: saved pages lose the posts editors hid since (after the page, never delaying it).
  event.waitUntil(network.then(dropRemoved).catch(() => undefined));
  event.waitUntil(network.catch(() => undefined));
  const timeout = new Promise((resolve) => setTimeout(resolve, NETWORK_TIMEOUT_MS));
  try {
    const response = await Promise.race([network, timeout]);
    if (response) return response;
  } catch (error) { /* offline: fall through to the saved copy */ }
  const saved = (await caches.open(STAFF).then((c) => c.match(request))) ||
                (await caches.open(PAGES).then((c) => c.match(request)));
  if (saved) return offlineCopy(saved);
  try {
    return await network; // slow but alive, and nothing saved: wait for it
  } catch (error) {
    const seen = await caches.match(LANG_KEY);
    const lang = seen ? await seen.text() : "";
    return (await caches.match(OFFLINE_URLS[lang] || Object.values(OFFLINE_URLS)[0])) || Response.error();
  }
}

async function remember(name, request, response, limit) {
  const headers = new Headers(response.headers);
  headers.set("X-Feedapp-Saved-At", new Date().toISOString());
  const body = await response.blob();
  const cache = await caches.open(name);
  await cache.delete(request); // re-insert so the newest page is last in keys()
  await cache.put(request, new Response(body, { status: response.status, headers }));
  await trim(cache, limit);
}

async function trim(cache, limit) {
  const keys = await cache.keys(); // insertion order: oldest first
  await Promise.all(keys.slice(0, Math.max(0, keys.length - limit)).map((key) => cache.delete(key)));
}

async function offlineCopy(saved) {
  const savedAt = saved.headers.get("X-Feedapp-Saved-At") || "";
  const html = (await saved.text()).replace("<body>", '<body data-offline-saved="' + savedAt.replace(/[^0-9TZ:.-]/g, "") + '">');
  const headers = new Headers(saved.headers);
  headers.delete("Content-Length");
  headers.delete("Content-Encoding");
  return new Response(html, { status: 200, headers });
}

async function image(request) {
  const cache = await caches.open(MEDIA);
  const hit = await cache.match(request);
  if (hit) return hit;
  const response = await fetch(request);
  if (response.ok && response.type === "basic") {
    await cache.put(request, response.clone());
    await trim(cache, MAX_MEDIA);
  }
  return response;
}

async function dropRemoved() {
  const shell = await caches.open(SHELL);
  const seen = await shell.match(REMOVED_KEY);
  const headers = seen ? { "If-None-Match": await seen.text() } : {};
  const response = await fetch(REMOVED_URL, { headers, cache: "no-store", credentials: "same-origin" });
  if (response.status !== 200) return; // 304: nothing new was hidden
  const ids = (await response.json()).ids || [];
  if (ids.length) {
    const gone = new Set(ids);
    const marks = ids.map((id) => 'id="p' + id + '"');
    for (const name of [PAGES, STAFF]) {
      const cache = await caches.open(name);
      for (const key of await cache.keys()) {
        const match = new URL(key.url).pathname.match(/^\/posts\/(\d+)$/);
        if (match && gone.has(match[1])) { await cache.delete(key); continue; }
        const saved = await cache.match(key);
        const html = saved ? await saved.text() : "";
        if (marks.some((mark) => html.includes(mark))) await cache.delete(key);
      }
    }
  }
  const etag = response.headers.get("ETag");
  if (etag) await shell.put(REMOVED_KEY, new Response(etag));
}

// --- Web Push (Push API; payloads per RFC 8291): must-read posts --------------------------------------------------
const NOTIFY = {{ notification|tojson }}; // icon, badge, and per language the text for a push we cannot read
const MAX_TEXT = 500;

self.addEventListener("push", (event) => {
  // Every push must show a notification (we subscribe with userVisibleOnly): one we cannot read included,
  // or Chrome shows its own "This site has been updated in the background" and may cut the site off.
  event.waitUntil(notify(event.data));
});

async function notify(data) {
  let message = null;
  try { message = data ? data.json() : null; } catch (error) { /* not JSON: the generic line below */ }
  const generic = await genericText();
  const ok = message && typeof message === "object" && typeof message.title === "string" && message.title.trim();
  const text = (value) => (typeof value === "string" ? value.slice(0, MAX_TEXT) : "");
  const options = {
    body: ok ? text(message.body) : generic.body,
    data: { url: sameOrigin(ok && message.url) },
    icon: NOTIFY.icon,
    badge: NOTIFY.badge,
    requireInteraction: false,
  };
  if (ok && typeof message.tag === "string" && message.tag) options.tag = message.tag.slice(0, 100);
  if (ok && typeof message.lang === "string" && /^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$/.test(message.lang)) {
    options.lang = message.lang;
  }
  if (ok && ["ltr", "rtl", "auto"].includes(message.dir)) options.dir = message.dir;
  return self.registration.showNotification(ok ? text(message.title) : generic.title, options);
}

async function genericText() {
  const seen = await caches.match(LANG_KEY); // the language of the last page seen online
  const lang = seen ? await seen.text() : "";
  return NOTIFY.generic[lang] || Object.values(NOTIFY.generic)[0];
}

// Only a page of this site: a push (or a bug) naming another site opens the site's root instead.
function sameOrigin(url) {
  try {
    const target = typeof url === "string" && url ? new URL(url, self.location.origin) : null;
    if (target && target.origin === self.location.origin) return target.href;
  } catch (error) { /* not a URL */ }
  return new URL("/", self.location.origin).href;
}

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  event.waitUntil(openPage(sameOrigin(event.notification.data && event.notification.data.url)));
});

// A tab of the site already open: take it to the post and bring it forward; else a new window (both allowed
// only while handling the click: Notifications API, "activation").
async function openPage(url) {
  const tabs = await self.clients.matchAll({ type: "window" }); // ours only: navigate() needs a tab this worker controls
  const tab = tabs.find((c) => c.url === url) || tabs.find((c) => c.focused) || tabs[0];
  if (tab) {
    let shown = tab;
    if (tab.url !== url) {
      try { shown = await tab.navigate(url); } catch (error) { shown = null; }
    }
    if (shown) {
      try { await shown.focus(); } catch (error) { /* the tab is there, on the post, behind another app */ }
      return shown;
    }
  }
  return self.clients.openWindow(url);
}

// The push service replaced or dropped our subscription (Firefox fires this; Chrome so far never does, it keeps
// subscriptions until the reader or the site drops them). Subscribe again with the same key and tell the server,
// so must-reads keep arriving without the reader opening the site.
self.addEventListener("pushsubscriptionchange", (event) => {
  event.waitUntil(resubscribe(event.oldSubscription, event.newSubscription));
});

async function resubscribe(old, fresh) {
  const answer = await fetch(NOTIFY.key_url, { credentials: "same-origin", cache: "no-store" });
  if (!answer.ok) return; // push is off now: nothing to renew
  const key = await answer.json();
  const headers = { "Content-Type": "application/json" };
  if (key.csrfToken) headers["X-CSRFToken"] = key.csrfToken; // a signed-in reader's own subscription
  const subscription = fresh || await self.registration.pushManager.subscribe(
    (old && old.options) || { userVisibleOnly: true, applicationServerKey: key.publicKey });
  await fetch(NOTIFY.subscriptions_url, { method: "POST", credentials: "same-origin", headers,
                                       body: JSON.stringify(subscription.toJSON()) });
  if (old && old.endpoint !== subscription.endpoint) {
    await fetch(NOTIFY.subscriptions_url, { method: "DELETE", credentials: "same-origin", headers,
                                         body: JSON.stringify(old.toJSON()) }).catch(() => undefined);
  }
}
