package accounthttp

import (
	"context"
	"net/http"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// HandleSignup creates an account and sends the verification mail (202).
func HandleSignup(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	type request struct {
		Email    string `json:"email"`
		Password string `json:"password"`
		Name     string `json:"name"`
	}
	return kit.JSONHandler(rs, http.StatusAccepted, func(r *http.Request, t tenant.Tenant, req request) (kit.Status, error) {
		err := accounts.Signup(r.Context(), t, account.SignupInput{Email: req.Email, Password: req.Password, Name: req.Name}, kit.Meta(r))
		return kit.Status{Status: "verification_sent"}, err
	})
}

type tokenRequest struct {
	Token string `json:"token"`
}

// HandleConfirmEmail consumes a verification token.
func HandleConfirmEmail(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return kit.JSONHandler(rs, http.StatusOK, func(r *http.Request, t tenant.Tenant, req tokenRequest) (map[string]any, error) {
		u, err := accounts.ConfirmEmail(r.Context(), t, req.Token)
		return map[string]any{"user": u}, err
	})
}

type emailRequest struct {
	Email string `json:"email"`
}

// HandleEmailAccepted serves the endpoints that take an address and always answer 202
// (resend verification, forgot password), so the answer never tells whether it exists.
func HandleEmailAccepted(rs *kit.Responder, send func(context.Context, tenant.Tenant, string, account.Meta) error) http.HandlerFunc {
	return kit.JSONHandler(rs, http.StatusAccepted, func(r *http.Request, t tenant.Tenant, req emailRequest) (kit.Status, error) {
		return kit.Status{Status: "accepted"}, send(r.Context(), t, req.Email, kit.Meta(r))
	})
}

func HandleResetPassword(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	type request struct {
		Token    string `json:"token"`
		Password string `json:"password"`
	}
	return kit.JSONHandler(rs, http.StatusOK, func(r *http.Request, t tenant.Tenant, req request) (kit.Status, error) {
		return kit.Status{Status: "password_reset"}, accounts.ResetPassword(r.Context(), t, req.Token, req.Password)
	})
}

type loginResponse struct {
	Session struct {
		ID        string    `json:"id"`
		Token     string    `json:"token"`
		ExpiresAt time.Time `json:"expires_at"`
	} `json:"session"`
	User account.User `json:"user"`
	// PasskeyRequired: the tenant requires a passkey of the user's role and this sign-in
	// used none; the session is restricted to the enrolment path (PasskeyURL, the passkey
	// registration and passkey re-authentication endpoints) until a passkey confirms it.
	PasskeyRequired bool   `json:"passkey_required,omitempty"`
	PasskeyURL      string `json:"passkey_url,omitempty"`
}

// HandleLogin checks an address and password and starts a session (or asks for the
// second factor).
func HandleLogin(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	type request struct {
		Email    string `json:"email"`
		Password string `json:"password"`
	}
	return loginHandler(rs, func(r *http.Request, t tenant.Tenant, req request) (account.LoginResult, error) {
		return accounts.Login(r.Context(), t, req.Email, req.Password, kit.Meta(r))
	})
}

func HandleLogout(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := kit.PrincipalFrom(r.Context())
		if err := accounts.Logout(r.Context(), p); err != nil {
			rs.Error(w, r, err)
			return
		}
		kit.ClearSessionCookie(w)
		w.WriteHeader(http.StatusNoContent)
	}
}

// HandleRequestEmailChange sends a confirmation link to the new address (step-up
// email.change in front).
func HandleRequestEmailChange(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return kit.JSONHandler(rs, http.StatusAccepted, func(r *http.Request, t tenant.Tenant, req emailRequest) (kit.Status, error) {
		p, _ := kit.PrincipalFrom(r.Context())
		return kit.Status{Status: "verification_sent"}, accounts.RequestEmailChange(r.Context(), t, p, req.Email)
	})
}

// HandleUndoEmailChange restores the old address with the token mailed to it.
func HandleUndoEmailChange(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return kit.JSONHandler(rs, http.StatusOK, func(r *http.Request, t tenant.Tenant, req tokenRequest) (map[string]any, error) {
		u, err := accounts.UndoEmailChange(r.Context(), t, req.Token)
		return map[string]any{"user": u}, err
	})
}

// HandleExport answers GET /api/v1/account/export: everything stored about the caller, as
// a download (step-up account.export).
func HandleExport(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := kit.PrincipalFrom(r.Context())
		t, _ := kit.TenantFrom(r.Context())
		doc, err := accounts.Export(r.Context(), t, p.UserID)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		w.Header().Set("Content-Disposition", `attachment; filename="gatehouse-export.json"`)
		rs.JSON(w, http.StatusOK, doc)
	}
}

func HandleDeleteAccount(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := kit.PrincipalFrom(r.Context())
		t, _ := kit.TenantFrom(r.Context())
		grace := time.Duration(t.Policy.Deletion.GraceDays) * 24 * time.Hour
		d, err := accounts.RequestDeletion(r.Context(), t, p.UserID, audit.By(r.Context(), p.UserID, p.Email), grace)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		kit.ClearSessionCookie(w)
		rs.JSON(w, http.StatusAccepted, d)
	}
}

// HandleCancelDeletion keeps an account scheduled for deletion, with the mailed token.
func HandleCancelDeletion(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return kit.JSONHandler(rs, http.StatusOK, func(r *http.Request, t tenant.Tenant, req tokenRequest) (map[string]any, error) {
		u, err := accounts.CancelDeletion(r.Context(), t, req.Token)
		return map[string]any{"user": u}, err
	})
}
