package passkeyhttp

import (
	"errors"
	"net/http"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
	"github.com/gatehouse-id/gatehouse/internal/passkey"
	"github.com/gatehouse-id/gatehouse/internal/stepup"
)

// RequirePhishingResistant gates the admin portal and API for users the tenant requires a
// passkey of (tenant.PasskeyPolicy): a session without one is sent to the page that leads
// to using or adding one (pages), or refused with 403 phishing_resistant_required and
// details.url (API). Requests without a session pass (the next gate answers them).
func RequirePhishingResistant(rs *kit.Responder, steps *stepup.Service, pages bool) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := kit.PrincipalFrom(r.Context())
			if !ok {
				next.ServeHTTP(w, r)
				return
			}
			t, _ := kit.TenantFrom(r.Context())
			ret := "/admin"
			if pages && r.Method == http.MethodGet {
				ret = r.URL.RequestURI()
			}
			err := steps.RequirePhishingResistant(r.Context(), t, p, ret)
			if err == nil {
				next.ServeHTTP(w, r)
				return
			}
			var ae *apperr.Error
			if pages && errors.As(err, &ae) && ae.Code == "phishing_resistant_required" {
				u, _ := ae.Details["url"].(string)
				http.Redirect(w, r, u, http.StatusSeeOther)
				return
			}
			rs.Error(w, r, err)
		})
	}
}

// RequiredView is the page that leads a user whose role requires a passkey to use one
// (HasPasskey) or to add one first.
type RequiredView struct {
	ReturnTo, Self string
	HasPasskey     bool
}

// PageRequired is GET /account/passkeys/required?return_to=.
func PageRequired(rs *kit.Responder, passkeys *passkey.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := kit.SignedIn(w, r, r.URL.RequestURI())
		if !ok {
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		has, err := passkeys.HasPasskey(r.Context(), t, p.UserID)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.Page(w, r, http.StatusOK, "passkey_required", "Use a passkey", RequiredView{ReturnTo: kit.SafeReturn(r.URL.Query().Get("return_to")),
			Self: r.URL.RequestURI(), HasPasskey: has})
	}
}
