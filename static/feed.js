// Optional extras; every page works without them: relative times, the service worker
// (offline reading, updates), the offline notice and the install hint.
(function () {
  "use strict";
  var lang = document.documentElement.lang || undefined;

  // "5 minutes ago" in the reader's language; the exact time stays in the tooltip.
  if (window.Intl && Intl.RelativeTimeFormat) {
    var rtf = new Intl.RelativeTimeFormat(lang, { numeric: "auto" });
    var steps = [[60, "second"], [60, "minute"], [24, "hour"], [7, "day"]];
    // One formatter for the page: toLocaleDateString builds a new one on every call (Chromium, desktop CPU:
    // 40 calls 16 ms, one formatter 0.7 ms; a phone is several times slower), all of it before the page answers input.
    var dates = null;
    var label = function (date) {
      var diff = (date - Date.now()) / 1000;
      for (var i = 0; i < steps.length; i++) {
        if (Math.abs(diff) < steps[i][0]) return rtf.format(Math.round(diff), steps[i][1]);
        diff /= steps[i][0];
      }
      dates = dates || new Intl.DateTimeFormat(lang, { day: "numeric", month: "short", year: "numeric" });
      return dates.format(date);
    };
    document.querySelectorAll(".post time[datetime]").forEach(function (el) {
      var date = new Date(el.getAttribute("datetime"));
      if (!isNaN(date)) el.textContent = label(date);
    });
  }

  // Console, sources page: while the poller has requests pending, re-read the page every few seconds and swap in
  // the requests and the health list, until none is pending (the page itself works without this: reload it).
  var pending = document.querySelector("#requests[data-pending]");
  if (pending && window.fetch && window.DOMParser) {
    var refresh = function () {
      fetch(location.href, { credentials: "same-origin", headers: { Accept: "text/html" } })
        .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
        .then(function (html) {
          var fresh = new DOMParser().parseFromString(html, "text/html");
          ["requests", "health"].forEach(function (id) {
            var now = document.getElementById(id), next = fresh.getElementById(id);
            if (now && next) now.replaceWith(document.importNode(next, true));
          });
          if (document.querySelector("#requests[data-pending]")) setTimeout(refresh, 3000);
        })
        .catch(function () { setTimeout(refresh, 10000); });
    };
    setTimeout(refresh, 3000);
  }

  // A picture that cannot load never shows as a broken image: an avatar goes, leaving the account's initials under
  // it; a photo becomes a grey box of the same size (no layout shift) that keeps its description for screen readers.
  // Errors do not bubble: listen in the capture phase, and catch up with those that failed before this ran.
  var replace = function (img) {
    if (!img.parentNode || !img.closest("article")) return;
    if (img.classList.contains("av")) { img.remove(); return; }
    var box = document.createElement("span");
    box.className = "gone";
    box.setAttribute("role", "img");
    box.setAttribute("aria-label", img.alt);
    var w = img.getAttribute("width"), h = img.getAttribute("height");
    box.style.aspectRatio = w && h ? w + " / " + h : "16 / 9";  // CSSOM, which the CSP allows (no style attribute)
    img.replaceWith(box);
  };
  document.addEventListener("error", function (event) {
    if (event.target instanceof HTMLImageElement) replace(event.target);
  }, true);
  Array.prototype.forEach.call(document.images, function (img) {
    if (img.complete && !img.naturalWidth && img.getAttribute("src")) replace(img);
  });
  // The play badge over a video's poster goes once it plays.
  document.addEventListener("play", function (event) {
    var box = event.target.closest && event.target.closest(".vid");
    if (box) box.classList.add("on");
  }, true);
  // Older posts: say it is loading until the next page arrives.
  var more = document.querySelector(".pager a[rel=next]");
  if (more) more.addEventListener("click", function () { more.setAttribute("aria-busy", "true"); });
  window.addEventListener("pageshow", function () { if (more) more.removeAttribute("aria-busy"); });

  // A page the service worker served from its saved copy: say so, and from when.
  var saved = document.body.getAttribute("data-offline-saved");
  var offline = document.getElementById("offline-banner");
  if (saved && offline) {
    var at = new Date(saved);
    var time = isNaN(at) ? "" : at.toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" });
    offline.textContent = offline.getAttribute("data-text").replace("{time}", time);
    offline.hidden = false;
  }

  // Signed out: no staff-only page, post or image may stay on this phone.
  if (document.querySelector('meta[name="feedapp-signed-out"]')) {
    if (window.caches) { caches.delete("pages-staff"); caches.delete("media"); }
    if (navigator.serviceWorker && navigator.serviceWorker.controller) {
      navigator.serviceWorker.controller.postMessage({ type: "LOGOUT" });
    }
  }

  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.register("/sw.js").then(function (registration) {
      // A new version is ready: say so. Tapping Reload asks the waiting worker to take over and reloads once it
      // has. One listener of each kind for the page, however many versions arrive or taps and controller changes
      // follow, so the page reloads exactly once.
      var banner = document.getElementById("update-banner");
      if (!banner) return;
      var asked = false, reloading = false;
      var reload = function () {
        if (reloading) return;
        reloading = true;
        location.reload();
      };
      navigator.serviceWorker.addEventListener("controllerchange", function () { if (asked) reload(); });
      document.getElementById("update-reload").addEventListener("click", function () {
        asked = true;
        // The worker waiting now (a newer one may have replaced the one offered); none left means it took
        // over already (another tab asked first): reload at once, no controllerchange is coming.
        if (registration.waiting) registration.waiting.postMessage({ type: "SKIP_WAITING" });
        else reload();
      });
      var offer = function () { banner.hidden = false; };
      if (registration.waiting && navigator.serviceWorker.controller) offer();
      registration.addEventListener("updatefound", function () {
        var worker = registration.installing;
        worker.addEventListener("statechange", function () {
          // A new worker waiting while an old one controls the page: a new version is ready.
          if (worker.state === "installed" && navigator.serviceWorker.controller) offer();
        });
      });
    }).catch(function () { /* no worker: the site still works online */ });
  }

  // Install hint: Chrome's prompt where it fires, instructions on iOS Safari; never again once dismissed.
  var KEY = "feedapp.install";
  var banner = document.getElementById("install-banner");
  var standalone = window.matchMedia("(display-mode: standalone)").matches || navigator.standalone === true;
  var remembered = function () { try { return localStorage.getItem(KEY); } catch (e) { return "blocked"; } };
  var remember = function (value) { try { localStorage.setItem(KEY, value); } catch (e) { /* private mode */ } };
  if (!banner || standalone || remembered()) return;
  var dismiss = function () { banner.hidden = true; remember("dismissed"); };
  document.getElementById("install-dismiss").addEventListener("click", dismiss);
  window.addEventListener("appinstalled", function () { banner.hidden = true; remember("installed"); });
  window.addEventListener("beforeinstallprompt", function (event) {
    event.preventDefault();
    var go = document.getElementById("install-go");
    banner.querySelector(".install-prompt").hidden = false;
    go.hidden = false;
    banner.hidden = false;
    go.addEventListener("click", function () {
      event.prompt();
      event.userChoice.then(function (choice) {
        banner.hidden = true;
        remember(choice.outcome === "accepted" ? "installed" : "dismissed");
      });
    }, { once: true });
  });
  if (/iPhone|iPad|iPod/.test(navigator.userAgent) && !navigator.standalone) {
    banner.querySelector(".install-ios").hidden = false;
    banner.hidden = false;
  }
})();

