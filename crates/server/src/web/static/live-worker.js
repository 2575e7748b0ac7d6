// The one /live event stream of this browser, shared by every page and tab
// of the site (live.js). Each page says "visible", "hidden" or "bye"; the
// stream is open while at least one page is visible, and everything it
// says goes to every page, which keeps what concerns it.
"use strict";
var ports = [];
var visible = [];
var source = null;
var retry = null;
var broken = false;

function send(msg) {
  ports.forEach(function (p) { p.postMessage(msg); });
}

function close() {
  if (source) { source.close(); source = null; }
  if (retry) { clearTimeout(retry); retry = null; }
}

function open() {
  if (source || retry) return;
  source = new EventSource("/live");
  source.onopen = function () {
    // Opened again after a break: what was missed is read again.
    if (broken) { broken = false; send({ type: "resync" }); }
  };
  source.addEventListener("change", function (e) { send({ type: "change", data: e.data }); });
  source.addEventListener("session_ended", function () {
    close();
    send({ type: "session_ended" });
  });
  source.onerror = function () {
    broken = true;
    if (source && source.readyState === EventSource.CLOSED) {
      // Refused or ended (the browser retries a dropped stream by itself,
      // not a refused one): try again later; the pages check their
      // session when they refresh.
      source = null;
      send({ type: "resync" });
      retry = setTimeout(function () { retry = null; update(); }, 30000);
    }
  };
}

function update() {
  if (visible.length > 0) open(); else close();
}

function forget(list, port) {
  var i = list.indexOf(port);
  if (i >= 0) list.splice(i, 1);
}

self.onconnect = function (e) {
  var port = e.ports[0];
  ports.push(port);
  port.onmessage = function (m) {
    forget(visible, port);
    if (m.data === "visible") visible.push(port);
    if (m.data === "bye") forget(ports, port);
    update();
  };
  port.start();
};
