// Package accounthttp is the self-serve user's HTTP surface: sign-up, verification,
// sign-in (with the second-factor step), password reset and change, email change,
// invitations, data export and account deletion — the JSON API and the pages, each
// handler decoding, calling one account method and encoding.
package accounthttp

import (
	"embed"
	"io/fs"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/passkey"
	"github.com/gatehouse-id/gatehouse/internal/session"
)

//go:embed templates/*.html
var templates embed.FS

// Templates are this package's pages.
func Templates() fs.FS {
	sub, _ := fs.Sub(templates, "templates")
	return sub
}

// SignupView is the sign-up form.
type SignupView struct {
	Disabled           bool
	Email, Name, Error string
}

// SignupSentView is the page a sign-up lands on (nothing to show but the layout's text).
type SignupSentView struct{}

// LoginView is the sign-in form. PendingDeletion offers to mail the cancel link again.
type LoginView struct {
	Email, Error, ReturnTo       string
	NotVerified, PendingDeletion bool
}

// LoginMFAView is the second step of a sign-in.
type LoginMFAView struct {
	Error, MFAToken, ReturnTo string
	Passkey                   bool // offer a passkey beside the code
}

// TokenView is a page that confirms an emailed link (verify, reset, undo, secure,
// cancel deletion): the token for its form, or why the link cannot be used (Done: it did
// its work already) with the one next step.
type TokenView struct {
	Token, Error      string
	Failed, Done      bool
	NextText, NextURL string
}

// EmailFormView asks for an address (resend verification, forgot password).
type EmailFormView struct {
	Action, Button, Email, Error, Intro string
}

// AccountView is the account page with the error of the form that failed, if any.
// IdP names the SSO connection that owns the address (read-only here); HasPassword and
// PasswordAllowed choose between Change password, Set a password and a note; Admin links
// the portal; EmailKept and PasswordKept say that a change asked for before a
// re-authentication is waiting to be finished.
type AccountView struct {
	P                                   session.Principal
	Verified, MFA                       bool
	NewEmail                            string
	EmailError, MFAError, PasswordError string
	IdP                                 string
	HasPassword, PasswordAllowed, Admin bool
	EmailKept, PasswordKept             bool
	Passkeys                            []passkey.Passkey
	OfferPasskey                        bool // once after a password sign-in: suggest adding one
}

// DeleteAccountView is the account deletion page; Kept: the confirmation typed before a
// re-authentication is filled in again.
type DeleteAccountView struct {
	P         session.Principal
	GraceDays int
	Error     string
	Confirm   string
	Kept      bool
}

// InviteView is the invitation acceptance page: a password form for a new account, or a
// sign-in link and then an Accept button for an address that has an account.
type InviteView struct {
	Token, Error                string
	Failed                      bool
	Inv                         account.Invitation
	Existing, SignedInAsInvitee bool
	SignedInAs, LoginURL        string
	Done                        bool // accepted already: the next step is signing in
}
