package accounthttp

import (
	"encoding/json"
	"net/http"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
	"github.com/gatehouse-id/gatehouse/internal/passkey"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// HandleLoginPasskeyBegin answers the request options of a passwordless sign-in and binds
// the ceremony to this browser (cookie passkey.BindingCookie, five minutes).
func HandleLoginPasskeyBegin(rs *kit.Responder, passkeys *passkey.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		opts, bind, err := passkeys.BeginLogin(r.Context(), t)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: passkey.BindingCookie, Value: bind, Path: "/", Secure: true, HttpOnly: true,
			SameSite: http.SameSiteStrictMode, MaxAge: int(passkey.ChallengeTTL.Seconds())})
		rs.JSON(w, http.StatusOK, opts)
	}
}

// HandleLoginPasskeyFinish signs in with the assertion (PublicKeyCredential.toJSON()).
func HandleLoginPasskeyFinish(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var raw json.RawMessage
		if err := kit.DecodeJSON(r, &raw); err != nil {
			rs.Error(w, r, err)
			return
		}
		bind := ""
		if c, err := r.Cookie(passkey.BindingCookie); err == nil {
			bind = c.Value
		}
		t, _ := kit.TenantFrom(r.Context())
		res, err := accounts.LoginPasskey(r.Context(), t, bind, raw, kit.Meta(r))
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: passkey.BindingCookie, Value: "", Path: "/", Secure: true, HttpOnly: true,
			SameSite: http.SameSiteStrictMode, MaxAge: -1})
		writeLogin(rs, w, res)
	}
}

type mfaPasskeyBegin struct {
	MFAToken string `json:"mfa_token"`
}

// HandleLoginMFAPasskeyBegin answers the request options for the second sign-in step by
// passkey ({mfa_token}).
func HandleLoginMFAPasskeyBegin(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return kit.JSONHandler(rs, http.StatusOK, func(r *http.Request, t tenant.Tenant, in mfaPasskeyBegin) (json.RawMessage, error) {
		return accounts.BeginLoginMFAPasskey(r.Context(), t, in.MFAToken)
	})
}

type mfaPasskeyFinish struct {
	MFAToken   string          `json:"mfa_token"`
	Credential json.RawMessage `json:"credential"`
}

// HandleLoginMFAPasskeyFinish completes the sign-in with {mfa_token, credential}.
func HandleLoginMFAPasskeyFinish(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return loginHandler(rs, func(r *http.Request, t tenant.Tenant, in mfaPasskeyFinish) (account.LoginResult, error) {
		return accounts.LoginMFAPasskey(r.Context(), t, in.MFAToken, in.Credential, kit.Meta(r))
	})
}
