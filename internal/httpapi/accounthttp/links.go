package accounthttp

import (
	"net/http"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
)

// linkPage is the page of an emailed link: its GET shows the form only for a link that
// works (without consuming it: mail scanners follow links), else what happened and the
// one next step; its POST failures say the same.
type linkPage struct {
	kind             account.Link
	tpl, title       string
	renew, renewText string // where a new link comes from
}

var (
	verifyPage = linkPage{kind: account.LinkVerify, tpl: "verify", title: "Confirm your email address",
		renew: "/verify/resend", renewText: "Send a new confirmation link"}
	resetPage = linkPage{kind: account.LinkReset, tpl: "reset", title: "Choose a new password",
		renew: "/password/forgot", renewText: "Request a new reset link"}
	undoPage = linkPage{kind: account.LinkUndo, tpl: "undo", title: "Undo the email change",
		renew: "/password/forgot", renewText: "Reset your password"}
	securePage = linkPage{kind: account.LinkSecure, tpl: "secure", title: "Secure your account",
		renew: "/password/forgot", renewText: "Reset your password"}
	cancelPage = linkPage{kind: account.LinkCancelDeletion, tpl: "cancel_deletion", title: "Keep your account",
		renew: "/account/deletion/resend", renewText: "Send a new cancel link"}
)

// failed is the view of a link that cannot be used: a link that did its work leads to
// signing in (or the account, when signed in), any other to a new link.
func (lp linkPage) failed(r *http.Request, msg string, err error) TokenView {
	if apperr.Is(err, "token_used") || apperr.Is(err, "email_already_confirmed") {
		v := TokenView{Error: msg, Failed: true, Done: true, NextText: "Sign in", NextURL: "/login"}
		if _, ok := kit.PrincipalFrom(r.Context()); ok {
			v.NextText, v.NextURL = "Go to your account", "/account"
		}
		return v
	}
	return TokenView{Error: msg, Failed: true, NextText: lp.renewText, NextURL: lp.renew}
}

func (lp linkPage) page(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		tok := r.URL.Query().Get("token")
		if err := accounts.CheckLink(r.Context(), t, lp.kind, tok); err != nil {
			if msg, status, ok := rs.FormError(w, r, err); ok {
				rs.Page(w, r, status, lp.tpl, lp.title, lp.failed(r, msg, err))
			}
			return
		}
		rs.Page(w, r, http.StatusOK, lp.tpl, lp.title, TokenView{Token: tok})
	}
}

// fail answers a failed POST of the link's form.
func (lp linkPage) fail(rs *kit.Responder, w http.ResponseWriter, r *http.Request, err error) {
	if msg, status, ok := rs.FormError(w, r, err); ok {
		rs.Page(w, r, status, lp.tpl, lp.title, lp.failed(r, msg, err))
	}
}
