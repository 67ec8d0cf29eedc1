/* A break-room screen (templates/screen.html): shows one post at a time, for weeks, unattended.

   One set of elements is filled in again for each post (no new nodes, listeners or timers per post):
   exactly one rotation timer, one fetch timer and one clock interval exist at any time, so memory stays
   flat. Posts come from #screen-data, then from posts.json every `refresh` seconds with If-None-Match.
   A failed fetch keeps the last good posts on screen with an "Offline since HH:MM" mark; three of the app's own 404s in a
   row (the screen was removed: its token is gone) clear the posts and say so, while it keeps asking. A new
   asset version in the JSON (a deploy changed this script or its stylesheet) reloads the page once.
   No cookies are sent and no redirect (a login page) is ever followed. No service worker is needed; where the player
   has them, /screen/sw.js keeps this page and its last posts, so a reload or a reboot while the server is down shows
   them (body[data-saved] marks such a copy), and storage keeps when the server last answered, so the "Offline since"
   mark keeps its time across the reload. */
(function () {
  "use strict";
  var root = document.getElementById("screen");
  if (!root) return;
  var $ = function (id) { return document.getElementById(id); };
  // The page's two images, made once here (and only filled in again afterwards).
  var photoImg = document.createElement("img"), qrImg = document.createElement("img");
  photoImg.id = "photo-img";
  photoImg.alt = "";
  qrImg.id = "qr";
  qrImg.className = "qr";
  qrImg.alt = $("scan").getAttribute("data-qr-alt");
  qrImg.width = qrImg.height = 280;
  $("photo").insertBefore(photoImg, $("video"));
  $("scan").insertBefore(qrImg, $("scan").firstChild);
  var el = {
    post: $("post"), photo: $("photo"), photoImg: photoImg, video: $("video"), pin: $("pin"),
    author: $("author"), handle: $("handle"), when: $("when"), text: $("text"), qr: qrImg, more: $("more"),
    clock: $("clock"), offline: $("offline"), empty: $("empty"), removed: $("removed")
  };
  var lang = document.documentElement.lang || "en";
  // The office's time zone when it has one (signage players are often left on UTC), else the player's.
  var zone = root.getAttribute("data-time-zone") || undefined;
  var clockFormat = format({ hour: "2-digit", minute: "2-digit" });
  var dayFormat = format({ day: "numeric", month: "short", hour: "2-digit", minute: "2-digit" });

  function format(options) {
    try {
      return new Intl.DateTimeFormat(lang, zone ? Object.assign({ timeZone: zone }, options) : options);
    } catch (error) {  // a zone this browser does not know: its own clock rather than none
      return new Intl.DateTimeFormat(lang, options);
    }
  }
  var relative = window.Intl && Intl.RelativeTimeFormat ? new Intl.RelativeTimeFormat(lang, { numeric: "auto" }) : null;
  var GONE_AFTER = 3;  // 404s in a row before the screen says it was removed
  var FETCH_TIMEOUT = 30000;
  var state = {
    posts: [], order: [], pos: -1, current: null, refresh: 60, rotations: 0,
    etag: root.getAttribute("data-etag"), version: root.getAttribute("data-version"),
    notFound: 0, removed: false, offlineSince: null, minute: "", reloading: false
  };
  var rotateTimer = null;
  // A copy the service worker saved (templates/screen_sw.js), served because the server did not answer: since when.
  var savedAt = document.body.getAttribute("data-saved");
  var STORE_KEY = "feedapp.screen " + root.getAttribute("data-posts-url");
  var preload = new Image();  // the next post's photo, fetched ahead; one object, reused

  function load(data, saved) {
    state.posts = data.posts || [];
    state.order = data.order || [];
    state.refresh = Math.max(Number(data.refresh) || 60, 0.05);
    // A saved copy's posts may be newer than its page (a deploy it never reloaded for): show them, and reload once
    // the server answers (its ETag is dropped, so that answer is a 200 with the version).
    if (saved && data.v && data.v !== state.version) state.etag = null;
    else if (data.v && data.v !== state.version) {
      // A deploy: reload once for this version (the mark in the URL stops a loop should an old page persist).
      var mark = "r=" + encodeURIComponent(data.v);
      if (location.search.indexOf(mark) < 0) {
        reloadWhenServed(location.pathname + "?" + mark);
        return false;  // its ETag is not kept: the next poll gets the new version again, until the reload happens
      }
    }
    if (state.removed) return true;
    if (rotateTimer === null) {
      next();
    } else if (state.current && !contains(state.posts, state.current.id)) {
      // The post on screen was hidden (or unpinned and aged out): it goes now, not at the end of its turn.
      clearTimeout(rotateTimer);
      next();
    }
    return true;
  }

  // The shape posts.json has (feedapp/web/screens.py _data): anything else answering 200 (a proxy, a captive
  // portal) must neither empty the screen nor give a post no time on it (a timer at 0 ms spins the player).
  function valid(data) {
    if (!data || typeof data !== "object" || !Array.isArray(data.posts) || !Array.isArray(data.order)) return false;
    for (var i = 0; i < data.posts.length; i++) {
      var post = data.posts[i];
      if (!post || typeof post.id !== "string" || typeof post.text !== "string" || typeof post.qr !== "string" ||
          typeof post.at !== "string" || !(post.seconds > 0)) return false;
    }
    for (var j = 0; j < data.order.length; j++) {
      var index = data.order[j];
      if (typeof index !== "number" || index % 1 !== 0 || index < 0 || index >= data.posts.length) return false;
    }
    return true;
  }

  function contains(posts, id) {
    for (var i = 0; i < posts.length; i++) if (posts[i].id === id) return true;
    return false;
  }

  // Only once the page itself answers 200: a reload into a server that just went down would leave the
  // player on the browser's error page, with no script left to come back.
  function reloadWhenServed(url) {
    if (state.reloading) return;
    state.reloading = true;
    // Its own page, too: a captive portal's 200 would keep the player on the portal for good.
    var mine = 'data-posts-url="' + root.getAttribute("data-posts-url") + '"';
    fetch(url, { cache: "no-store", credentials: "omit", redirect: "error" }).then(function (response) {
      return response.ok ? response.text() : "";
    }).then(function (body) {
      if (body.indexOf(mine) >= 0) location.replace(url);
      else state.reloading = false;
    }).catch(function () { state.reloading = false; });
  }

  function next() {
    rotateTimer = null;
    if (state.removed) return;
    if (!state.order.length) {
      state.current = null;
      el.post.hidden = true;
      el.empty.hidden = false;
      return;  // load() starts again when posts arrive
    }
    state.pos = (state.pos + 1) % state.order.length;
    var post = state.posts[state.order[state.pos]];
    show(post);
    state.rotations += 1;
    root.setAttribute("data-rotations", String(state.rotations));
    root.setAttribute("data-post", String(post.id));
    var after = state.posts[state.order[(state.pos + 1) % state.order.length]];
    if (after && after.image && after.image !== post.image) preload.src = after.image;
    rotateTimer = setTimeout(next, Math.max(post.seconds, 0.001) * 1000);
  }

  function show(post) {
    state.current = post;
    el.empty.hidden = true;
    el.post.hidden = false;
    el.post.classList.remove("enter");
    void el.post.offsetWidth;  // restart the fade-in (CSS; none under prefers-reduced-motion)
    el.post.classList.add("enter");
    el.pin.textContent = post.label || "";
    el.pin.hidden = !post.label;
    el.author.textContent = post.author;
    el.handle.textContent = "@" + post.handle;
    el.when.textContent = when(post.at);
    el.video.hidden = !post.video;
    setPhoto(post.image);
    if (el.qr.getAttribute("src") !== post.qr) el.qr.src = post.qr;
    if (post.lang) el.text.lang = post.lang; else el.text.removeAttribute("lang");
    fit(post);
  }

  function setPhoto(url) {
    el.photo.hidden = !url;
    el.post.classList.toggle("no-photo", !url);
    if (!url) el.photoImg.removeAttribute("src");
    else if (el.photoImg.getAttribute("src") !== url) el.photoImg.src = url;
  }

  el.photoImg.addEventListener("error", function () {
    // A photo that cannot load (the media host is down): the text takes the room, fitted again.
    if (!state.current || !el.photoImg.getAttribute("src")) return;
    setPhoto(null);
    fit(state.current);
  });

  function overflows() {
    return el.text.scrollHeight > el.text.clientHeight + 1;
  }

  var LEVELS = 7;  // .text.l0 (largest) to .l6 (3.9vmin) in static/screen.css

  function setText(text, level) {
    el.text.className = "text l" + level;
    el.text.textContent = text;
  }

  // The text must never overflow: the largest type it fits in (never below 3.9vmin, 42 px at 1080p), then whole
  // sentences dropped from the end, then words, with "More on your phone" beside the QR code.
  function fit(post) {
    var level = 0;
    setText(post.text, 0);
    while (overflows() && level < LEVELS - 1) setText(post.text, ++level);
    var more = post.more;
    if (overflows()) {
      more = true;
      setText(shortest(post.text, level), level);
    }
    el.more.hidden = !more;
  }

  var SENTENCE_END = /[.!?…؟]["'”’)\]]*(?=\s)|[。！？][」』”’)）\]]*/g;  // feedapp/screens.py's rule

  function shortest(text, level) {
    var base = text.replace(/…$/, "");
    var ends = [], match;
    SENTENCE_END.lastIndex = 0;
    while ((match = SENTENCE_END.exec(base)) !== null) ends.push(match.index + match[0].length);
    for (var i = ends.length - 1; i >= 0 && ends[i] >= base.length / 3; i--) {
      setText(base.slice(0, ends[i]), level);
      if (!overflows()) return base.slice(0, ends[i]);
    }
    // No sentence end early enough: the most words that fit (binary search, a few layouts).
    var words = base.split(/\s+/), lo = 0, hi = words.length;
    while (lo < hi) {
      var mid = Math.ceil((lo + hi) / 2);
      setText(words.slice(0, mid).join(" ") + "…", level);
      if (overflows()) hi = mid - 1; else lo = mid;
    }
    if (lo > 0) return words.slice(0, lo).join(" ").replace(/[\s,;:\-]+$/, "") + "…";
    var chars = base.length;  // one endless word: characters, the same way
    lo = 0; hi = chars;
    while (lo < hi) {
      var m = Math.ceil((lo + hi) / 2);
      setText(base.slice(0, m) + "…", level);
      if (overflows()) hi = m - 1; else lo = m;
    }
    return base.slice(0, lo) + "…";
  }

  function when(iso) {
    var then = new Date(iso), seconds = (then.getTime() - Date.now()) / 1000;
    if (!relative || isNaN(seconds)) return isNaN(seconds) ? "" : dayFormat.format(then);
    var minutes = Math.round(seconds / 60), hours = Math.round(seconds / 3600);
    if (Math.abs(minutes) < 60) return relative.format(minutes, "minute");
    if (Math.abs(hours) < 24) return relative.format(hours, "hour") + " · " + clockFormat.format(then);
    return dayFormat.format(then);
  }

  function tick() {
    var now = new Date(), minute = clockFormat.format(now);
    if (minute === state.minute) return;
    state.minute = minute;
    el.clock.textContent = minute;
    if (state.current) el.when.textContent = when(state.current.at);
  }

  // When the server last answered and since when it has not, in the player's storage when it has some (none, or
  // none allowed in a sandboxed frame: nothing kept, as before).
  function stored() {
    try { return JSON.parse(window.localStorage.getItem(STORE_KEY)) || {}; } catch (error) { return {}; }
  }

  function store(record) {
    try {
      if (record) window.localStorage.setItem(STORE_KEY, JSON.stringify(record));
      else window.localStorage.removeItem(STORE_KEY);
    } catch (error) { /* no storage: the mark then says when the saved copy was made */ }
  }

  function online() {
    state.notFound = 0;
    store({ seen: Date.now() });
    if (state.offlineSince !== null) {
      state.offlineSince = null;
      el.offline.hidden = true;
      el.offline.textContent = "";
    }
    if (state.removed) {
      state.removed = false;
      el.removed.hidden = true;
    }
  }

  function offline(since) {
    if (state.offlineSince !== null) return;
    state.offlineSince = since || new Date();
    store({ seen: stored().seen, since: state.offlineSince.getTime() });
    el.offline.textContent = root.getAttribute("data-offline").replace("{time}", clockFormat.format(state.offlineSince));
    el.offline.hidden = false;
  }

  function gone() {
    state.notFound += 1;
    if (state.offlineSince !== null) { state.offlineSince = null; el.offline.hidden = true; }
    if (state.notFound < GONE_AFTER || state.removed) return;
    // Removed: what it showed (perhaps staff-only posts) goes too; it keeps asking, in case that was a mistake.
    state.removed = true;
    if (rotateTimer !== null) { clearTimeout(rotateTimer); rotateTimer = null; }
    state.posts = []; state.order = []; state.pos = -1; state.current = null; state.etag = null;
    el.post.hidden = true;
    el.empty.hidden = true;
    el.removed.hidden = false;
    setPhoto(null);
    el.qr.removeAttribute("src");
    el.text.textContent = "";
  }

  function poll() {
    var controller = window.AbortController ? new AbortController() : null;
    var timeout = controller ? setTimeout(function () { controller.abort(); }, FETCH_TIMEOUT) : null;
    var headers = state.etag ? { "If-None-Match": '"' + state.etag + '"' } : {};
    fetch(root.getAttribute("data-posts-url"), {
      cache: "no-store", credentials: "omit", redirect: "error", headers: headers,
      signal: controller ? controller.signal : undefined
    }).then(function (response) {
      if (response.status === 304) { online(); return null; }
      // Removed: the app's own 404 says so; any other (a proxy's or portal's page) is an outage.
      if (response.status === 404) {
        return response.json().then(function (data) {
          if (!data || data.gone !== true) throw new Error("HTTP 404");
          store(null);  // the service worker drops its copies on this answer too
          gone();
        });
      }
      if (!response.ok) throw new Error("HTTP " + response.status);
      var etag = (response.headers.get("ETag") || "").replace(/^W\//, "").replace(/"/g, "");
      return response.json().then(function (data) {
        if (!valid(data)) throw new Error("not this screen's posts");  // a proxy's or portal's JSON: no news
        online();
        if (load(data)) state.etag = etag || null;
      });
    }).catch(function () {
      offline();
    }).then(function () {
      if (timeout !== null) clearTimeout(timeout);
      setTimeout(poll, state.refresh * 1000);
    });
  }

  var dataBlock = $("screen-data");
  var initial = JSON.parse(dataBlock ? dataBlock.textContent : "{}");
  if (dataBlock) dataBlock.parentNode.removeChild(dataBlock);  // parsed once; no second copy kept in the DOM
  tick();
  setInterval(tick, 1000);
  if (savedAt !== null) {
    // Offline since the server last failed it, else since it last answered; else since the copy was saved.
    var last = stored(), saved = Date.parse(savedAt);
    offline(new Date(last.since || last.seen || (isNaN(saved) ? Date.now() : saved)));
  }
  load(valid(initial) ? initial : {}, savedAt !== null);
  setTimeout(poll, state.refresh * 1000);
  try {
    // navigator.serviceWorker is missing where players have none (or over plain http), and throws in a sandboxed frame.
    if (navigator.serviceWorker && window.caches) {
      navigator.serviceWorker.register(root.getAttribute("data-worker")).catch(function () { /* works without */ });
    }
  } catch (error) { /* works without */ }
})();
