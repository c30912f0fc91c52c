package httpapi

import (
	"github.com/gatehouse-id/gatehouse/internal/sso"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/stepup"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/web"
)

// Pages are server-rendered forms that work without JavaScript. Cross-site posts are
// refused by the cross-origin middleware; the session cookie is SameSite=Lax.

type pageData map[string]any

func renderPage(rs *responder, pages *web.Renderer, w http.ResponseWriter, r *http.Request, status int, page, title string, d pageData) {
	t, _ := TenantFrom(r.Context())
	if d == nil {
		d = pageData{}
	}
	if p, ok := PrincipalFrom(r.Context()); ok {
		d["SignedIn"] = p.Email
	}
	if err := pages.Render(w, status, page, web.Page{Title: title, Brand: t.DisplayName(), LogoURL: t.Policy.Branding.LogoURL,
		BrandCSS: t.Policy.Branding.PrimaryColor != "", RequestID: Info(r.Context()).ID, Data: d}); err != nil {
		rs.Error(w, r, err)
	}
}

// formError turns an application error into a message for the form and its status.
// Internal errors are answered by the responder (ok false).
func formError(rs *responder, w http.ResponseWriter, r *http.Request, err error) (string, int, bool) {
	e := apperr.From(err)
	if e.Kind == apperr.Internal {
		rs.Error(w, r, err)
		return "", 0, false
	}
	status := statusOf[e.Kind]
	if secs, ok := e.Details["retry_after_seconds"].(int); ok {
		w.Header().Set("Retry-After", strconv.Itoa(secs))
	}
	return e.Message, status, true
}

func message(rs *responder, pages *web.Renderer, w http.ResponseWriter, r *http.Request, title, text, linkText, link string) {
	renderPage(rs, pages, w, r, http.StatusOK, "message", title, pageData{"Heading": title, "Text": text, "LinkText": linkText, "Link": link})
}

// safeReturn accepts only same-host absolute paths ("/x", not "//evil" or "https://…").
func safeReturn(p string) string {
	if p == "" || !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return "/account"
	}
	if u, err := url.Parse(p); err != nil || u.Host != "" || u.Scheme != "" {
		return "/account"
	}
	return p
}

func pageSignup(rs *responder, pages *web.Renderer) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := TenantFrom(r.Context())
		renderPage(rs, pages, w, r, http.StatusOK, "signup", "Create your account", pageData{"Disabled": !t.Policy.Signup.Enabled})
	}
}

func pageSignupPost(rs *responder, pages *web.Renderer, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := TenantFrom(r.Context())
		email, name := r.PostFormValue("email"), r.PostFormValue("name")
		err := accounts.Signup(r.Context(), t, account.SignupInput{Email: email, Password: r.PostFormValue("password"), Name: name}, metaOf(r))
		if err != nil {
			if msg, status, ok := formError(rs, w, r, err); ok {
				renderPage(rs, pages, w, r, status, "signup", "Create your account", pageData{"Error": msg, "Email": email, "Name": name})
			}
			return
		}
		message(rs, pages, w, r, "Check your email",
			"We sent a link to "+strings.TrimSpace(email)+". Open it to confirm your address, then sign in.", "Go to sign in", "/login")
	}
}

func pageLogin(rs *responder, pages *web.Renderer) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, ok := PrincipalFrom(r.Context()); ok {
			http.Redirect(w, r, safeReturn(r.URL.Query().Get("return_to")), http.StatusSeeOther)
			return
		}
		renderPage(rs, pages, w, r, http.StatusOK, "login", "Sign in", pageData{"ReturnTo": r.URL.Query().Get("return_to")})
	}
}

