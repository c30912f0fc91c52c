package accounthttp

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
	"github.com/gatehouse-id/gatehouse/internal/sso"
	"github.com/gatehouse-id/gatehouse/internal/stepup"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

func PageSignup(rs *kit.Responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		rs.Page(w, r, http.StatusOK, "signup", "Create your account", SignupView{Disabled: !t.Policy.Signup.Enabled})
	}
}

func PageSignupPost(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		email, name := r.PostFormValue("email"), r.PostFormValue("name")
		err := accounts.Signup(r.Context(), t, account.SignupInput{Email: email, Password: r.PostFormValue("password"), Name: name}, kit.Meta(r))
		if err != nil {
			if msg, status, ok := rs.FormError(w, r, err); ok {
				rs.Page(w, r, status, "signup", "Create your account", SignupView{Error: msg, Email: email, Name: name})
			}
			return
		}
		rs.Message(w, r, "Check your email",
			"We sent a link to "+strings.TrimSpace(email)+". Open it to confirm your address, then sign in.", "Go to sign in", "/login")
	}
}

func PageLogin(rs *kit.Responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, ok := kit.PrincipalFrom(r.Context()); ok {
			http.Redirect(w, r, kit.SafeReturn(r.URL.Query().Get("return_to")), http.StatusSeeOther)
			return
		}
		rs.Page(w, r, http.StatusOK, "login", "Sign in", LoginView{ReturnTo: r.URL.Query().Get("return_to")})
	}
}

func PageLoginPost(rs *kit.Responder, accounts *account.Service, svc *sso.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		email, returnTo := r.PostFormValue("email"), r.PostFormValue("return_to")
		// "Sign in with single sign-on", or an address without a password: home-realm discovery.
		if r.PostFormValue("sso") != "" || r.PostFormValue("password") == "" {
			route, err := svc.Discover(r.Context(), t, email, kit.SafeReturn(returnTo))
			if err != nil {
				// A failed discovery is not "no SSO": say what went wrong (the address, a
				// limit) or answer the internal error, never "Enter your password".
				if msg, status, ok := rs.FormError(w, r, err); ok {
					rs.Page(w, r, status, "login", "Sign in", LoginView{Error: msg, Email: email, ReturnTo: returnTo})
				}
				return
			}
			if route.Method == "saml" {
				continueToIdP(rs, w, r, route.RedirectURL, "Your organisation signs you in.")
				return
			}
			msg := "Enter your password."
			if r.PostFormValue("sso") != "" {
				msg = "Single sign-on is not set up for this address. Sign in with your password."
			}
			rs.Page(w, r, http.StatusBadRequest, "login", "Sign in", LoginView{Error: msg, Email: email, ReturnTo: returnTo})
			return
		}
		res, err := accounts.Login(r.Context(), t, email, r.PostFormValue("password"), kit.Meta(r))
		if req, ok := sso.AsRequired(err); ok {
			continueToIdP(rs, w, r, req.RedirectURL, "Your organisation requires single sign-on for this address.")
			return
		}
		if err != nil {
			if msg, status, ok := rs.FormError(w, r, err); ok {
				rs.Page(w, r, status, "login", "Sign in", LoginView{Error: msg, Email: email, ReturnTo: returnTo,
					NotVerified: apperr.Is(err, "email_not_verified")})
			}
			return
		}
		if res.MFARequired {
			rs.Page(w, r, http.StatusOK, "login_mfa", "Enter your code", LoginMFAView{MFAToken: res.MFAToken, ReturnTo: returnTo})
			return
		}
		kit.SetSessionCookie(w, res.Session.Token, res.Session.Session.ExpiresAt)
		http.Redirect(w, r, kit.SafeReturn(returnTo), http.StatusSeeOther)
	}
}

// continueToIdP answers a form post with a page that moves on to the SSO login URL. A
// redirect would be blocked: CSP form-action covers every redirect after a form post, and
// the IdP is another origin.
func continueToIdP(rs *kit.Responder, w http.ResponseWriter, r *http.Request, u, text string) {
	rs.Page(w, r, http.StatusOK, "sso_continue", "Single sign-on", kit.ContinueView{URL: u, Text: text})
}

// PageVerify shows a button; only its POST consumes the token, because mail scanners
// follow links with GET.
func PageVerify(rs *kit.Responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rs.Page(w, r, http.StatusOK, "verify", "Confirm your email address", TokenView{Token: r.URL.Query().Get("token")})
	}
}

