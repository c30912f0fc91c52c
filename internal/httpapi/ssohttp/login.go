package ssohttp

import (
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
	"github.com/gatehouse-id/gatehouse/internal/sso"
)

func HandleSPMetadata(rs *kit.Responder, svc *sso.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		doc, err := svc.Metadata(r.Context(), t, chi.URLParam(r, "connection"))
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/samlmetadata+xml")
		w.Header().Set("Cache-Control", "public, max-age=300")
		_, _ = w.Write(doc)
	}
}

// setBrowserBinding sets the cookie that binds a pending request to this browser. The
// IdP's answer is a cross-site POST, so SameSite=None (Secure, host-only, short-lived).
func setBrowserBinding(w http.ResponseWriter, v string) {
	http.SetCookie(w, &http.Cookie{Name: sso.BrowserCookie, Value: v, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteNoneMode, MaxAge: int((15 * time.Minute).Seconds())})
}

func browserBinding(r *http.Request) string {
	if c, err := r.Cookie(sso.BrowserCookie); err == nil {
		return c.Value
	}
	return ""
}

// sendStart hands the browser to the IdP: a 302 (Redirect binding) or an auto-posting
// form whose CSP allows only a form to the IdP.
func sendStart(w http.ResponseWriter, r *http.Request, st sso.Start) {
	setBrowserBinding(w, st.Browser)
	if st.RedirectURL != "" {
		http.Redirect(w, r, st.RedirectURL, http.StatusFound)
		return
	}
	w.Header().Set("Content-Security-Policy", sso.PostCSP(st.PostURL))
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	_, _ = w.Write(st.PostForm)
}

// HandleSSOLogin is SP-initiated login at the door of protocol (saml or oidc).
func HandleSSOLogin(rs *kit.Responder, svc *sso.Service, protocol string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		st, err := svc.StartLogin(r.Context(), t, sso.StartInput{Slug: chi.URLParam(r, "connection"), Purpose: sso.PurposeLogin, Protocol: protocol,
			ReturnTo: r.URL.Query().Get("return_to"), Browser: browserBinding(r), ClientIP: kit.Info(r.Context()).ClientIP,
			LoginHint: r.URL.Query().Get("login_hint")})
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		sendStart(w, r, st)
	}
}

// HandleSSOReauth re-authenticates an SSO user at the IdP with ForceAuthn (step-up).
func HandleSSOReauth(rs *kit.Responder, svc *sso.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := kit.PrincipalFrom(r.Context())
		if !ok {
			http.Redirect(w, r, "/login?return_to="+url.QueryEscape(kit.SafeReturn(r.URL.Query().Get("return_to"))), http.StatusSeeOther)
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		slug, err := svc.SlugOf(r.Context(), t, p.Session.SSOConnectionID)
		if err != nil {
			rs.Error(w, r, apperr.New(apperr.Invalid, "not_sso_session", "This session did not come from single sign-on; confirm with your password instead."))
			return
		}
		id := p.Session.ID
		st, err := svc.StartLogin(r.Context(), t, sso.StartInput{Slug: slug, Purpose: sso.PurposeReauth,
			ReturnTo: kit.SafeReturn(r.URL.Query().Get("return_to")), SessionID: &id, Browser: browserBinding(r)})
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		sendStart(w, r, st)
	}
}

func HandleACS(rs *kit.Responder, svc *sso.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				rs.Error(w, r, kit.ErrTooLarge)
				return
			}
			rs.Error(w, r, apperr.New(apperr.Invalid, "invalid_request", "The form could not be read."))
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		res, err := svc.ACS(r.Context(), t, sso.ACSInput{Slug: chi.URLParam(r, "connection"), SAMLResponse: r.PostForm.Get("SAMLResponse"),
			RelayState: r.PostForm.Get("RelayState"), Browser: browserBinding(r), Meta: kit.Meta(r), Who: kit.Who(r)})
		finishSSO(rs, w, r, res, err)
	}
}

// HandleOIDCCallback is the redirect URI of an OIDC connection: the IdP's answer to the
// authorization request (code and state, or an error).
func HandleOIDCCallback(rs *kit.Responder, svc *sso.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		q := r.URL.Query()
		res, err := svc.Callback(r.Context(), t, sso.CallbackInput{Slug: chi.URLParam(r, "connection"), State: q.Get("state"),
			Code: q.Get("code"), Error: q.Get("error"), ErrorDescription: q.Get("error_description"), Browser: browserBinding(r),
			Meta: kit.Meta(r), Who: kit.Who(r)})
		finishSSO(rs, w, r, res, err)
	}
}