func pageLoginPost(rs *responder, pages *web.Renderer, accounts *account.Service, svc *sso.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := TenantFrom(r.Context())
		email, returnTo := r.PostFormValue("email"), r.PostFormValue("return_to")
		// "Sign in with single sign-on", or an address without a password: home-realm discovery.
		if r.PostFormValue("sso") != "" || r.PostFormValue("password") == "" {
			route, err := svc.Discover(r.Context(), t, email, safeReturn(returnTo))
			if err == nil && route.Method == "saml" {
				continueToIdP(rs, pages, w, r, route.RedirectURL, "Your organisation signs you in.")
				return
			}
			msg := "Enter your password."
			if r.PostFormValue("sso") != "" {
				msg = "Single sign-on is not set up for this address. Sign in with your password."
			}
			renderPage(rs, pages, w, r, http.StatusBadRequest, "login", "Sign in", pageData{"Error": msg, "Email": email, "ReturnTo": returnTo})
			return
		}
		res, err := accounts.Login(r.Context(), t, email, r.PostFormValue("password"), metaOf(r))
		if e := apperr.From(err); err != nil && e.Code == "sso_required" {
			if u, ok := e.Details["redirect_url"].(string); ok {
				continueToIdP(rs, pages, w, r, u, "Your organisation requires single sign-on for this address.")
				return
			}
		}
		if err != nil {
			if msg, status, ok := formError(rs, w, r, err); ok {
				renderPage(rs, pages, w, r, status, "login", "Sign in", pageData{"Error": msg, "Email": email, "ReturnTo": returnTo,
					"NotVerified": apperr.Is(err, "email_not_verified")})
			}
			return
		}
		if res.MFARequired {
			renderPage(rs, pages, w, r, http.StatusOK, "login_mfa", "Enter your code", pageData{"MFAToken": res.MFAToken, "ReturnTo": returnTo})
			return
		}
		setSessionCookie(w, res.Session.Token, res.Session.Session.ExpiresAt)
		http.Redirect(w, r, safeReturn(returnTo), http.StatusSeeOther)
	}
}

// continueToIdP answers a form post with a page that moves on to the SSO login URL. A
// redirect would be blocked: CSP form-action covers every redirect after a form post, and
// the IdP is another origin.
func continueToIdP(rs *responder, pages *web.Renderer, w http.ResponseWriter, r *http.Request, u, text string) {
	renderPage(rs, pages, w, r, http.StatusOK, "sso_continue", "Single sign-on", pageData{"URL": u, "Text": text})
}

// pageLogout ends the session; a session that came from an IdP with single logout also
// signs out there (SP-initiated LogoutRequest; the IdP answers at the connection's /slo).
func pageLogout(rs *responder, pages *web.Renderer, accounts *account.Service, svc *sso.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		slo := ""
		if p, ok := PrincipalFrom(r.Context()); ok {
			if err := accounts.Logout(r.Context(), p); err != nil {
				rs.Error(w, r, err)
				return
			}
			t, _ := TenantFrom(r.Context())
			if u, err := svc.LogoutRedirect(r.Context(), t, p); err == nil {
				slo = u
			}
		}
		clearSessionCookie(w)
		if slo != "" {
			continueToIdP(rs, pages, w, r, slo, "You are signed out here. Signing you out of your organisation's sign-in too…")
			return
		}
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	}
}

// pageVerify shows a button; only its POST consumes the token, because mail scanners
// follow links with GET.
func pageVerify(rs *responder, pages *web.Renderer) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		renderPage(rs, pages, w, r, http.StatusOK, "verify", "Confirm your email address", pageData{"Token": r.URL.Query().Get("token")})
	}
}

func pageVerifyPost(rs *responder, pages *web.Renderer, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := TenantFrom(r.Context())
		u, err := accounts.ConfirmEmail(r.Context(), t, r.PostFormValue("token"))
		if err != nil {
			if msg, status, ok := formError(rs, w, r, err); ok {
				renderPage(rs, pages, w, r, status, "verify", "Confirm your email address", pageData{"Error": msg, "Failed": true})
			}
			return
		}
		message(rs, pages, w, r, "Email address confirmed", u.Email+" is confirmed.", "Sign in", "/login")
	}
}

func pageResend(rs *responder, pages *web.Renderer) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		renderPage(rs, pages, w, r, http.StatusOK, "email_form", "Send a new confirmation link",
			pageData{"Action": "/verify/resend", "Button": "Send link", "Intro": "Enter your email address and we will send a new confirmation link."})
	}
}

