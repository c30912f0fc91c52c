package httpapi

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/stepup"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// requireStepUp is the one gate in front of protected JSON actions: 403 step_up_required
// with the rule's details, and for bearer clients the RFC 9470 challenge.
func requireStepUp(rs *responder, steps *stepup.Service, action tenant.StepUpAction) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, _ := PrincipalFrom(r.Context())
			t, _ := TenantFrom(r.Context())
			if err := steps.Require(r.Context(), t, p, action, ""); err != nil {
				stepUpError(rs, w, r, err)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// stepUpError answers a step-up refusal, adding the RFC 9470 challenge for bearer clients.
func stepUpError(rs *responder, w http.ResponseWriter, r *http.Request, err error) {
	if e := apperr.From(err); e.Code == "step_up_required" && strings.HasPrefix(r.Header.Get("Authorization"), "Bearer ") {
		if age, ok := e.Details["max_age_seconds"].(int); ok {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer error="insufficient_user_authentication", error_description="%s", max_age=%d`,
				"A more recent authentication is required", age))
		}
	}
	rs.Error(w, r, err)
}

type sessionBody struct {
	ID        string    `json:"id"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
}

func handleReauth(rs *responder, steps *stepup.Service) http.HandlerFunc {
	type request struct {
		Password string `json:"password"`
		Code     string `json:"code"`
	}
	return func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := decodeJSON(r, &req); err != nil {
			rs.Error(w, r, err)
			return
		}
		if (req.Password == "") == (req.Code == "") {
			rs.Error(w, r, apperr.New(apperr.Invalid, "invalid_request", "Send either a password or a code."))
			return
		}
		p, _ := PrincipalFrom(r.Context())
		t, _ := TenantFrom(r.Context())
		iss, err := steps.Reauth(r.Context(), t, p, stepup.ReauthInput{Password: req.Password, Code: req.Code}, metaOf(r))
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		setSessionCookie(w, iss.Token, iss.Session.ExpiresAt)
		rs.JSON(w, http.StatusOK, map[string]any{"auth_time": iss.Session.AuthTime, "aal": iss.Session.AAL,
			"session": sessionBody{ID: iss.Session.ID.String(), Token: iss.Token, ExpiresAt: iss.Session.ExpiresAt}})
	}
}

func handleLoginMFA(rs *responder, accounts *account.Service) http.HandlerFunc {
	type request struct {
		MFAToken string `json:"mfa_token"`
		Code     string `json:"code"`
	}
	return func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := decodeJSON(r, &req); err != nil {
			rs.Error(w, r, err)
			return
		}
		t, _ := TenantFrom(r.Context())
		res, err := accounts.LoginMFA(r.Context(), t, req.MFAToken, req.Code, metaOf(r))
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		writeLogin(rs, w, res)
	}
}

func writeLogin(rs *responder, w http.ResponseWriter, res account.LoginResult) {
	if res.MFARequired {
		rs.JSON(w, http.StatusOK, map[string]any{"mfa_required": true, "mfa_token": res.MFAToken})
		return
	}
	setSessionCookie(w, res.Session.Token, res.Session.Session.ExpiresAt)
	var out loginResponse
	out.Session.ID, out.Session.Token, out.Session.ExpiresAt = res.Session.Session.ID.String(), res.Session.Token, res.Session.Session.ExpiresAt
	out.User = res.User
	rs.JSON(w, http.StatusOK, out)
}

func handleEnrollTOTP(rs *responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := PrincipalFrom(r.Context())
		t, _ := TenantFrom(r.Context())
		e, err := accounts.EnrollTOTP(r.Context(), t, p)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusCreated, e)
	}
}

func handleConfirmTOTP(rs *responder, accounts *account.Service) http.HandlerFunc {
	type request struct {
		Code string `json:"code"`
	}
	return func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := decodeJSON(r, &req); err != nil {
			rs.Error(w, r, err)
			return
		}
		p, _ := PrincipalFrom(r.Context())
		t, _ := TenantFrom(r.Context())
		if err := accounts.ConfirmTOTP(r.Context(), t, p, req.Code); err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, statusBody{Status: "mfa_enabled"})
	}
}

func handleDisableTOTP(rs *responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := PrincipalFrom(r.Context())
		t, _ := TenantFrom(r.Context())
		if err := accounts.DisableTOTP(r.Context(), t, p); err != nil {
			rs.Error(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func handleRegenerateRecoveryCodes(rs *responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := PrincipalFrom(r.Context())
		t, _ := TenantFrom(r.Context())
		codes, err := accounts.RegenerateRecoveryCodes(r.Context(), t, p)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, map[string]any{"recovery_codes": codes})
	}
}
