package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/export"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

type statusBody struct {
	Status string `json:"status"`
}

func handleSignup(rs *responder, accounts *account.Service) http.HandlerFunc {
	type request struct {
		Email    string `json:"email"`
		Password string `json:"password"`
		Name     string `json:"name"`
	}
	return func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := decodeJSON(r, &req); err != nil {
			rs.Error(w, r, err)
			return
		}
		t, _ := TenantFrom(r.Context())
		if err := accounts.Signup(r.Context(), t, account.SignupInput{Email: req.Email, Password: req.Password, Name: req.Name}, metaOf(r)); err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusAccepted, statusBody{Status: "verification_sent"})
	}
}

type tokenRequest struct {
	Token string `json:"token"`
}

func handleConfirmEmail(rs *responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req tokenRequest
		if err := decodeJSON(r, &req); err != nil {
			rs.Error(w, r, err)
			return
		}
		t, _ := TenantFrom(r.Context())
		u, err := accounts.ConfirmEmail(r.Context(), t, req.Token)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, map[string]any{"user": u})
	}
}

type emailRequest struct {
	Email string `json:"email"`
}

// handleEmailAccepted serves the endpoints that take an address and always answer 202
// (resend verification, forgot password), so the answer never tells whether it exists.
func handleEmailAccepted(rs *responder, send func(context.Context, tenant.Tenant, string, account.Meta) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req emailRequest
		if err := decodeJSON(r, &req); err != nil {
			rs.Error(w, r, err)
			return
		}
		t, _ := TenantFrom(r.Context())
		if err := send(r.Context(), t, req.Email, metaOf(r)); err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusAccepted, statusBody{Status: "accepted"})
	}
}

func handleResetPassword(rs *responder, accounts *account.Service) http.HandlerFunc {
	type request struct {
		Token    string `json:"token"`
		Password string `json:"password"`
	}
	return func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := decodeJSON(r, &req); err != nil {
			rs.Error(w, r, err)
			return
		}
		t, _ := TenantFrom(r.Context())
		if err := accounts.ResetPassword(r.Context(), t, req.Token, req.Password); err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, statusBody{Status: "password_reset"})
	}
}

type loginResponse struct {
	Session struct {
		ID        string    `json:"id"`
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	} `json:"session"`
	User account.User `json:"user"`
}

func handleLogin(rs *responder, accounts *account.Service) http.HandlerFunc {
	type request struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	return func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := decodeJSON(r, &req); err != nil {
			rs.Error(w, r, err)
			return
		}
		t, _ := TenantFrom(r.Context())
		res, err := accounts.Login(r.Context(), t, req.Email, req.Password, metaOf(r))
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		writeLogin(rs, w, res)
	}
}

func handleLogout(rs *responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := PrincipalFrom(r.Context())
		if err := accounts.Logout(r.Context(), p); err != nil {
			rs.Error(w, r, err)
			return
		}
		clearSessionCookie(w)
		w.WriteHeader(http.StatusNoContent)
	}
}

// whoami is the body of GET /api/v1/session: what an app needs to know about a request.
type whoami struct {
	Session session.Session `json:"session"`
	User    struct {
		ID              uuid.UUID  `json:"id"`
		Email           string     `json:"email"`
		Name            string     `json:"name"`
		Status          string     `json:"status"`
		EmailVerified   bool       `json:"email_verified"`
		EmailVerifiedAt *time.Time `json:"email_verified_at"`
		CreatedAt       time.Time  `json:"created_at"`
	} `json:"user"`
	Tenant struct {
		Slug string `json:"slug"`
		Name string `json:"name"`
	} `json:"tenant"`
}

func handleWhoami(rs *responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := PrincipalFrom(r.Context())
		t, _ := TenantFrom(r.Context())
		var out whoami
		out.Session = p.Session
		out.User.ID, out.User.Email, out.User.Name, out.User.Status = p.UserID, p.Email, p.Name, p.Status
		out.User.EmailVerified, out.User.EmailVerifiedAt, out.User.CreatedAt = p.EmailVerifiedAt != nil, p.EmailVerifiedAt, p.UserCreatedAt
		out.Tenant.Slug, out.Tenant.Name = t.Slug, t.Name
		buf := appendWhoami(make([]byte, 0, 768), &out)
		w.Header()["Content-Type"] = jsonContentType
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(buf)
	}
}

func handleRequestEmailChange(rs *responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req emailRequest
		if err := decodeJSON(r, &req); err != nil {
			rs.Error(w, r, err)
			return
		}
		p, _ := PrincipalFrom(r.Context())
		t, _ := TenantFrom(r.Context())
		if err := accounts.RequestEmailChange(r.Context(), t, p, req.Email); err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusAccepted, statusBody{Status: "verification_sent"})
	}
}

func handleUndoEmailChange(rs *responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req tokenRequest
		if err := decodeJSON(r, &req); err != nil {
			rs.Error(w, r, err)
			return
		}
		t, _ := TenantFrom(r.Context())
		u, err := accounts.UndoEmailChange(r.Context(), t, req.Token)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, map[string]any{"user": u})
	}
}

var jsonContentType = fixed("application/json; charset=utf-8")

// handleExport answers GET /api/v1/account/export: everything stored about the caller, as
// a download (step-up account.export).
func handleExport(rs *responder, st *store.Store) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := PrincipalFrom(r.Context())
		t, _ := TenantFrom(r.Context())
		doc, err := export.Build(r.Context(), st, t.ID, p.UserID, t.Slug, t.Name, time.Now())
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		w.Header().Set("Content-Disposition", `attachment; filename="gatehouse-export.json"`)
		rs.JSON(w, http.StatusOK, doc)
	}
}

func handleDeleteAccount(rs *responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := PrincipalFrom(r.Context())
		t, _ := TenantFrom(r.Context())
		grace := time.Duration(t.Policy.Deletion.GraceDays) * 24 * time.Hour
		d, err := accounts.RequestDeletion(r.Context(), t, p.UserID, audit.By(r.Context(), p.UserID, p.Email), grace)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		clearSessionCookie(w)
		rs.JSON(w, http.StatusAccepted, d)
	}
}

func handleCancelDeletion(rs *responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req tokenRequest
		if err := decodeJSON(r, &req); err != nil {
			rs.Error(w, r, err)
			return
		}
		t, _ := TenantFrom(r.Context())
		u, err := accounts.CancelDeletion(r.Context(), t, req.Token)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, map[string]any{"user": u})
	}
}