// finishSSO answers the end of an SSO sign-in (SAML ACS or OIDC callback): the session
// cookie and a 303, the test report, the account's own refusal (account_disabled,
// account_pending_deletion), or the generic failure page with the reference.
func finishSSO(rs *kit.Responder, w http.ResponseWriter, r *http.Request, res sso.ACSResult, err error) {
	{
		var fail *sso.Failure
		if errors.As(err, &fail) {
			w.Header().Set("X-Gatehouse-SSO-Reference", fail.Reference)
			if res.Purpose == sso.PurposeTest && res.Report != nil {
				rs.Page(w, r, http.StatusForbidden, "sso_test", "Connection test", TestView{Report: res.Report, Reference: fail.Reference, OK: false})
				return
			}
			if fail.AccountRefused() {
				// A suspended (or deleted) account: the answer password sign-in gives, with
				// the attempt's reference; JSON for API clients.
				pub := fail.Public()
				if !kit.WantsHTML(r) {
					rs.Error(w, r, pub)
					return
				}
				rs.Page(w, r, http.StatusForbidden, "error", "Sign-in refused", kit.ErrorView{Heading: "You cannot sign in",
					Message: pub.Message + " Reference for your administrator: " + fail.Reference, Code: pub.Code})
				return
			}
			rs.Page(w, r, http.StatusForbidden, "error", "Sign-in failed", kit.ErrorView{Heading: "Single sign-on did not work",
				Message: "Your organisation's sign-in could not be completed. If this keeps happening, give your administrator this reference: " + fail.Reference,
				Code:    "sso_failed"})
			return
		}
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		w.Header().Set("X-Gatehouse-SSO-Reference", res.Reference)
		switch res.Purpose {
		case sso.PurposeTest:
			rs.Page(w, r, http.StatusOK, "sso_test", "Connection test", TestView{Report: res.Report, Reference: res.Reference, OK: true})
		default:
			kit.SetSessionCookie(w, res.Issued.Token, res.Issued.Session.ExpiresAt)
			http.Redirect(w, r, kit.SafeReturn(res.ReturnTo), http.StatusSeeOther)
		}
	}
}

// HandleSLO takes an IdP-initiated LogoutRequest (or the IdP's answer to ours).
func HandleSLO(rs *kit.Responder, svc *sso.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			rs.Error(w, r, apperr.New(apperr.Invalid, "invalid_request", "The form could not be read."))
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		if r.Form.Get("SAMLRequest") == "" {
			// The IdP's answer to our LogoutRequest: the Gatehouse session is already gone;
			// the signed-out page says whether the IdP confirmed its own sign-out.
			if r.Form.Get("SAMLResponse") == "" {
				http.Redirect(w, r, kit.SignedOut, http.StatusSeeOther)
				return
			}
			id := ""
			if c, err := r.Cookie(sso.LogoutCookie); err == nil {
				id = c.Value
			}
			http.SetCookie(w, &http.Cookie{Name: sso.LogoutCookie, Value: "", Path: "/", Secure: true, HttpOnly: true,
				SameSite: http.SameSiteNoneMode, MaxAge: -1})
			dest := kit.SignedOutUnconfirmed
			if id != "" && svc.LogoutAnswered(r.Context(), t, chi.URLParam(r, "connection"), r, id) == nil {
				dest = kit.SignedOutIdPEnded
			}
			http.Redirect(w, r, dest, http.StatusSeeOther)
			return
		}
		dest, err := svc.IdPLogout(r.Context(), t, chi.URLParam(r, "connection"), r, kit.Who(r))
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		if dest == "" {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		http.Redirect(w, r, dest, http.StatusFound)
	}
}

func HandleSSODiscover(rs *kit.Responder, svc *sso.Service) http.HandlerFunc {
	type request struct {
		Email    string `json:"email"`
		ReturnTo string `json:"return_to"`
	}
	return func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := kit.DecodeJSON(r, &req); err != nil {
			rs.Error(w, r, err)
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		route, err := svc.Discover(r.Context(), t, req.Email, req.ReturnTo)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, route)
	}
}
