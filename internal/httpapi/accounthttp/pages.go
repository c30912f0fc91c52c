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
	"github.com/gatehouse-id/gatehouse/internal/session"
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
		// Post/Redirect/Get: a reload of the answer does not sign up again.
		http.Redirect(w, r, "/signup/sent", http.StatusSeeOther)
	}
}

// PageSignupSent is where a sign-up lands. It says the same whether the address was new
// or had an account already (the mail tells its owner which).
func PageSignupSent(rs *kit.Responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		rs.Page(w, r, http.StatusOK, "signup_sent", "Check your email", SignupSentView{})
	}
}

func PageLogin(rs *kit.Responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, ok := kit.PrincipalFrom(r.Context()); ok {
			http.Redirect(w, r, kit.SafeReturn(r.URL.Query().Get("return_to")), http.StatusSeeOther)
			return
		}
		q := r.URL.Query()
		rs.Page(w, r, http.StatusOK, "login", "Sign in", LoginView{ReturnTo: q.Get("return_to"), Email: q.Get("login_hint")})
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
			if route.Method == "saml" || route.Method == "oidc" {
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
					NotVerified: apperr.Is(err, "email_not_verified"), PendingDeletion: apperr.Is(err, "account_pending_deletion")})
			}
			return
		}
		if res.MFARequired {
			rs.Page(w, r, http.StatusOK, "login_mfa", "Enter your code", LoginMFAView{MFAToken: res.MFAToken, ReturnTo: returnTo, Passkey: res.Passkey})
			return
		}
		kit.SetSessionCookie(w, res.Session.Token, res.Session.Session.ExpiresAt)
		http.Redirect(w, r, afterLogin(w, r, res, returnTo), http.StatusSeeOther)
	}
}

// continueToIdP answers a form post with a page that moves on to the SSO login URL. A
// redirect would be blocked: CSP form-action covers every redirect after a form post, and
// the IdP is another origin.
func continueToIdP(rs *kit.Responder, w http.ResponseWriter, r *http.Request, u, text string) {
	rs.Page(w, r, http.StatusOK, "sso_continue", "Single sign-on", kit.ContinueView{URL: u, Text: text})
}

// PageVerify shows a button; only its POST consumes the token, because mail scanners
// follow links with GET. A link that cannot be used says why at once.
func PageVerify(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return verifyPage.page(rs, accounts)
}

