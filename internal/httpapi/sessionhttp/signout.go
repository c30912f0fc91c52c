package sessionhttp

import (
	"net/http"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/sso"
)

// PageLogout ends the session. A session that came from an IdP with single logout also
// signs out there: the browser carries a signed LogoutRequest to the IdP, whose answer
// comes back at the connection's /slo and lands on the signed-out page. An SSO session
// whose IdP has no single logout lands there with the warning that the IdP still has a
// session (Sign in with single sign-on would sign straight back in).
func PageLogout(rs *kit.Responder, sessions *session.Service, svc *sso.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := kit.PrincipalFrom(r.Context())
		if !ok {
			http.Redirect(w, r, kit.SignedOut, http.StatusSeeOther)
			return
		}
		if err := sessions.Revoke(r.Context(), p, p.Session.ID, "logout"); err != nil {
			rs.Error(w, r, err)
			return
		}
		kit.ClearSessionCookie(w)
		t, _ := kit.TenantFrom(r.Context())
		lo, err := svc.LogoutRedirect(r.Context(), t, p)
		if err != nil {
			rs.Logger().WarnContext(r.Context(), "sso logout request not made", "err", err)
		}
		switch {
		case lo.RedirectURL != "":
			http.SetCookie(w, &http.Cookie{Name: sso.LogoutCookie, Value: lo.RequestID, Path: "/", Secure: true, HttpOnly: true,
				SameSite: http.SameSiteNoneMode, MaxAge: int((10 * time.Minute).Seconds())})
			// A page, not a redirect: CSP form-action covers every redirect after a form
			// post, and the IdP is another origin.
			rs.Page(w, r, http.StatusOK, "signout_continue", "Signing out", kit.ContinueView{URL: lo.RedirectURL,
				Text: "You are signed out here. Signing you out of your organisation's sign-in too…"})
		case lo.SSO:
			http.Redirect(w, r, kit.SignedOutIdPStill, http.StatusSeeOther)
		default:
			http.Redirect(w, r, kit.SignedOut, http.StatusSeeOther)
		}
	}
}

// PageSignedOut is where signing out ends; it says whether the organisation's sign-in
// still has a session.
func PageSignedOut(rs *kit.Responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		v := SignedOutView{}
		switch "/signed-out?idp=" + r.URL.Query().Get("idp") {
		case kit.SignedOutIdPEnded:
			v.IdPEnded = true
		case kit.SignedOutIdPStill:
			v.IdPStill = true
		case kit.SignedOutUnconfirmed:
			v.IdPUnconfirmed = true
		}
		rs.Page(w, r, http.StatusOK, "signed_out", "Signed out", v)
	}
}
