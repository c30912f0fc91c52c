package oidchttp

import (
	"embed"
	"io/fs"
	"net/http"
	"net/url"

	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
	"github.com/gatehouse-id/gatehouse/internal/oidcop"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/stepup"
)

//go:embed templates/*.html
var templates embed.FS

// Templates are this package's pages.
func Templates() fs.FS {
	sub, _ := fs.Sub(templates, "templates")
	return sub
}

// ConsentView asks a user to let a third-party app in.
type ConsentView struct {
	ID      string
	AppName string
	Scopes  []ScopeLine
	Email   string
}

// ScopeLine is one scope, in words.
type ScopeLine struct {
	Scope, Text string
}

var scopeText = map[string]string{
	"openid":         "Know who you are (your account id)",
	"profile":        "See your name",
	"email":          "See your email address",
	"offline_access": "Stay signed in when you are not using it",
}

// PageLogin is the sign-in bridge (oidcop.LoginPath): /oauth2/authorize sends the browser
// here with the request id; it goes on to the tenant's sign-in, step-up or consent, and
// finally to the library's callback, which answers the app.
func PageLogin(rs *kit.Responder, svc *oidcop.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := r.URL.Query().Get("id")
		t, _ := kit.TenantFrom(r.Context())
		var pp *session.Principal
		if p, ok := kit.PrincipalFrom(r.Context()); ok {
			pp = &p
		}
		step, err := svc.Resume(r.Context(), t, pp, id)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		here := oidcop.LoginPath + "?" + url.Values{"id": {id}}.Encode()
		switch {
		case step.Login:
			q := url.Values{"return_to": {here}}
			if step.LoginHint != "" {
				q.Set("login_hint", step.LoginHint)
			}
			http.Redirect(w, r, "/login?"+q.Encode(), http.StatusSeeOther)
		case step.Reauth:
			http.Redirect(w, r, "/reauth?"+url.Values{"return_to": {here}}.Encode(), http.StatusSeeOther)
		case step.Passkey:
			http.Redirect(w, r, stepup.RequiredPasskeyPath+"?"+url.Values{"return_to": {here}}.Encode(), http.StatusSeeOther)
		case step.Consent:
			view := ConsentView{ID: id, AppName: step.AppName, Email: pp.Email}
			for _, sc := range step.Scopes {
				if txt, ok := scopeText[sc]; ok {
					view.Scopes = append(view.Scopes, ScopeLine{Scope: sc, Text: txt})
				}
			}
			rs.Page(w, r, http.StatusOK, "consent", "Allow "+step.AppName+"?", view)
		default:
			toApp(rs, w, r, step.Redirect)
		}
	}
}

// toApp sends the browser on to step.Redirect (the library's callback, which redirects
// to the app, or the app's redirect URI with an error). A browser that comes from a form
// post on this origin (sign-in, re-authentication, consent: Sec-Fetch-Site same-origin)
// gets a page that moves on by itself instead: CSP form-action 'self' covers every
// redirect after a form post, and the app is another origin, so Chromium would stop the
// redirect chain on the tenant's page.
func toApp(rs *kit.Responder, w http.ResponseWriter, r *http.Request, u string) {
	if r.Header.Get("Sec-Fetch-Site") != "same-origin" {
		http.Redirect(w, r, u, http.StatusSeeOther)
		return
	}
	rs.Page(w, r, http.StatusOK, "sso_continue", "Back to the app", kit.ContinueView{URL: u, Heading: "Back to the app",
		Text: "Taking you back to the app…", Button: "Continue to the app"})
}

// PageConsentPost records the user's answer on the consent page.
func PageConsentPost(rs *kit.Responder, svc *oidcop.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := kit.PrincipalFrom(r.Context())
		id := r.PostFormValue("id")
		if !ok {
			http.Redirect(w, r, "/login?"+url.Values{"return_to": {oidcop.LoginPath + "?id=" + url.QueryEscape(id)}}.Encode(), http.StatusSeeOther)
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		step, err := svc.Consent(r.Context(), t, p, id, r.PostFormValue("decision") == "allow", kit.Who(r))
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		if step.Passkey {
			here := oidcop.LoginPath + "?" + url.Values{"id": {id}}.Encode()
			http.Redirect(w, r, stepup.RequiredPasskeyPath+"?"+url.Values{"return_to": {here}}.Encode(), http.StatusSeeOther)
			return
		}
		toApp(rs, w, r, step.Redirect)
	}
}
