package accounthttp

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
	"github.com/gatehouse-id/gatehouse/internal/session"
)

// inviteData is what the acceptance page shows: a form to choose a password for a new
// account, or — when the address has an account — a sign-in link, then an Accept button.
func inviteData(r *http.Request, tok string, inv account.Invitation) InviteView {
	p, signedIn := kit.PrincipalFrom(r.Context())
	return InviteView{Token: tok, Inv: inv, Existing: inv.Existing,
		SignedInAsInvitee: signedIn && strings.EqualFold(p.Email, inv.Email), SignedInAs: p.Email,
		LoginURL: "/login?return_to=" + url.QueryEscape("/invite?token="+tok)}
}

// inviteFailed is the page of an invitation that cannot be accepted: an accepted one leads
// to signing in (or the account), any other says why (withdrawn, expired, unknown).
func inviteFailed(r *http.Request, msg string, err error) InviteView {
	v := InviteView{Error: msg, Failed: true}
	if apperr.Is(err, "invitation_accepted") {
		v.Done, v.LoginURL = true, "/login?return_to=%2Faccount"
		if p, ok := kit.PrincipalFrom(r.Context()); ok {
			v.SignedInAs, v.LoginURL = p.Email, "/account"
		}
	}
	return v
}

func PageInvite(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		tok := r.URL.Query().Get("token")
		inv, err := accounts.InvitationFor(r.Context(), t, tok)
		if err != nil {
			if msg, status, ok := rs.FormError(w, r, err); ok {
				rs.Page(w, r, status, "invite", "Join "+t.DisplayName(), inviteFailed(r, msg, err))
			}
			return
		}
		rs.Page(w, r, http.StatusOK, "invite", "Join "+t.DisplayName(), inviteData(r, tok, inv))
	}
}

func PageInvitePost(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		tok := r.PostFormValue("token")
		var signedIn *session.Principal
		if p, ok := kit.PrincipalFrom(r.Context()); ok {
			signedIn = &p
		}
		res, err := accounts.AcceptInvitation(r.Context(), t, tok, r.PostFormValue("name"), r.PostFormValue("password"), signedIn, kit.Meta(r))
		if err != nil {
			if msg, status, ok := rs.FormError(w, r, err); ok {
				inv, ierr := accounts.InvitationFor(r.Context(), t, tok)
				d := inviteData(r, tok, inv)
				d.Error, d.Failed = msg, inv.Email == ""
				if ierr != nil {
					d = inviteFailed(r, msg, err)
				}
				rs.Page(w, r, status, "invite", "Join "+t.DisplayName(), d)
			}
			return
		}
		if res.Session.Token != "" {
			kit.SetSessionCookie(w, res.Session.Token, res.Session.Session.ExpiresAt)
		}
		http.Redirect(w, r, "/account", http.StatusSeeOther)
	}
}
