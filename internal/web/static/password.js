// Show/hide buttons for password fields: each input[type=password] gets a button beside it
// that shows what was typed as plain text, and hides it again. Without JavaScript the
// fields stay ordinary password fields. A field is a password field again before its form
// is sent, so the browser offers to save it as a password.
(function () {
  function setup(input) {
    var wrap = document.createElement("span");
    wrap.className = "pw-field";
    input.parentNode.insertBefore(wrap, input);
    wrap.appendChild(input);
    var b = document.createElement("button");
    b.type = "button";
    b.className = "secondary pw-toggle";
    if (input.id) { b.setAttribute("aria-controls", input.id); }
    function show(on) {
      input.type = on ? "text" : "password";
      b.textContent = on ? "Hide" : "Show";
      b.setAttribute("aria-pressed", on ? "true" : "false");
      b.setAttribute("aria-label", on ? "Hide password" : "Show password");
    }
    show(false);
    b.addEventListener("click", function () {
      show(input.type === "password");
      input.focus();
    });
    wrap.appendChild(b);
    if (input.form) {
      input.form.addEventListener("submit", function () { show(false); });
    }
  }
  document.addEventListener("DOMContentLoaded", function () {
    var fields = document.querySelectorAll('input[type="password"]');
    for (var i = 0; i < fields.length; i++) { setup(fields[i]); }
  });
})();
