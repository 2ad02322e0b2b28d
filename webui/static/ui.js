// The web UI's only script, loaded by every page (the CSP allows no
// inline script). Everything works without it; it adds three things.
"use strict";

// Copy buttons: <button class="copy" data-copy="ID"> copies the text of
// the element with that ID. navigator.clipboard needs a secure context,
// which http://homederp/ on a LAN is not, so fall back to selecting the
// text and the older execCommand("copy").
document.addEventListener("click", function (ev) {
  var b = ev.target.closest("button[data-copy]");
  if (!b) return;
  var el = document.getElementById(b.dataset.copy);
  if (!el) return;
  var text = el.textContent;
  // The words come from the page, in its language (<body data-copied=…>).
  var words = document.body.dataset;
  function done(ok) {
    b.textContent = ok ? words.copied : words.copyFailed;
    setTimeout(function () { b.textContent = words.copy; }, 2000);
  }
  function fallback() {
    var r = document.createRange();
    r.selectNodeContents(el);
    var s = window.getSelection();
    s.removeAllRanges();
    s.addRange(r);
    var ok = false;
    try { ok = document.execCommand("copy"); } catch (e) {}
    done(ok);
  }
  if (navigator.clipboard && window.isSecureContext) {
    navigator.clipboard.writeText(text).then(function () { done(true); }, fallback);
  } else {
    fallback();
  }
});

// Forms that take long (<form data-busy="Checking…">) disable their
// button while the box works and say what it is doing, with the seconds
// so far. A form with data-max-bytes is not sent when its text or file is
// larger than that: the element named by data-too-big says so, and what
// was pasted stays.
document.addEventListener("submit", function (ev) {
  var f = ev.target;
  var max = Number(f.dataset.maxBytes || 0);
  if (max) {
    var size = 0;
    f.querySelectorAll("textarea").forEach(function (t) { size = Math.max(size, new Blob([t.value]).size); });
    f.querySelectorAll("input[type=file]").forEach(function (i) {
      for (var k = 0; k < i.files.length; k++) size = Math.max(size, i.files[k].size);
    });
    var warn = document.getElementById(f.dataset.tooBig);
    if (warn) warn.hidden = size <= max;
    if (size > max) {
      ev.preventDefault();
      return;
    }
  }
  if (!f.dataset.busy) return;
  if (f.dataset.sending) {
    ev.preventDefault(); // one check at a time
    return;
  }
  f.dataset.sending = "1";
  var button = f.querySelector("button:not([type=button])");
  if (button) button.disabled = true;
  var note = document.createElement("p");
  note.className = "busy";
  note.setAttribute("role", "status");
  note.textContent = f.dataset.busy;
  f.appendChild(note);
  var start = Date.now();
  f.busyTimer = setInterval(function () {
    note.textContent = f.dataset.busy + " " + Math.round((Date.now() - start) / 1000) + " s";
  }, 1000);
});

// A page the browser shows again from its back-forward cache must not
// keep a form disabled.
window.addEventListener("pageshow", function (ev) {
  if (!ev.persisted) return;
  document.querySelectorAll("form[data-sending]").forEach(function (f) {
    delete f.dataset.sending;
    clearInterval(f.busyTimer);
    var button = f.querySelector("button:not([type=button])");
    if (button) button.disabled = false;
    f.querySelectorAll("p.busy").forEach(function (p) { p.remove(); });
  });
});

// The status page (<div id="live" data-refresh="10">) reloads its figures
// while it is visible: it fetches itself and swaps in the new #live,
// keeping open <details> open. On a failure (box away, logged out) it
// stops and says so.
(function () {
  var live = document.getElementById("live");
  if (!live || !live.dataset.refresh) return;
  var every = Number(live.dataset.refresh) * 1000;
  var timer = setInterval(refresh, every);
  var pending = false; // a slow answer is not asked for again meanwhile
  function stop() {
    clearInterval(timer);
    var note = document.getElementById("refresh-note");
    if (note) note.textContent = note.dataset.stale;
  }
  function refresh() {
    if (pending || document.visibilityState !== "visible") return;
    pending = true;
    fetch(location.pathname, { credentials: "same-origin", headers: { Accept: "text/html", "X-Homederp-Refresh": "1" } })
      .then(function (r) {
        if (!r.ok || r.redirected) throw new Error("status " + r.status);
        return r.text();
      })
      .then(function (html) {
        var next = new DOMParser().parseFromString(html, "text/html").getElementById("live");
        if (!next) throw new Error("no #live");
        var open = [];
        live.querySelectorAll("details").forEach(function (d, i) { if (d.open) open.push(i); });
        live.replaceChildren.apply(live, Array.from(next.childNodes));
        live.querySelectorAll("details").forEach(function (d, i) { if (open.indexOf(i) >= 0) d.open = true; });
        pending = false;
      })
      .catch(stop);
  }
})();
