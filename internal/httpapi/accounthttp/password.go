package accounthttp

import (
	"fmt"
	"net/http"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
	"github.com/gatehouse-id/gatehouse/internal/stepup"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// HandleChangePassword accepts a fresh step-up (rule password.change) or, without one, the
// current password in the body.
func HandleChangePassword(rs *kit.Responder, accounts *account.Service, steps *stepup.Service) http.HandlerFunc {
	type request struct {
		CurrentPassword string `json:"current_password"`
		Password        string `json:"password"`
	}
	return func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := kit.DecodeJSON(r, &req); err != nil {
			rs.Error(w, r, err)
			return
		}
		p, _ := kit.PrincipalFrom(r.Context())
		t, _ := kit.TenantFrom(r.Context())
		stepErr := steps.Require(r.Context(), t, p, tenant.ActionPasswordChange, "")
		if stepErr != nil && req.CurrentPassword == "" {
			kit.StepUpError(rs, w, r, stepErr)
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

func HandleSecureAccount(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var req tokenRequest
		if err := kit.DecodeJSON(r, &req); err != nil {
			rs.Error(w, r, err)
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		if err := accounts.SecureAccount(r.Context(), t, req.Token); err != nil {
			rs.Error(w, r, err)
			return
		}
		kit.ClearSessionCookie(w)
		rs.JSON(w, http.StatusOK, kit.Status{Status: "signed_out_everywhere"})
	}
}

// PagePasswordChangePost changes the password with the current one, or — from the "Set a
// password" form of an account without one (or with the current password left empty) —
// after a step-up. A password is never kept across the re-authentication: the page that
// comes back says to type it again.
func PagePasswordChangePost(rs *kit.Responder, accounts *account.Service, steps *stepup.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := kit.SignedIn(w, r, "/account")
		if !ok {
			return
		}
		current := r.PostFormValue("current_password")
		if current == "" && !stepUpKeeping(rs, steps, accounts, w, r, p, tenant.ActionPasswordChange, "", "/account") {
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		n, err := accounts.ChangePassword(r.Context(), t, p, current, r.PostFormValue("password"), current == "")
		if err != nil {
			accountFormError(rs, accounts, w, r, p, err, func(v *AccountView, msg string) { v.PasswordError = msg })
			return
		}
		rs.Message(w, r, "Password changed", fmt.Sprintf("Your new password is set. %d other session(s) were signed out.", n), "Back to your account", "/account")
	}
}

func PageSecure(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return securePage.page(rs, accounts)
}

func PageSecurePost(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		if err := accounts.SecureAccount(r.Context(), t, r.PostFormValue("token")); err != nil {
			securePage.fail(rs, w, r, err)
			return
		}
		kit.ClearSessionCookie(w)
		rs.Message(w, r, "Signed out everywhere",
			"Every session of your account was signed out, and we sent you a link to choose a new password.", "Sign in", "/login")
	}
}
