// Copy buttons: <button class="copy" data-copy="ID"> copies the text of
// the element with that ID. navigator.clipboard needs a secure context,
// which http://homederp/ on a LAN is not, so fall back to selecting the
// text and the older execCommand("copy").
"use strict";
document.addEventListener("click", function (ev) {
  var b = ev.target.closest("button[data-copy]");
  if (!b) return;
  var el = document.getElementById(b.dataset.copy);
  if (!el) return;
  var text = el.textContent;
  function done(ok) {
    b.textContent = ok ? "Copied" : "Select and copy";
    setTimeout(function () { b.textContent = "Copy"; }, 2000);
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