// Readership without tracking (README): a post half on screen (or filling half of it) for a second counts once per
// page load; a post's page counts one open. Ids only, in batches (every 10, on leaving), no cookie, no identifier.
(function () {
  var main = document.getElementById("main"), url = main && main.getAttribute("data-reach");
  if (!url) return;
  var office = main.getAttribute("data-office"), open = main.getAttribute("data-open"), views = [], opens = [];
  var send = function () {
    if (!views.length && !opens.length) return;
    var body = JSON.stringify({ office: office, views: views, opens: opens });
    views = []; opens = [];
    // A keepalive fetch outlives the page like a beacon but can omit cookies (sendBeacon always sends them).
    if (window.Request && "keepalive" in Request.prototype) {
      fetch(url, { method: "POST", body: body, keepalive: true, credentials: "omit",
        headers: { "Content-Type": "text/plain" } }).catch(function () {});
    } else if (navigator.sendBeacon) navigator.sendBeacon(url, body);
  };
  if (open) { opens.push(open); send(); return; }
  if (!window.IntersectionObserver) return;
  var timers = {};
  var observer = new IntersectionObserver(function (entries) {
    entries.forEach(function (e) {
      var post = e.target, id = post.id.slice(1);
      var half = e.isIntersecting && (e.intersectionRatio >= 0.5 ||
        (e.rootBounds && e.intersectionRect.height >= e.rootBounds.height / 2));
      if (!half) { clearTimeout(timers[id]); delete timers[id]; return; }
      timers[id] = timers[id] || setTimeout(function () {
        observer.unobserve(post);
        views.push(id);
        if (views.length >= 10) send();
      }, 1000);
    });
  }, { threshold: [0, 0.1, 0.2, 0.3, 0.4, 0.5] });
  main.querySelectorAll("article[id^=p]").forEach(function (post) { observer.observe(post); });
  document.addEventListener("visibilitychange", function () { if (document.visibilityState === "hidden") send(); });
  window.addEventListener("pagehide", send);
})();

// The console's menu scrolls sideways on a phone: bring the area you are in into view.
(function () {
  var here = document.querySelector(".console [aria-current]");
  if (here) here.parentNode.parentNode.scrollLeft = here.parentNode.offsetLeft - 16;
})();

// Notifications (templates/_push.html): push.js loads only as its block nears the screen, never in the first view.
(function () {
  var box = document.getElementById("push");
  if (!box || !box.getAttribute("data-src") || !("serviceWorker" in navigator)) return;
  var load = function () {
    var script = document.createElement("script");
    script.src = box.getAttribute("data-src");
    document.head.appendChild(script);
  };
  if (!window.IntersectionObserver) return load();
  new IntersectionObserver(function (entries, observer) {
    if (entries[0].isIntersecting) { observer.disconnect(); load(); }
  }, { rootMargin: "300px" }).observe(box.parentNode); // the block is hidden: watch what holds it
})();
