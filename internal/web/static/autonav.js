// Follows the "continue" link at once on pages that hand the browser to an identity
// provider after a form post (the page's CSP form-action would block a redirect there).
document.addEventListener("DOMContentLoaded", function () {
  var a = document.getElementById("sso-continue");
  if (a) { window.location.assign(a.href); }
});
