package httpapi

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/stepup"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

func handleListSessions(rs *responder, sessions *session.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := PrincipalFrom(r.Context())
		list, err := sessions.List(r.Context(), p)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, map[string]any{"sessions": list})
	}
}

func handleRevokeSession(rs *responder, sessions *session.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := PrincipalFrom(r.Context())
		id, err := uuid.Parse(chi.URLParam(r, "id"))
		if err != nil {
			rs.Error(w, r, session.ErrNotFound)
			return
		}
		if err := sessions.Revoke(r.Context(), p, id, "revoked_by_user"); err != nil {
			rs.Error(w, r, err)
			return
		}
		if id == p.Session.ID {
			clearSessionCookie(w)
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func handleRevokeOthers(rs *responder, sessions *session.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := PrincipalFrom(r.Context())
		n, err := sessions.RevokeOthers(r.Context(), p)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, map[string]int{"revoked": n})
	}
}

// handleChangePassword accepts a fresh step-up (rule password.change) or, without one, the
// current password in the body.
func handleChangePassword(rs *responder, accounts *account.Service, steps *stepup.Service) http.HandlerFunc {
	type request struct {
		CurrentPassword string `json:"current_password"`
		Password        string `json:"password"`
	}
	return func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := decodeJSON(r, &req); err != nil {
			rs.Error(w, r, err)
			return
		}
		p, _ := PrincipalFrom(r.Context())
		t, _ := TenantFrom(r.Context())
		stepErr := steps.Require(r.Context(), t, p, tenant.ActionPasswordChange, "")
		if stepErr != nil && req.CurrentPassword == "" {
			stepUpError(rs, w, r, stepErr)
			return
		}
		n, err := accounts.ChangePassword(r.Context(), t, p, req.CurrentPassword, req.Password, stepErr == nil)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, map[string]any{"status": "password_changed", "revoked_sessions": n})
	}
}

func handleSecureAccount(rs *responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req tokenRequest
		if err := decodeJSON(r, &req); err != nil {
			rs.Error(w, r, err)
			return
		}
		t, _ := TenantFrom(r.Context())
		if err := accounts.SecureAccount(r.Context(), t, req.Token); err != nil {
			rs.Error(w, r, err)
			return
		}
		clearSessionCookie(w)
		rs.JSON(w, http.StatusOK, statusBody{Status: "signed_out_everywhere"})
	}
}
