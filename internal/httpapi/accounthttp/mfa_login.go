package accounthttp

import (
	"net/http"
	"net/url"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
	"github.com/gatehouse-id/gatehouse/internal/stepup"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// HandleLoginMFA completes a sign-in with the second factor.
func HandleLoginMFA(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	type request struct {
		MFAToken string `json:"mfa_token"`
		Code     string `json:"code"`
	}
	return loginHandler(rs, func(r *http.Request, t tenant.Tenant, req request) (account.LoginResult, error) {
		return accounts.LoginMFA(r.Context(), t, req.MFAToken, req.Code, kit.Meta(r))
	})
}

// loginHandler decodes In, calls the sign-in step and answers it with writeLogin (the
// session cookie, or the second factor owed).
func loginHandler[In any](rs *kit.Responder, call func(r *http.Request, t tenant.Tenant, in In) (account.LoginResult, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var in In
		if err := kit.DecodeJSON(r, &in); err != nil {
			rs.Error(w, r, err)
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		res, err := call(r, t, in)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		writeLogin(rs, w, res)
	}
}

func writeLogin(rs *kit.Responder, w http.ResponseWriter, res account.LoginResult) {
	if res.MFARequired {
		rs.JSON(w, http.StatusOK, map[string]any{"mfa_required": true, "mfa_token": res.MFAToken})
		return
	}
	kit.SetSessionCookie(w, res.Session.Token, res.Session.Session.ExpiresAt)
	var out loginResponse
	out.Session.ID, out.Session.Token, out.Session.ExpiresAt = res.Session.Session.ID.String(), res.Session.Token, res.Session.Session.ExpiresAt
	out.User = res.User
	if res.PasskeyRequired {
		out.PasskeyRequired = true
		out.PasskeyURL = stepup.RequiredPasskeyPath + "?" + url.Values{"return_to": {"/account"}}.Encode()
	}
	rs.JSON(w, http.StatusOK, out)
}

func PageLoginMFAPost(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		tok, returnTo := r.PostFormValue("mfa_token"), r.PostFormValue("return_to")
		res, err := accounts.LoginMFA(r.Context(), t, tok, r.PostFormValue("code"), kit.Meta(r))
		if err != nil {
			if msg, status, ok := rs.FormError(w, r, err); ok {
				if apperr.Is(err, "invalid_mfa_token") {
					rs.Page(w, r, status, "login", "Sign in", LoginView{Error: msg, ReturnTo: returnTo})
					return
				}
				rs.Page(w, r, status, "login_mfa", "Enter your code", LoginMFAView{Error: msg, MFAToken: tok, ReturnTo: returnTo,
					Passkey: r.PostFormValue("passkey") == "1"})
			}
			return
		}
		kit.SetSessionCookie(w, res.Session.Token, res.Session.Session.ExpiresAt)
		http.Redirect(w, r, afterLogin(w, r, res, returnTo), http.StatusSeeOther)
	}
}

// Passkey offer cookies: OfferedCookie remembers in this browser that the offer to add a
// passkey was made (once); OfferCookie asks the next account page to make it.
const (
	OfferedCookie = "__Host-gatehouse-passkey-offered"
	OfferCookie   = "__Host-gatehouse-passkey-offer"
)

// afterLogin is where a page sign-in goes (returnTo). After a password sign-in of a user
// without a passkey it arranges, once per browser, for the account page to offer one.
func afterLogin(w http.ResponseWriter, r *http.Request, res account.LoginResult, returnTo string) string {
	if res.PasskeyRequired {
		return stepup.RequiredPasskeyPath + "?" + url.Values{"return_to": {kit.SafeReturn(returnTo)}}.Encode()
	}
	if res.OfferPasskey {
		if _, err := r.Cookie(OfferedCookie); err != nil {
			http.SetCookie(w, &http.Cookie{Name: OfferedCookie, Value: "1", Path: "/", Secure: true, HttpOnly: true,
				SameSite: http.SameSiteLaxMode, MaxAge: 400 * 24 * 3600})
			http.SetCookie(w, &http.Cookie{Name: OfferCookie, Value: "1", Path: "/", Secure: true, HttpOnly: true,
				SameSite: http.SameSiteLaxMode, MaxAge: 3600})
		}
	}
	return kit.SafeReturn(returnTo)
}
