// Notifications of must-read posts (Push API, RFC 8030/8291): the opt-in block of templates/_push.html.
// Loaded by feed.js only once that block nears the screen, so it costs the feed's first view nothing. Pages are
// cached and shared: everything about this browser (subscribed, blocked, iPhone) is decided here, never in HTML.
(function () {
  "use strict";
  var box = document.getElementById("push");
  if (!box || box.getAttribute("data-ready")) return;
  box.setAttribute("data-ready", "1");
  var part = function (name) { return box.querySelector(".push-" + name); };
  var go = part("go"), stop = part("stop"), what = part("what"), status = part("status");
  var text = function (name) { return box.getAttribute("data-" + name); };
  var AUDIENCE_KEY = "feedapp.push.audience"; // who the server last filed this device under (staff or public)
  var audience = text("audience");

  // iPhone and iPad: push reaches only a web app added to the home screen (iOS/iPadOS 16.4+). iPadOS's Safari says
  // it is a Mac; a Mac has no touch screen.
  var ua = navigator.userAgent;
  var ios = /iPhone|iPad|iPod/.test(ua) || (/Macintosh/.test(ua) && navigator.maxTouchPoints > 1);
  var standalone = navigator.standalone === true || window.matchMedia("(display-mode: standalone)").matches;
  if (ios && !standalone) {
    part("ios").hidden = false;
    box.hidden = false;
    return;
  }
  if (!("serviceWorker" in navigator && "PushManager" in window && "Notification" in window && window.fetch)) return;

  var show = function (state, message) {
    what.hidden = state === "on";
    go.hidden = state !== "off";
    stop.hidden = state !== "on";
    status.textContent = message || "";
    go.disabled = stop.disabled = false;
    box.hidden = false;
  };
  var remember = function (value) {
    try {
      if (value) localStorage.setItem(AUDIENCE_KEY, value); else localStorage.removeItem(AUDIENCE_KEY);
      if (value) sessionStorage.setItem(AUDIENCE_KEY, value); else sessionStorage.removeItem(AUDIENCE_KEY);
    } catch (e) { /* private mode: the subscription is simply sent again on the next page */ }
  };
  // Sent again once per browser session too: signing out on one phone drops the person's staff subscriptions on
  // every phone (the server cannot tell them apart), and the reader may have changed office since.
  var synced = function () {
    try { return localStorage.getItem(AUDIENCE_KEY) === audience && sessionStorage.getItem(AUDIENCE_KEY) === audience; }
    catch (e) { return false; }
  };
  var registration = function () { return navigator.serviceWorker.ready; }; // feed.js registers /sw.js

  // The VAPID key and, for a signed-in reader, the CSRF token: pages cannot carry a token (they are shared).
  var key = function () {
    return fetch(text("key"), { credentials: "same-origin", cache: "no-store" }).then(function (r) {
      if (r.status === 404) throw new Error("unavailable");
      if (!r.ok) throw new Error("failed");
      return r.json();
    });
  };
  var send = function (method, subscription, token) {
    var headers = { "Content-Type": "application/json" };
    if (token) headers["X-CSRFToken"] = token;
    return fetch(text("subscriptions"), {
      method: method, credentials: "same-origin", headers: headers, body: JSON.stringify(subscription.toJSON())
    }).then(function (r) {
      if (r.status === 404) throw new Error("unavailable");
      if (!r.ok) throw new Error("failed");
    });
  };
  // RFC 8292 §3.2: the key comes as base64url; subscribe() wants its bytes.
  var bytes = function (base64url) {
    var raw = atob(base64url.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((base64url.length + 3) % 4));
    var out = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
    return out;
  };

  var subscribe = function () {
    go.disabled = true;
    // Asked here, in the tap itself: browsers grant a permission prompt only to a user gesture (and Safari only
    // before any await). Never on page load.
    var asked = Notification.requestPermission ? Notification.requestPermission() : Promise.resolve("default");
    var server = key();
    server.catch(function () { /* read below, after the permission */ });
    Promise.resolve(asked).then(function (permission) {
      if (permission === "denied") return show("blocked", text("blocked"));
      if (permission !== "granted") return show("off", text("dismissed"));
      var info;
      return server.then(function (body) {
        info = body;
        return registration();
      }).then(function (reg) {
        return reg.pushManager.getSubscription().then(function (old) {
          // userVisibleOnly: every push shows a notification (Push API; Chrome refuses silent pushes).
          return old || reg.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: bytes(info.publicKey) });
        });
      }).then(function (subscription) {
        return send("POST", subscription, info.csrfToken).then(function () {
          remember(audience);
          show("on", text("on"));
          stop.focus(); // the tapped button is gone: keep the focus on what replaced it
        }, function (error) {
          // The server did not keep it: do not leave the browser subscribed to nothing.
          return subscription.unsubscribe().then(function () { throw error; });
        });
      });
    }).catch(function (error) {
      if (error && error.message === "unavailable") { go.hidden = true; what.hidden = true; status.textContent = text("unavailable"); }
      else show(Notification.permission === "denied" ? "blocked" : "off",
                Notification.permission === "denied" ? text("blocked") : text("failed"));
    });
  };

  var unsubscribe = function () {
    stop.disabled = true;
    registration().then(function (reg) { return reg.pushManager.getSubscription(); }).then(function (subscription) {
      if (!subscription) return;
      // Tell the server first (it needs the subscription's keys), then drop it in the browser whatever it said:
      // a push to a dropped subscription gets 410 Gone, and the server forgets it then.
      var told = key().then(function (info) { return send("DELETE", subscription, info.csrfToken); }, function () {
        return send("DELETE", subscription, null);
      });
      return told.catch(function () { /* see above */ }).then(function () { return subscription.unsubscribe(); });
    }).catch(function () { /* nothing left to undo */ }).then(function () {
      remember(null);
      show("off", "");
      go.focus();
    });
  };

  go.addEventListener("click", subscribe);
  stop.addEventListener("click", unsubscribe);

  // The account page right after a new password (data-refile, on that per-user page only): the server dropped every
  // staff subscription of this person, this browser's too, so what it was last filed under no longer stands. Forgotten
  // here rather than just sent once: should sending fail, the next page tries again.
  if (box.hasAttribute("data-refile")) remember(null);
  if (Notification.permission === "denied") return show("blocked", text("blocked"));
  registration().then(function (reg) { return reg.pushManager.getSubscription(); }).then(function (subscription) {
    if (!subscription || Notification.permission !== "granted") return show("off", "");
    show("on", text("on"));
    // Signed in or out since the server last saw this subscription (it drops staff ones at sign-out), or a new
    // session: file it again under who reads now, so staff get staff-only must-reads and a signed-out phone does not.
    if (!synced()) {
      key().then(function (info) { return send("POST", subscription, info.csrfToken); })
        .then(function () { remember(audience); }, function () { /* next page tries again */ });
    }
  }, function () { show("off", ""); });
})();
