package kit

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/stepup"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// RequireStepUp is the one gate in front of protected JSON actions: 403 step_up_required
// with the rule's details, and for bearer clients the RFC 9470 challenge.
func RequireStepUp(rs *Responder, steps *stepup.Service, action tenant.StepUpAction) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, _ := PrincipalFrom(r.Context())
			t, _ := TenantFrom(r.Context())
			if err := steps.Require(r.Context(), t, p, action, ""); err != nil {
				StepUpError(rs, w, r, err)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// StepUpError answers a step-up refusal, adding the RFC 9470 challenge for bearer clients.
func StepUpError(rs *Responder, w http.ResponseWriter, r *http.Request, err error) {
	if req, ok := stepup.AsRequired(err); ok && strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer error="insufficient_user_authentication", error_description="%s", max_age=%d`,
			"A more recent authentication is required", int(req.Requirement.MaxAge.Seconds())))
	}
	rs.Error(w, r, err)
}

// SessionBody is a session as JSON answers carry it (id, token, expiry).
type SessionBody struct {
	ID        string    `json:"id"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

// PageStepUp checks action for a page; when re-authentication is needed it sends the
// browser to /reauth, which brings it back to returnTo (the page, never a replay of the
// POST: what the user typed is typed again on a fresh form). It reports whether the
// handler may go on.
func PageStepUp(rs *Responder, steps *stepup.Service, w http.ResponseWriter, r *http.Request, p session.Principal, action tenant.StepUpAction, returnTo string) bool {
	t, _ := TenantFrom(r.Context())
	err := steps.Require(r.Context(), t, p, action, returnTo)
	if err == nil {
		return true
	}
	if req, ok := stepup.AsRequired(err); ok {
		http.Redirect(w, r, req.ReauthURL, http.StatusSeeOther)
		return false
	}
	rs.Error(w, r, err)
	return false
}
