package httpapi

import (
	"net/http"
	"net/url"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/stepup"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/web"
)

// pageStepUp checks action for a page; when re-authentication is needed it sends the
// browser to /reauth, which brings it back to returnTo (the page, never a replay of the
// POST: what the user typed is typed again on a fresh form). It reports whether the
// handler may go on.
func pageStepUp(rs *responder, steps *stepup.Service, w http.ResponseWriter, r *http.Request, p session.Principal, action tenant.StepUpAction, returnTo string) bool {
	t, _ := TenantFrom(r.Context())
	err := steps.Require(r.Context(), t, p, action, returnTo)
	if err == nil {
		return true
	}
	if e := apperr.From(err); e.Code == "step_up_required" {
		http.Redirect(w, r, e.Details["reauth_url"].(string), http.StatusSeeOther)
		return false
	}
	rs.Error(w, r, err)
	return false
}

func pageReauth(rs *responder, pages *web.Renderer, steps *stepup.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := PrincipalFrom(r.Context())
		if !ok {
			http.Redirect(w, r, "/login?return_to="+url.QueryEscape(safeReturn(r.URL.Query().Get("return_to"))), http.StatusSeeOther)
			return
		}
		renderReauth(rs, pages, steps, w, r, p, http.StatusOK, "")
	}
}

func renderReauth(rs *responder, pages *web.Renderer, steps *stepup.Service, w http.ResponseWriter, r *http.Request, p session.Principal, status int, msg string) {
	t, _ := TenantFrom(r.Context())
	has, err := steps.HasSecondFactor(r.Context(), t, p)
	if err != nil {
		rs.Error(w, r, err)
		return
	}
	q := r.URL.Query()
	if r.Method == http.MethodPost {
		q = url.Values{"action": {r.PostFormValue("action")}, "return_to": {r.PostFormValue("return_to")}}
	}
	ret := safeReturn(q.Get("return_to"))
	renderPage(rs, pages, w, r, status, "reauth", "Confirm it's you", pageData{"Error": msg, "HasCode": has,
		"Action": q.Get("action"), "ReturnTo": ret, "SSO": p.Session.SSOConnectionID != nil,
		"SSOURL": "/sso/reauth?" + url.Values{"return_to": {ret}}.Encode()})
}

func pageReauthPost(rs *responder, pages *web.Renderer, steps *stepup.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := PrincipalFrom(r.Context())
		if !ok {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		t, _ := TenantFrom(r.Context())
		in := stepup.ReauthInput{Password: r.PostFormValue("password"), Code: r.PostFormValue("code")}
		if in.Password != "" {
			in.Code = ""
		}
		iss, err := steps.Reauth(r.Context(), t, p, in, metaOf(r))
		if err != nil {
			if msg, status, ok := formError(rs, w, r, err); ok {
				renderReauth(rs, pages, steps, w, r, p, status, msg)
			}
			return
		}
		setSessionCookie(w, iss.Token, iss.Session.ExpiresAt)
		http.Redirect(w, r, safeReturn(r.PostFormValue("return_to")), http.StatusSeeOther)
	}
}

func pageLoginMFAPost(rs *responder, pages *web.Renderer, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := TenantFrom(r.Context())
		tok, returnTo := r.PostFormValue("mfa_token"), r.PostFormValue("return_to")
		res, err := accounts.LoginMFA(r.Context(), t, tok, r.PostFormValue("code"), metaOf(r))
		if err != nil {
			if msg, status, ok := formError(rs, w, r, err); ok {
				if apperr.Is(err, "invalid_mfa_token") {
					renderPage(rs, pages, w, r, status, "login", "Sign in", pageData{"Error": msg, "ReturnTo": returnTo})
					return
				}
				renderPage(rs, pages, w, r, status, "login_mfa", "Enter your code", pageData{"Error": msg, "MFAToken": tok, "ReturnTo": returnTo})
			}
			return
		}
		setSessionCookie(w, res.Session.Token, res.Session.Session.ExpiresAt)
		http.Redirect(w, r, safeReturn(returnTo), http.StatusSeeOther)
	}
}

func pageEnrollTOTP(rs *responder, pages *web.Renderer, accounts *account.Service, steps *stepup.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := PrincipalFrom(r.Context())
		if !ok {
			http.Redirect(w, r, "/login?return_to=%2Faccount", http.StatusSeeOther)
			return
		}
		if !pageStepUp(rs, steps, w, r, p, tenant.ActionMFAEnroll, "/account") {
			return
		}
		t, _ := TenantFrom(r.Context())
		e, err := accounts.EnrollTOTP(r.Context(), t, p)
		if err != nil {
			if msg, status, ok := formError(rs, w, r, err); ok {
				renderPage(rs, pages, w, r, status, "account", "Your account", pageData{"P": p, "Verified": p.EmailVerifiedAt != nil, "MFAError": msg})
			}
			return
		}
		renderPage(rs, pages, w, r, http.StatusOK, "mfa_enroll", "Set up two-factor authentication", pageData{"E": e,
			"QR": web.DataURL("image/png", e.QRPNGBase64)})
	}
}

func pageConfirmTOTP(rs *responder, pages *web.Renderer, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := PrincipalFrom(r.Context())
		if !ok {
			http.Redirect(w, r, "/login?return_to=%2Faccount", http.StatusSeeOther)
			return
		}
		t, _ := TenantFrom(r.Context())
		if err := accounts.ConfirmTOTP(r.Context(), t, p, r.PostFormValue("code")); err != nil {
			if msg, status, ok := formError(rs, w, r, err); ok {
				renderPage(rs, pages, w, r, status, "message", "Two-factor authentication",
					pageData{"Heading": "That code did not work", "Text": msg + " Start the set-up again.", "LinkText": "Back to your account", "Link": "/account"})
			}
			return
		}
		message(rs, pages, w, r, "Two-factor authentication is on", "From now on, signing in asks for a code from your authenticator app.", "Back to your account", "/account")
	}
}

func pageDisableTOTP(rs *responder, pages *web.Renderer, accounts *account.Service, steps *stepup.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := PrincipalFrom(r.Context())
		if !ok {
			http.Redirect(w, r, "/login?return_to=%2Faccount", http.StatusSeeOther)
			return
		}
		if !pageStepUp(rs, steps, w, r, p, tenant.ActionMFADisable, "/account") {
			return
		}
		t, _ := TenantFrom(r.Context())
		if err := accounts.DisableTOTP(r.Context(), t, p); err != nil {
			rs.Error(w, r, err)
			return
		}
		message(rs, pages, w, r, "Two-factor authentication is off", "Signing in now needs only your password.", "Back to your account", "/account")
	}
}

// pageExport is the account page's download button: the same export, behind the same
// step-up, returning to /account after re-authentication.
func pageExport(rs *responder, steps *stepup.Service, st *store.Store) http.HandlerFunc {
	h := handleExport(rs, st)
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := PrincipalFrom(r.Context())
		if !ok {
			http.Redirect(w, r, "/login?return_to=%2Faccount", http.StatusSeeOther)
			return
		}
		if !pageStepUp(rs, steps, w, r, p, tenant.ActionAccountExport, "/account") {
			return
		}
		h(w, r)
	}
}
