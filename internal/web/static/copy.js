// Copy buttons: <code>value</code> <button type="button" data-copy="value" hidden>Copy</button>.
// Without JavaScript the buttons stay hidden (the value is on the page to select); with it
// they show and copy the value, or select it where the clipboard is not available.
(function () {
  function show() {
    document.querySelectorAll("[data-copy]").forEach(function (b) { b.hidden = false; });
  }
  function select(b) {
    var c = b.previousElementSibling;
    if (!c) { return; }
    var r = document.createRange();
    r.selectNodeContents(c);
    var s = window.getSelection();
    s.removeAllRanges();
    s.addRange(r);
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", show); } else { show(); }
  document.addEventListener("click", function (e) {
    var b = e.target.closest("[data-copy]");
    if (!b) { return; }
    var old = b.getAttribute("data-label") || b.textContent;
    b.setAttribute("data-label", old);
    function say(msg) { b.textContent = msg; setTimeout(function () { b.textContent = old; }, 1500); }
    function fallback() { select(b); say("Press Ctrl+C"); }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(b.getAttribute("data-copy")).then(function () { say("Copied"); }, fallback);
    } else {
      fallback();
    }
  });
})();
