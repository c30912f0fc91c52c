// Passkeys (docs/passkeys.md): buttons that run a WebAuthn ceremony against the JSON API
// and then go on. Without JavaScript or WebAuthn the buttons stay hidden and the forms
// beside them work as before.
//   data-passkey="login"     sign in without a password (and the browser's autofill on
//                            the field with autocomplete="username webauthn")
//   data-passkey="register"  add a passkey (name from the field data-passkey-name)
//   data-passkey="reauth"    confirm it's you (step-up)
//   data-passkey="mfa"       the second sign-in step (data-mfa-token)
// data-next is where the browser goes afterwards; errors show in [data-passkey-error].
(function () {
  function b64urlToBuf(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) { s += "="; }
    var bin = atob(s), out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out.buffer;
  }
  function bufToB64url(b) {
    var bytes = new Uint8Array(b), s = "";
    for (var i = 0; i < bytes.length; i++) { s += String.fromCharCode(bytes[i]); }
    return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function creationOptions(pk) {
    if (PublicKeyCredential.parseCreationOptionsFromJSON) { return PublicKeyCredential.parseCreationOptionsFromJSON(pk); }
    pk.challenge = b64urlToBuf(pk.challenge);
    pk.user.id = b64urlToBuf(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = b64urlToBuf(c.id); });
    return pk;
  }
  function requestOptions(pk) {
    if (PublicKeyCredential.parseRequestOptionsFromJSON) { return PublicKeyCredential.parseRequestOptionsFromJSON(pk); }
    pk.challenge = b64urlToBuf(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = b64urlToBuf(c.id); });
    return pk;
  }
  function credJSON(c) {
    if (c.toJSON) { return c.toJSON(); }
    var r = c.response, resp = { clientDataJSON: bufToB64url(r.clientDataJSON) };
    if (r.attestationObject) {
      resp.attestationObject = bufToB64url(r.attestationObject);
      resp.transports = r.getTransports ? r.getTransports() : [];
    } else {
      resp.authenticatorData = bufToB64url(r.authenticatorData);
      resp.signature = bufToB64url(r.signature);
      if (r.userHandle) { resp.userHandle = bufToB64url(r.userHandle); }
    }
    return { id: c.id, rawId: bufToB64url(c.rawId), type: c.type, response: resp,
      authenticatorAttachment: c.authenticatorAttachment, clientExtensionResults: c.getClientExtensionResults() };
  }
  function post(path, body) {
    return fetch(path, { method: "POST", credentials: "same-origin", headers: { "Content-Type": "application/json", "Accept": "application/json" },
      body: body === undefined ? "" : JSON.stringify(body) }).then(function (r) {
      return r.text().then(function (t) {
        var j = t ? JSON.parse(t) : {};
        if (!r.ok) { var e = new Error((j.error && j.error.message) || "Something went wrong."); e.code = j.error && j.error.code; e.details = j.error && j.error.details; throw e; }
        return j;
      });
    });
  }
  function showError(btn, msg) {
    var box = document.querySelector("[data-passkey-error]");
    if (box) { box.textContent = msg; box.hidden = false; }
    if (btn) { btn.disabled = false; }
  }
  function go(btn, fallback) {
    var u = new URL(btn.getAttribute("data-next") || fallback, window.location.href);
    if (u.pathname === window.location.pathname && u.search === window.location.search) {
      window.location.hash = u.hash;
      window.location.reload(); // the same page, with what just changed
      return;
    }
    window.location.assign(u.href);
  }

  var conditional = null; // the pending autofill request, aborted before a button's own

  function login(btn, mediation) {
    if (conditional) { conditional.abort(); conditional = null; }
    var ctl = new AbortController();
    if (mediation) { conditional = ctl; }
    return post("/api/v1/login/passkey/begin").then(function (o) {
      var req = { publicKey: requestOptions(o.publicKey), signal: ctl.signal };
      if (mediation) { req.mediation = mediation; }
      return navigator.credentials.get(req);
    }).then(function (c) {
      return post("/api/v1/login/passkey/finish", credJSON(c));
    }).then(function () { go(btn, "/account"); });
  }
  var actions = {
    login: function (btn) { return login(btn); },
    register: function (btn) {
      var nameField = document.querySelector("[data-passkey-name]");
      var name = nameField ? nameField.value.trim() : "";
      return post("/api/v1/passkeys/register/begin").then(function (o) {
        return navigator.credentials.create({ publicKey: creationOptions(o.publicKey) });
      }).then(function (c) {
        return post("/api/v1/passkeys/register/finish" + (name ? "?name=" + encodeURIComponent(name) : ""), credJSON(c));
      }).then(function () { go(btn, "/account#passkeys"); }, function (e) {
        if (e.code === "step_up_required" && e.details && e.details.reauth_url) {
          window.location.assign(e.details.reauth_url.split("&return_to=")[0] + "&return_to=" + encodeURIComponent("/account#passkeys"));
          return;
        }
        throw e;
      });
    },
    reauth: function (btn) {
      return post("/api/v1/reauth/passkey/begin").then(function (o) {
        return navigator.credentials.get({ publicKey: requestOptions(o.publicKey) });
      }).then(function (c) {
        return post("/api/v1/reauth/passkey/finish", credJSON(c));
      }).then(function () { go(btn, "/account"); });
    },
    mfa: function (btn) {
      var tok = btn.getAttribute("data-mfa-token");
      return post("/api/v1/login/mfa/passkey/begin", { mfa_token: tok }).then(function (o) {
        return navigator.credentials.get({ publicKey: requestOptions(o.publicKey) });
      }).then(function (c) {
        return post("/api/v1/login/mfa/passkey/finish", { mfa_token: tok, credential: credJSON(c) });
      }).then(function () { go(btn, "/account"); });
    }
  };
  document.addEventListener("DOMContentLoaded", function () {
    if (!window.PublicKeyCredential || !navigator.credentials) { return; }
    var btns = document.querySelectorAll("[data-passkey]");
    for (var i = 0; i < btns.length; i++) {
      (function (btn) {
        var act = actions[btn.getAttribute("data-passkey")];
        if (!act) { return; }
        btn.hidden = false;
        btn.addEventListener("click", function (ev) {
          ev.preventDefault();
          btn.disabled = true;
          act(btn).catch(function (e) {
            if (e && e.name === "AbortError") { btn.disabled = false; return; }
            showError(btn, e && e.name === "NotAllowedError" ? "The passkey request was cancelled or timed out. Try again." : (e && e.message) || "That did not work.");
          });
        });
      })(btns[i]);
    }
    // Autofill: offer the tenant's passkeys in the username field's suggestions.
    var field = document.querySelector('input[autocomplete~="webauthn"]');
    var loginBtn = document.querySelector('[data-passkey="login"]');
    if (field && loginBtn && PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (ok) {
        if (!ok) { return; }
        login(loginBtn, "conditional").catch(function (e) {
          if (e && e.name !== "AbortError" && e.name !== "NotAllowedError") { showError(null, e.message); }
        });
      });
    }
  });
})();
