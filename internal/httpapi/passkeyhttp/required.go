package passkeyhttp

import (
	"errors"
	"net/http"
	"strings"

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

// EnrolFirst restricts, on every tenant route, a session the tenant's passkey policy does
// not accept (tenant.PasskeyPolicy: a role that requires a passkey, and a session made by
// password, TOTP, SSO or anything but a passkey): only the enrolment path takes it
// (enrolmentPath: the passkey page, adding a passkey, confirming with one, signing out,
// and the routes that do not use the session). Elsewhere a page is sent to the passkey
// page and comes back after it; everything else answers 403 phishing_resistant_required
// with details.url. A new route is closed to such a session unless it is listed here.
func EnrolFirst(rs *kit.Responder, steps *stepup.Service) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := kit.PrincipalFrom(r.Context())
			t, _ := kit.TenantFrom(r.Context())
			if !ok || len(t.Policy.Passkeys.RequireForRoles) == 0 || p.Session.PhishingResistant() || enrolmentPath(r) {
				next.ServeHTTP(w, r)
				return
			}
			page := r.Method == http.MethodGet && !strings.HasPrefix(r.URL.Path, "/api/")
			ret := "/account"
			if page {
				ret = r.URL.RequestURI()
			}
			err := steps.RequirePhishingResistant(r.Context(), t, p, ret)
			if err == nil {
				next.ServeHTTP(w, r)
				return
			}
			var ae *apperr.Error
			if page && errors.As(err, &ae) && ae.Code == "phishing_resistant_required" {
				u, _ := ae.Details["url"].(string)
				http.Redirect(w, r, u, http.StatusSeeOther)
				return
			}
			rs.Error(w, r, err)
		})
	}
}

// enrolmentPaths (exact) and enrolmentPrefixes are what a restricted session may reach:
// the way to a passkey, signing in or out, and routes that authenticate by something else
// (a mailed token, an SSO or OIDC protocol message, a SCIM token) or by nothing.
var (
	enrolmentPaths = map[string]bool{
		"/": true, "/brand.css": true, "/api/v1/tenant": true, "/api/v1/session": true, "/api/v1/logout": true,
		"/api/v1/reauth": true, "/login": true, "/login/mfa": true, "/logout": true, "/signed-out": true, "/reauth": true,
		stepup.RequiredPasskeyPath: true, "/account/passkeys/offer": true, "/signup": true, "/signup/sent": true,
		"/invite": true, "/verify": true, "/verify/resend": true, "/email/undo": true, "/account/secure": true,
	}
	enrolmentPrefixes = []string{
		"/api/v1/login", "/api/v1/reauth/passkey/", "/api/v1/passkeys/register/", "/api/v1/signup",
		"/api/v1/verification/", "/api/v1/password/", "/api/v1/account/email/undo", "/api/v1/account/secure",
		"/api/v1/account/deletion/", "/api/v1/sso/discover", "/sso/", "/oauth2/", "/.well-known/", "/scim/",
		"/password/", "/account/deletion/", "/_dev/",
	}
)

func enrolmentPath(r *http.Request) bool {
	if enrolmentPaths[r.URL.Path] || (r.URL.Path == "/api/v1/passkeys" && r.Method == http.MethodGet) {
		return true
	}
	for _, p := range enrolmentPrefixes {
		if strings.HasPrefix(r.URL.Path, p) {
			return true
		}
	}
	return false
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
