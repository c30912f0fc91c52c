package oidchttp

import (
	"net/http"

	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
	"github.com/gatehouse-id/gatehouse/internal/oidcop"
	"github.com/gatehouse-id/gatehouse/internal/session"
)

// LogoutConfirmView asks a signed-in user whether to sign out (RP-initiated logout
// without a hint naming this browser's session). The request's parameters ride along.
type LogoutConfirmView struct {
	AppName, Email                                      string
	IDTokenHint, ClientID, PostLogoutRedirectURI, State string
}

// SignedOutView is the page after RP-initiated logout when the app is not redirected to.
type SignedOutView struct {
	AppName string
	// StillSignedIn is the user who chose to stay signed in ("" when signed out).
	StillSignedIn   string
	UnknownRedirect bool
}

// PageLogout is RP-initiated logout (GET /oauth2/logout, oidcop.LogoutPath).
func PageLogout(rs *kit.Responder, svc *oidcop.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) { logout(rs, svc, w, r, false, false) }
}

// PageLogoutConfirm is the confirmation page's answer (same-origin POST).
func PageLogoutConfirm(rs *kit.Responder, svc *oidcop.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		d := r.PostFormValue("decision")
		logout(rs, svc, w, r, d == "logout", d != "logout")
	}
}

func logout(rs *kit.Responder, svc *oidcop.Service, w http.ResponseWriter, r *http.Request, confirmed, stay bool) {
	v := r.URL.Query()
	if r.Method == http.MethodPost {
		if err := r.ParseForm(); err != nil {
			rs.Error(w, r, oidcop.ErrInvalidLogout)
			return
		}
		v = r.PostForm
	}
	req := oidcop.LogoutRequest{IDTokenHint: v.Get("id_token_hint"), ClientID: v.Get("client_id"),
		PostLogoutRedirectURI: v.Get("post_logout_redirect_uri"), State: v.Get("state")}
	t, _ := kit.TenantFrom(r.Context())
	var browser *session.Principal
	if p, ok := kit.PrincipalFrom(r.Context()); ok {
		browser = &p
	}
	res, err := svc.Logout(r.Context(), t, browser, req, confirmed, stay)
	if err != nil {
		rs.Error(w, r, err)
		return
	}
	if res.Ended {
		kit.ClearSessionCookie(w)
	}
	w.Header().Set("Cache-Control", "no-store")
	switch {
	case res.Confirm:
		rs.Page(w, r, http.StatusOK, "logout_confirm", "Sign out?", LogoutConfirmView{AppName: res.AppName, Email: res.Email,
			IDTokenHint: req.IDTokenHint, ClientID: req.ClientID, PostLogoutRedirectURI: req.PostLogoutRedirectURI, State: req.State})
	case res.Redirect != "":
		http.Redirect(w, r, res.Redirect, http.StatusSeeOther)
	default:
		view := SignedOutView{AppName: res.AppName, UnknownRedirect: res.UnknownRedirect}
		if stay && browser != nil {
			view.StillSignedIn = browser.Email
		}
		title := "Signed out"
		if view.StillSignedIn != "" {
			title = "Still signed in"
		}
		rs.Page(w, r, http.StatusOK, "oidc_signed_out", title, view)
	}
}