func PageVerifyPost(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		u, err := accounts.ConfirmEmail(r.Context(), t, r.PostFormValue("token"))
		if err != nil {
			verifyPage.fail(rs, w, r, err)
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

func cancelResendForm(accounts *account.Service) emailForm {
	return emailForm{title: "Keep your account", action: "/account/deletion/resend", button: "Send cancel link",
		intro: "Enter the address of the account scheduled for deletion, and we will send a new link to cancel the deletion.",
		send:  accounts.ResendDeletionCancel,
		sent: func(e string) string {
			return "If " + e + " belongs to an account scheduled for deletion, a new cancel link is on its way. Earlier links no longer work."
		}}
}

// PageCancelResend asks for the address to send a new cancel link to.
func PageCancelResend(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return cancelResendForm(accounts).page(rs)
}

// PageCancelResendPost sends it (the sign-in page of an account scheduled for deletion
// posts here too).
func PageCancelResendPost(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return cancelResendForm(accounts).post(rs)
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

// PageReset shows the password form only for a link that still works.
func PageReset(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return resetPage.page(rs, accounts)
}

func PageResetPost(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		tok := r.PostFormValue("token")
		if err := accounts.ResetPassword(r.Context(), t, tok, r.PostFormValue("password")); err != nil {
			if apperr.Is(err, "invalid_token") || apperr.Is(err, "token_used") {
				resetPage.fail(rs, w, r, err)
			} else if msg, status, ok := rs.FormError(w, r, err); ok {
				rs.Page(w, r, status, "reset", "Choose a new password", TokenView{Error: msg, Token: tok})
			}
			return
		}
		kit.ClearSessionCookie(w)
		rs.Message(w, r, "Password changed", "Your new password is set, and every session was signed out.", "Sign in", "/login")
	}
}

func PageUndo(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return undoPage.page(rs, accounts)
}

func PageUndoPost(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		u, err := accounts.UndoEmailChange(r.Context(), t, r.PostFormValue("token"))
		if err != nil {
			undoPage.fail(rs, w, r, err)
			return
		}
		kit.ClearSessionCookie(w)
		rs.Message(w, r, "Email address restored",
			"Your account uses "+u.Email+" again and every session was signed out. If you did not make the change, reset your password now.",
			"Reset password", "/password/forgot")
	}
}

// PageAccount shows what applies to this account: an address the IdP owns is read-only,
// the password form fits the account (change, set a first one, or none where the domain
// signs in through SSO), admins get the portal link, and a change kept across a
// re-authentication comes back filled in.
func PageAccount(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := kit.SignedIn(w, r, "/account")
		if !ok {
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		v, err := accountView(r, accounts, t, p)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		if _, err := r.Cookie(OfferCookie); err == nil {
			v.OfferPasskey = len(v.Passkeys) == 0
			http.SetCookie(w, &http.Cookie{Name: OfferCookie, Value: "", Path: "/", Secure: true, HttpOnly: true,
				SameSite: http.SameSiteLaxMode, MaxAge: -1})
		}
		rs.Page(w, r, http.StatusOK, "account", "Your account", v)
	}
}

// accountView is the account page's view; the failed form's error is added by the caller.
func accountView(r *http.Request, accounts *account.Service, t tenant.Tenant, p session.Principal) (AccountView, error) {
	o, err := accounts.Overview(r.Context(), t, p)
	if err != nil {
		return AccountView{}, err
	}
	v := AccountView{P: p, Verified: p.EmailVerifiedAt != nil, MFA: o.MFA, HasPassword: o.HasPassword,
		PasswordAllowed: o.PasswordAllowed, Admin: o.Admin, Passkeys: o.Passkeys}
	if o.EmailManaged() {
		v.IdP = strings.Join(o.IdPs, ", ")
	}
	if pc := o.Pending; pc != nil {
		switch pc.Action {
		case tenant.ActionEmailChange:
			v.NewEmail, v.EmailKept = pc.Value, !o.EmailManaged()
		case tenant.ActionPasswordChange:
			v.PasswordKept = o.PasswordAllowed
		}
	}
	return v, nil
}

// stepUpKeeping is kit.PageStepUp for a form: before sending the browser to
// re-authenticate it keeps what the user asked for (value: an address, never a password)
// on the session, so that the page they come back to still holds it.
func stepUpKeeping(rs *kit.Responder, steps *stepup.Service, accounts *account.Service, w http.ResponseWriter, r *http.Request,
	p session.Principal, action tenant.StepUpAction, value, returnTo string) bool {
	t, _ := kit.TenantFrom(r.Context())
	err := steps.Require(r.Context(), t, p, action, returnTo)
	if err == nil {
		return true
	}
	req, ok := stepup.AsRequired(err)
	if !ok {
		rs.Error(w, r, err)
		return false
	}
	if err := accounts.HoldChange(r.Context(), t, p, action, value); err != nil {
		rs.Error(w, r, err)
		return false
	}
	http.Redirect(w, r, req.ReauthURL, http.StatusSeeOther)
	return false
}

// accountFormError renders the account page with a form's error.
func accountFormError(rs *kit.Responder, accounts *account.Service, w http.ResponseWriter, r *http.Request, p session.Principal,
	err error, set func(*AccountView, string)) {
	msg, status, ok := rs.FormError(w, r, err)
	if !ok {
		return
	}
	t, _ := kit.TenantFrom(r.Context())
	v, verr := accountView(r, accounts, t, p)
	if verr != nil {
		rs.Error(w, r, verr)
		return
	}
	v.EmailKept, v.PasswordKept = false, false
	set(&v, msg)
	rs.Page(w, r, status, "account", "Your account", v)
}

func PageEmailChangePost(rs *kit.Responder, accounts *account.Service, steps *stepup.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := kit.SignedIn(w, r, "/account")
		if !ok {
			return
		}
		email := strings.TrimSpace(r.PostFormValue("email"))
		if !stepUpKeeping(rs, steps, accounts, w, r, p, tenant.ActionEmailChange, email, "/account") {
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		if err := accounts.RequestEmailChange(r.Context(), t, p, email); err != nil {
			accountFormError(rs, accounts, w, r, p, err, func(v *AccountView, msg string) { v.EmailError, v.NewEmail = msg, email })
			return
		}
		rs.Message(w, r, "Check your new inbox",
			"We sent a confirmation link to "+email+". Your address changes when you open it.", "Back to your account", "/account")
	}
}

func PageDeleteAccount(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := kit.SignedIn(w, r, "/account/delete")
		if !ok {
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		pc, err := accounts.Pending(r.Context(), t, p)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		v := DeleteAccountView{P: p, GraceDays: t.Policy.Deletion.GraceDays}
		if pc != nil && pc.Action == tenant.ActionAccountDelete {
			v.Confirm, v.Kept = pc.Value, true
		}
		rs.Page(w, r, http.StatusOK, "delete_account", "Delete your account", v)
	}
}

func PageDeleteAccountPost(rs *kit.Responder, accounts *account.Service, steps *stepup.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := kit.SignedIn(w, r, "/account/delete")
		if !ok {
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		confirm := strings.TrimSpace(r.PostFormValue("confirm_email"))
		if !strings.EqualFold(confirm, p.Email) {
			rs.Page(w, r, http.StatusBadRequest, "delete_account", "Delete your account", DeleteAccountView{P: p,
				GraceDays: t.Policy.Deletion.GraceDays, Error: "Type your email address exactly to confirm.", Confirm: confirm})
			return
		}
		if !stepUpKeeping(rs, steps, accounts, w, r, p, tenant.ActionAccountDelete, confirm, "/account/delete") {
			return
		}
		d, err := accounts.RequestDeletion(r.Context(), t, p.UserID, audit.By(r.Context(), p.UserID, p.Email),
			time.Duration(t.Policy.Deletion.GraceDays)*24*time.Hour)
		if err != nil {
			if msg, status, ok := rs.FormError(w, r, err); ok {
				rs.Page(w, r, status, "delete_account", "Delete your account", DeleteAccountView{P: p,
					GraceDays: t.Policy.Deletion.GraceDays, Error: msg, Confirm: confirm})
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

func PageCancelDeletion(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return cancelPage.page(rs, accounts)
}

func PageCancelDeletionPost(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		if _, err := accounts.CancelDeletion(r.Context(), t, r.PostFormValue("token")); err != nil {
			cancelPage.fail(rs, w, r, err)
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
