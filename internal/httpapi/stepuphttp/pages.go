package stepuphttp

import (
	"net/http"
	"net/url"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/accounthttp"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/stepup"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/web"
)

// PageReauth asks the signed-in user to prove it's them again; when a page kept the change
// that sent them here, it says so (they come back to finish it).
func PageReauth(rs *kit.Responder, steps *stepup.Service, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := kit.PrincipalFrom(r.Context())
		if !ok {
			http.Redirect(w, r, "/login?return_to="+url.QueryEscape(kit.SafeReturn(r.URL.Query().Get("return_to"))), http.StatusSeeOther)
			return
		}
		renderReauth(rs, steps, accounts, w, r, p, http.StatusOK, "")
	}
}

func renderReauth(rs *kit.Responder, steps *stepup.Service, accounts *account.Service, w http.ResponseWriter, r *http.Request, p session.Principal, status int, msg string) {
	t, _ := kit.TenantFrom(r.Context())
	has, err := steps.HasSecondFactor(r.Context(), t, p)
	if err != nil {
		rs.Error(w, r, err)
		return
	}
	q := r.URL.Query()
	if r.Method == http.MethodPost {
		q = url.Values{"action": {r.PostFormValue("action")}, "return_to": {r.PostFormValue("return_to")}}
	}
	ret := kit.SafeReturn(q.Get("return_to"))
	pc, err := accounts.Pending(r.Context(), t, p)
	if err != nil {
		rs.Error(w, r, err)
		return
	}
	kept := ""
	if pc != nil && string(pc.Action) == q.Get("action") {
		kept = "We kept your change: after this step you come back to finish it."
		if pc.Action == tenant.ActionPasswordChange {
			kept = "After this step you come back to set your password (passwords are never kept, so you type it again)."
		}
	}
	hasPasskey, passkeyOnly, err := steps.PasskeyChoice(r.Context(), t, p, tenant.StepUpAction(q.Get("action")))
	if err != nil {
		rs.Error(w, r, err)
		return
	}
	rs.Page(w, r, status, "reauth", "Confirm it's you", ReauthView{Error: msg, HasCode: has, Kept: kept,
		HasPasskey: hasPasskey, PasskeyOnly: passkeyOnly && hasPasskey,
		Action: q.Get("action"), ReturnTo: ret, SSO: p.Session.SSOConnectionID != nil,
		SSOURL: "/sso/reauth?" + url.Values{"return_to": {ret}}.Encode()})
}

func PageReauthPost(rs *kit.Responder, steps *stepup.Service, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := kit.PrincipalFrom(r.Context())
		if !ok {
			http.Redirect(w, r, "/login", http.StatusSeeOther)
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		in := stepup.ReauthInput{Password: r.PostFormValue("password"), Code: r.PostFormValue("code")}
		if in.Password != "" {
			in.Code = ""
		}
		iss, err := steps.Reauth(r.Context(), t, p, in, kit.Meta(r))
		if err != nil {
			if msg, status, ok := rs.FormError(w, r, err); ok {
				renderReauth(rs, steps, accounts, w, r, p, status, msg)
			}
			return
		}
		kit.SetSessionCookie(w, iss.Token, iss.Session.ExpiresAt)
		http.Redirect(w, r, kit.SafeReturn(r.PostFormValue("return_to")), http.StatusSeeOther)
	}
}

func PageEnrollTOTP(rs *kit.Responder, accounts *account.Service, steps *stepup.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := kit.SignedIn(w, r, "/account")
		if !ok {
			return
		}
		if !kit.PageStepUp(rs, steps, w, r, p, tenant.ActionMFAEnroll, "/account") {
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		e, err := accounts.EnrollTOTP(r.Context(), t, p)
		if err != nil {
			if msg, status, ok := rs.FormError(w, r, err); ok {
				rs.Page(w, r, status, "account", "Your account", accounthttp.AccountView{P: p, Verified: p.EmailVerifiedAt != nil, MFAError: msg})
			}
			return
		}
		rs.Page(w, r, http.StatusOK, "mfa_enroll", "Set up two-factor authentication", EnrollView{E: e,
			QR: web.DataURL("image/png", e.QRPNGBase64)})
	}
}

// PageConfirmTOTP turns TOTP on with a code and shows the recovery codes once. A refused
// code shows the set-up again with the same key and QR code to whoever meets the
// mfa.enroll step-up (who could start a new set-up anyway); others start again.
func PageConfirmTOTP(rs *kit.Responder, accounts *account.Service, steps *stepup.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := kit.SignedIn(w, r, "/account")
		if !ok {
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		codes, err := accounts.ConfirmTOTP(r.Context(), t, p, r.PostFormValue("code"))
		if err != nil {
			retryConfirm(rs, accounts, steps, w, r, p, err)
			return
		}
		renderCodes(w, r, rs, t, p, "Two-factor authentication is on",
			"From now on, signing in asks for a code from your authenticator app. If you lose your phone, each of these recovery codes signs you in once. They are shown only now: copy, download or print them and keep them somewhere safe.",
			codes)
	}
}

func PageDisableTOTP(rs *kit.Responder, accounts *account.Service, steps *stepup.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := kit.SignedIn(w, r, "/account")
		if !ok {
			return
		}
		if !kit.PageStepUp(rs, steps, w, r, p, tenant.ActionMFADisable, "/account") {
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		if err := accounts.DisableTOTP(r.Context(), t, p); err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.Message(w, r, "Two-factor authentication is off", "Signing in now needs only your password.", "Back to your account", "/account")
	}
}
