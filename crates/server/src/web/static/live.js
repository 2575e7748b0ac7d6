// What keeps an open page current, and what keeps a closed one closed.
//
// Live regions: when the server says this page's data changed, fetch the
// page again and put the new content into every element marked data-live
// (forms are never live regions, so what the user is typing is kept). The
// region element itself stays, so keyboard focus on it, or on a control
// inside it that is still there, stays where it was.
//
// One event stream per browser: every page and tab of the site shares one
// /live stream through a SharedWorker (live-worker.js). Over HTTP/1.1 a
// browser opens six connections per host, and a stream per page used them
// all up. Where SharedWorker is missing (Chrome on Android), the page opens
// its own stream while it is visible, and closes it when hidden or left.
//
// Back-forward cache: a page left behind (after a logout, say) must never
// come back from the browser's memory with a patient's data on it. It is
// emptied as it is left and, if the browser restores it, reloaded (which
// leads to the login page when the session is over).
(function () {
  "use strict";
  var body = document.body;
  var patient = body.getAttribute("data-patient");
  // The page's own address: after a form, location is the form's target.
  var path = body.getAttribute("data-refresh") || location.pathname;
  var pending = null;
  var stale = false;

  function toLogin() { location.replace("/login"); }

  // A description of the focused control that finds it again in new
  // content: its id, or its tag, label, form target and text.
  function key(el) {
    if (el.id) return { id: el.id };
    var form = el.form ? el.form.getAttribute("action") : null;
    return { tag: el.tagName, label: el.getAttribute("aria-label"), form: form, text: el.textContent };
  }
  function find(region, k) {
    if (k.id) return document.getElementById(k.id);
    var all = region.getElementsByTagName(k.tag);
    for (var i = 0; i < all.length; i++) {
      var el = all[i];
      var form = el.form ? el.form.getAttribute("action") : null;
      if (el.getAttribute("aria-label") === k.label && form === k.form && el.textContent === k.text) return el;
    }
    return null;
  }

  function swap(region, fresh) {
    if (region.innerHTML === fresh.innerHTML) return;
    var active = document.activeElement;
    var inside = active && active !== region && region.contains(active) ? key(active) : null;
    region.replaceChildren.apply(region, Array.prototype.slice.call(fresh.childNodes));
    if (!inside) return;
    var again = find(region, inside);
    if (!again) {
      // The control is gone (an alarm acknowledged elsewhere): the focus
      // stays in its region rather than falling to the top of the page.
      if (!region.hasAttribute("tabindex")) region.setAttribute("tabindex", "-1");
      again = region;
    }
    again.focus({ preventScroll: true });
  }

  function refresh() {
    pending = null;
    stale = false;
    // Marked as the page's own doing: it does not keep the session alive.
    fetch(path, { credentials: "same-origin", headers: { "X-Live-Refresh": "1" } }).then(function (r) {
      if (r.redirected || r.status === 303) { toLogin(); return null; }
      return r.ok ? r.text() : null;
    }).then(function (html) {
      if (!html) return;
      var doc = new DOMParser().parseFromString(html, "text/html");
      document.querySelectorAll("[data-live]").forEach(function (el) {
        var fresh = doc.getElementById(el.id);
        if (fresh) swap(el, fresh);
      });
      checkAlarms();
    }).catch(function () { stale = true; });
  }
  function soon() { if (!pending) pending = setTimeout(refresh, 300); }

  // Alarm alerts. A high-priority alarm that appears on this page while it
  // is open (one not on it when it was last read) is announced at once: a
  // banner at the top, three beeps unless muted in this browser, and a
  // desktop notification where the user allowed them.
  var seen = null;
  var muted = false;
  try { muted = localStorage.getItem("alarm-muted") === "1"; } catch (e) { muted = false; }
  function highAlarms() {
    var found = {};
    document.querySelectorAll('[data-alarm-priority="high"]').forEach(function (el) {
      found[el.getAttribute("data-alarm-id")] = el.getAttribute("data-alarm-text");
    });
    return found;
  }
  function checkAlarms() {
    var now = highAlarms();
    if (seen) Object.keys(now).forEach(function (id) { if (!(id in seen)) raise(id, now[id]); });
    seen = now;
  }
  function raise(id, text) {
    var main = document.getElementById("main");
    var banner = document.getElementById("alarm-banner");
    if (!banner) {
      banner = document.createElement("div");
      banner.id = "alarm-banner";
      banner.className = "banner";
      banner.setAttribute("role", "alert");
      var close = document.createElement("button");
      close.type = "button";
      close.textContent = "Dismiss (the alarm stays open)";
      close.addEventListener("click", function () { banner.remove(); });
      banner.appendChild(close);
      main.insertBefore(banner, main.firstChild);
    }
    var p = document.createElement("p");
    p.textContent = "New high-priority alarm: " + text + ".";
    banner.insertBefore(p, banner.lastChild);
    if (!muted) beep();
    if (window.Notification && Notification.permission === "granted") {
      try { new Notification("High-priority alarm", { body: text, tag: "alarm-" + id }); } catch (e) { /* not shown */ }
    }
  }
  function beep() {
    var Ctx = window.AudioContext || window.webkitAudioContext;
    if (!Ctx) return;
    try {
      var ctx = beep.ctx || (beep.ctx = new Ctx());
      if (ctx.state === "suspended") ctx.resume();
      [0, 0.3, 0.6].forEach(function (t) {
        var o = ctx.createOscillator(), g = ctx.createGain();
        o.frequency.value = 880;
        g.gain.value = 0.2;
        o.connect(g);
        g.connect(ctx.destination);
        o.start(ctx.currentTime + t);
        o.stop(ctx.currentTime + t + 0.15);
      });
    } catch (e) { /* no sound: the banner still shows */ }
  }
  var mute = document.getElementById("alarm-mute");
  if (mute) {
    mute.setAttribute("aria-pressed", muted ? "true" : "false");
    mute.addEventListener("click", function () {
      muted = !muted;
      try { localStorage.setItem("alarm-muted", muted ? "1" : "0"); } catch (e) { /* this page only */ }
      mute.setAttribute("aria-pressed", muted ? "true" : "false");
    });
  }
  var allow = document.getElementById("alarm-notify");
  if (allow && window.Notification && Notification.permission === "default") {
    allow.hidden = false;
    allow.addEventListener("click", function () {
      Notification.requestPermission().then(function () { allow.hidden = true; });
    });
  }
  checkAlarms();

  // What the stream (shared or own) says.
  function heard(msg) {
    if (msg.type === "session_ended") { toLogin(); return; }
    if (msg.type === "resync") { soon(); return; }
    if (msg.type !== "change") return;
    var change = JSON.parse(msg.data);
    if (patient && change.patient !== undefined && String(change.patient) !== patient) return;
    soon();
  }

  var port = null;
  var own = null;
  var retry = null;
  function openOwn() {
    if (own || document.visibilityState !== "visible") return;
    own = new EventSource("/live");
    own.addEventListener("change", function (e) { heard({ type: "change", data: e.data }); });
    own.addEventListener("session_ended", function () { closeOwn(); heard({ type: "session_ended" }); });
    own.onerror = function () {
      // Refused (too many streams) or gone: try again later, and catch up.
      if (own && own.readyState === EventSource.CLOSED) {
        closeOwn();
        stale = true;
        retry = setTimeout(openOwn, 30000);
      }
    };
  }
  function closeOwn() {
    if (own) { own.close(); own = null; }
    if (retry) { clearTimeout(retry); retry = null; }
  }
  function tell(what) { if (port) port.postMessage(what); }

  if (window.SharedWorker) {
    try {
      port = new SharedWorker("/static/live-worker.js", { name: "infusion-live" }).port;
      port.onmessage = function (e) { heard(e.data); };
      port.start();
    } catch (e) { port = null; }
  }
  function shown() {
    if (document.visibilityState === "visible") {
      if (port) tell("visible"); else openOwn();
      if (stale) soon();
    } else {
      // Hidden: the stream is let go; what changed meanwhile is read on
      // return.
      stale = true;
      if (port) tell("hidden"); else closeOwn();
    }
  }
  document.addEventListener("visibilitychange", shown);
  shown();

  window.addEventListener("pagehide", function (e) {
    tell("bye");
    closeOwn();
    if (e.persisted) {
      // Kept in the back-forward cache: nothing of it stays in memory.
      var main = document.getElementById("main");
      if (main) main.replaceChildren();
      body.hidden = true;
    }
  });
  window.addEventListener("pageshow", function (e) {
    if (e.persisted) location.reload();
  });
})();