func PageVerifyPost(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		u, err := accounts.ConfirmEmail(r.Context(), t, r.PostFormValue("token"))
		if err != nil {
			if msg, status, ok := rs.FormError(w, r, err); ok {
				rs.Page(w, r, status, "verify", "Confirm your email address", TokenView{Error: msg, Failed: true})
			}
			return
		}
		rs.Message(w, r, "Email address confirmed", u.Email+" is confirmed.", "Sign in", "/login")
	}
}

// emailForm is a page that asks for an address and mails it a link (resend verification,
// forgot password); the answer is the same whether the address has an account.
type emailForm struct {
	title, action, button, intro string
	send                         func(ctx context.Context, t tenant.Tenant, email string, meta account.Meta) error
	sent                         func(email string) string
}

func (f emailForm) page(rs *kit.Responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rs.Page(w, r, http.StatusOK, "email_form", f.title, EmailFormView{Action: f.action, Button: f.button, Intro: f.intro})
	}
}

func (f emailForm) post(rs *kit.Responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		email := r.PostFormValue("email")
		if err := f.send(r.Context(), t, email, kit.Meta(r)); err != nil {
			if msg, status, ok := rs.FormError(w, r, err); ok {
				rs.Page(w, r, status, "email_form", f.title, EmailFormView{Action: f.action, Button: f.button, Error: msg, Email: email})
			}
			return
		}
		rs.Message(w, r, "Check your email", f.sent(strings.TrimSpace(email)), "Sign in", "/login")
	}
}

func resendForm(accounts *account.Service) emailForm {
	return emailForm{title: "Send a new confirmation link", action: "/verify/resend", button: "Send link",
		intro: "Enter your email address and we will send a new confirmation link.", send: accounts.ResendVerification,
		sent: func(e string) string {
			return "If " + e + " belongs to an account that still needs confirming, a new link is on its way."
		}}
}

func forgotForm(accounts *account.Service) emailForm {
	return emailForm{title: "Reset your password", action: "/password/forgot", button: "Send reset link",
		intro: "Enter your email address and we will send you a link to choose a new password.", send: accounts.ForgotPassword,
		sent: func(e string) string {
			return "If " + e + " belongs to an account, a reset link is on its way. It works for one hour."
		}}
}

// PageResend asks for the address to send a new confirmation link to.
func PageResend(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return resendForm(accounts).page(rs)
}

// PageResendPost sends it.
func PageResendPost(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return resendForm(accounts).post(rs)
}

// PageForgot asks for the address to send a reset link to.
func PageForgot(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return forgotForm(accounts).page(rs)
}

// PageForgotPost sends it.
func PageForgotPost(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return forgotForm(accounts).post(rs)
}

func PageReset(rs *kit.Responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rs.Page(w, r, http.StatusOK, "reset", "Choose a new password", TokenView{Token: r.URL.Query().Get("token")})
	}
}

func PageResetPost(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		tok := r.PostFormValue("token")
		if err := accounts.ResetPassword(r.Context(), t, tok, r.PostFormValue("password")); err != nil {
			if msg, status, ok := rs.FormError(w, r, err); ok {
				rs.Page(w, r, status, "reset", "Choose a new password", TokenView{Error: msg, Token: tok,
					Failed: apperr.Is(err, "invalid_token")})
			}
			return
		}
		kit.ClearSessionCookie(w)
		rs.Message(w, r, "Password changed", "Your new password is set, and every session was signed out.", "Sign in", "/login")
	}
}

func PageUndo(rs *kit.Responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rs.Page(w, r, http.StatusOK, "undo", "Undo the email change", TokenView{Token: r.URL.Query().Get("token")})
	}
}

func PageUndoPost(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		u, err := accounts.UndoEmailChange(r.Context(), t, r.PostFormValue("token"))
		if err != nil {
			if msg, status, ok := rs.FormError(w, r, err); ok {
				rs.Page(w, r, status, "undo", "Undo the email change", TokenView{Error: msg, Failed: true})
			}
			return
		}
		kit.ClearSessionCookie(w)
		rs.Message(w, r, "Email address restored",
			"Your account uses "+u.Email+" again and every session was signed out. If you did not make the change, reset your password now.",
			"Reset password", "/password/forgot")
	}
}

