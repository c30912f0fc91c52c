// Submits the SAML message form on pages that hand the browser to (or back from) an IdP.
document.addEventListener("DOMContentLoaded", function () {
  var f = document.getElementById("saml-post");
  if (f) { f.submit(); }
});