func pageResendPost(rs *responder, pages *web.Renderer, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := TenantFrom(r.Context())
		email := r.PostFormValue("email")
		if err := accounts.ResendVerification(r.Context(), t, email, metaOf(r)); err != nil {
			if msg, status, ok := formError(rs, w, r, err); ok {
				renderPage(rs, pages, w, r, status, "email_form", "Send a new confirmation link",
					pageData{"Action": "/verify/resend", "Button": "Send link", "Error": msg, "Email": email})
			}
			return
		}
		message(rs, pages, w, r, "Check your email",
			"If "+strings.TrimSpace(email)+" belongs to an account that still needs confirming, a new link is on its way.", "Sign in", "/login")
	}
}

func pageForgot(rs *responder, pages *web.Renderer) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		renderPage(rs, pages, w, r, http.StatusOK, "email_form", "Reset your password",
			pageData{"Action": "/password/forgot", "Button": "Send reset link", "Intro": "Enter your email address and we will send you a link to choose a new password."})
	}
}

func pageForgotPost(rs *responder, pages *web.Renderer, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := TenantFrom(r.Context())
		email := r.PostFormValue("email")
		if err := accounts.ForgotPassword(r.Context(), t, email, metaOf(r)); err != nil {
			if msg, status, ok := formError(rs, w, r, err); ok {
				renderPage(rs, pages, w, r, status, "email_form", "Reset your password",
					pageData{"Action": "/password/forgot", "Button": "Send reset link", "Error": msg, "Email": email})
			}
			return
		}
		message(rs, pages, w, r, "Check your email",
			"If "+strings.TrimSpace(email)+" belongs to an account, a reset link is on its way. It works for one hour.", "Sign in", "/login")
	}
}

func pageReset(rs *responder, pages *web.Renderer) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		renderPage(rs, pages, w, r, http.StatusOK, "reset", "Choose a new password", pageData{"Token": r.URL.Query().Get("token")})
	}
}

func pageResetPost(rs *responder, pages *web.Renderer, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := TenantFrom(r.Context())
		tok := r.PostFormValue("token")
		if err := accounts.ResetPassword(r.Context(), t, tok, r.PostFormValue("password")); err != nil {
			if msg, status, ok := formError(rs, w, r, err); ok {
				renderPage(rs, pages, w, r, status, "reset", "Choose a new password", pageData{"Error": msg, "Token": tok,
					"Failed": apperr.Is(err, "invalid_token")})
			}
			return
		}
		clearSessionCookie(w)
		message(rs, pages, w, r, "Password changed", "Your new password is set, and every session was signed out.", "Sign in", "/login")
	}
}

func pageUndo(rs *responder, pages *web.Renderer) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		renderPage(rs, pages, w, r, http.StatusOK, "undo", "Undo the email change", pageData{"Token": r.URL.Query().Get("token")})
	}
}

func pageUndoPost(rs *responder, pages *web.Renderer, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := TenantFrom(r.Context())
		u, err := accounts.UndoEmailChange(r.Context(), t, r.PostFormValue("token"))
		if err != nil {
			if msg, status, ok := formError(rs, w, r, err); ok {
				renderPage(rs, pages, w, r, status, "undo", "Undo the email change", pageData{"Error": msg, "Failed": true})
			}
			return
		}
		clearSessionCookie(w)
		message(rs, pages, w, r, "Email address restored",
			"Your account uses "+u.Email+" again and every session was signed out. If you did not make the change, reset your password now.",
			"Reset password", "/password/forgot")
	}
}

func pageAccount(rs *responder, pages *web.Renderer, steps *stepup.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := PrincipalFrom(r.Context())
		if !ok {
			http.Redirect(w, r, "/login?return_to=%2Faccount", http.StatusSeeOther)
			return
		}
		t, _ := TenantFrom(r.Context())
		has, err := steps.HasSecondFactor(r.Context(), t, p)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		renderPage(rs, pages, w, r, http.StatusOK, "account", "Your account", pageData{"P": p, "Verified": p.EmailVerifiedAt != nil, "MFA": has})
	}
}

