package accounthttp

import (
	"net/http"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
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
				rs.Page(w, r, status, "login_mfa", "Enter your code", LoginMFAView{Error: msg, MFAToken: tok, ReturnTo: returnTo})
			}
			return
		}
		kit.SetSessionCookie(w, res.Session.Token, res.Session.Session.ExpiresAt)
		http.Redirect(w, r, kit.SafeReturn(returnTo), http.StatusSeeOther)
	}
}