func PageAccount(rs *kit.Responder, steps *stepup.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := kit.SignedIn(w, r, "/account")
		if !ok {
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		has, err := steps.HasSecondFactor(r.Context(), t, p)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.Page(w, r, http.StatusOK, "account", "Your account", AccountView{P: p, Verified: p.EmailVerifiedAt != nil, MFA: has})
	}
}

func PageEmailChangePost(rs *kit.Responder, accounts *account.Service, steps *stepup.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := kit.SignedIn(w, r, "/account")
		if !ok {
			return
		}
		if !kit.PageStepUp(rs, steps, w, r, p, tenant.ActionEmailChange, "/account") {
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		email := r.PostFormValue("email")
		if err := accounts.RequestEmailChange(r.Context(), t, p, email); err != nil {
			if msg, status, ok := rs.FormError(w, r, err); ok {
				rs.Page(w, r, status, "account", "Your account", AccountView{P: p, Verified: p.EmailVerifiedAt != nil,
					EmailError: msg, NewEmail: email})
			}
			return
		}
		rs.Message(w, r, "Check your new inbox",
			"We sent a confirmation link to "+strings.TrimSpace(email)+". Your address changes when you open it.", "Back to your account", "/account")
	}
}

func PageDeleteAccount(rs *kit.Responder, steps *stepup.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := kit.SignedIn(w, r, "/account/delete")
		if !ok {
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		rs.Page(w, r, http.StatusOK, "delete_account", "Delete your account", DeleteAccountView{P: p, GraceDays: t.Policy.Deletion.GraceDays})
	}
}

func PageDeleteAccountPost(rs *kit.Responder, accounts *account.Service, steps *stepup.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := kit.SignedIn(w, r, "/account/delete")
		if !ok {
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		if !strings.EqualFold(strings.TrimSpace(r.PostFormValue("confirm_email")), p.Email) {
			rs.Page(w, r, http.StatusBadRequest, "delete_account", "Delete your account", DeleteAccountView{P: p,
				GraceDays: t.Policy.Deletion.GraceDays, Error: "Type your email address exactly to confirm."})
			return
		}
		if !kit.PageStepUp(rs, steps, w, r, p, tenant.ActionAccountDelete, "/account/delete") {
			return
		}
		d, err := accounts.RequestDeletion(r.Context(), t, p.UserID, audit.By(r.Context(), p.UserID, p.Email),
			time.Duration(t.Policy.Deletion.GraceDays)*24*time.Hour)
		if err != nil {
			if msg, status, ok := rs.FormError(w, r, err); ok {
				rs.Page(w, r, status, "delete_account", "Delete your account", DeleteAccountView{P: p,
					GraceDays: t.Policy.Deletion.GraceDays, Error: msg})
			}
			return
		}
		kit.ClearSessionCookie(w)
		text := "Your account and everything stored about you have been erased."
		if d.PurgeAfter.After(time.Now()) {
			text = "Your account will be erased on " + d.PurgeAfter.UTC().Format("2 January 2006") + ". We sent you a link to cancel until then."
		}
		rs.Message(w, r, "Account deletion scheduled", text, "", "")
	}
}

func PageCancelDeletion(rs *kit.Responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rs.Page(w, r, http.StatusOK, "cancel_deletion", "Keep your account", TokenView{Token: r.URL.Query().Get("token")})
	}
}

func PageCancelDeletionPost(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		if _, err := accounts.CancelDeletion(r.Context(), t, r.PostFormValue("token")); err != nil {
			if msg, status, ok := rs.FormError(w, r, err); ok {
				rs.Page(w, r, status, "cancel_deletion", "Keep your account", TokenView{Error: msg, Failed: true})
			}
			return
		}
		rs.Message(w, r, "Your account stays", "The deletion is cancelled. Sign in to continue.", "Sign in", "/login")
	}
}

// PageExport is the account page's download button: the same export, behind the same
// step-up, returning to /account after re-authentication.
func PageExport(rs *kit.Responder, steps *stepup.Service, accounts *account.Service) http.HandlerFunc {
	h := HandleExport(rs, accounts)
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := kit.SignedIn(w, r, "/account")
		if !ok {
			return
		}
		if !kit.PageStepUp(rs, steps, w, r, p, tenant.ActionAccountExport, "/account") {
			return
		}
		h(w, r)
	}
}