func pageEmailChangePost(rs *responder, pages *web.Renderer, accounts *account.Service, steps *stepup.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := PrincipalFrom(r.Context())
		if !ok {
			http.Redirect(w, r, "/login?return_to=%2Faccount", http.StatusSeeOther)
			return
		}
		if !pageStepUp(rs, steps, w, r, p, tenant.ActionEmailChange, "/account") {
			return
		}
		t, _ := TenantFrom(r.Context())
		email := r.PostFormValue("email")
		if err := accounts.RequestEmailChange(r.Context(), t, p, email); err != nil {
			if msg, status, ok := formError(rs, w, r, err); ok {
				renderPage(rs, pages, w, r, status, "account", "Your account", pageData{"P": p, "Verified": p.EmailVerifiedAt != nil,
					"EmailError": msg, "NewEmail": email})
			}
			return
		}
		message(rs, pages, w, r, "Check your new inbox",
			"We sent a confirmation link to "+strings.TrimSpace(email)+". Your address changes when you open it.", "Back to your account", "/account")
	}
}

func pageDeleteAccount(rs *responder, pages *web.Renderer, steps *stepup.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := PrincipalFrom(r.Context())
		if !ok {
			http.Redirect(w, r, "/login?return_to=%2Faccount%2Fdelete", http.StatusSeeOther)
			return
		}
		t, _ := TenantFrom(r.Context())
		renderPage(rs, pages, w, r, http.StatusOK, "delete_account", "Delete your account", pageData{"P": p, "GraceDays": t.Policy.Deletion.GraceDays})
	}
}

func pageDeleteAccountPost(rs *responder, pages *web.Renderer, accounts *account.Service, steps *stepup.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := PrincipalFrom(r.Context())
		if !ok {
			http.Redirect(w, r, "/login?return_to=%2Faccount%2Fdelete", http.StatusSeeOther)
			return
		}
		t, _ := TenantFrom(r.Context())
		if !strings.EqualFold(strings.TrimSpace(r.PostFormValue("confirm_email")), p.Email) {
			renderPage(rs, pages, w, r, http.StatusBadRequest, "delete_account", "Delete your account", pageData{"P": p,
				"GraceDays": t.Policy.Deletion.GraceDays, "Error": "Type your email address exactly to confirm."})
			return
		}
		if !pageStepUp(rs, steps, w, r, p, tenant.ActionAccountDelete, "/account/delete") {
			return
		}
		d, err := accounts.RequestDeletion(r.Context(), t, p.UserID, audit.By(r.Context(), p.UserID, p.Email),
			time.Duration(t.Policy.Deletion.GraceDays)*24*time.Hour)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		clearSessionCookie(w)
		text := "Your account and everything stored about you have been erased."
		if d.PurgeAfter.After(time.Now()) {
			text = "Your account will be erased on " + d.PurgeAfter.UTC().Format("2 January 2006") + ". We sent you a link to cancel until then."
		}
		message(rs, pages, w, r, "Account deletion scheduled", text, "", "")
	}
}

func pageCancelDeletion(rs *responder, pages *web.Renderer) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		renderPage(rs, pages, w, r, http.StatusOK, "cancel_deletion", "Keep your account", pageData{"Token": r.URL.Query().Get("token")})
	}
}

func pageCancelDeletionPost(rs *responder, pages *web.Renderer, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := TenantFrom(r.Context())
		if _, err := accounts.CancelDeletion(r.Context(), t, r.PostFormValue("token")); err != nil {
			if msg, status, ok := formError(rs, w, r, err); ok {
				renderPage(rs, pages, w, r, status, "cancel_deletion", "Keep your account", pageData{"Error": msg, "Failed": true})
			}
			return
		}
		message(rs, pages, w, r, "Your account stays", "The deletion is cancelled. Sign in to continue.", "Sign in", "/login")
	}
}
