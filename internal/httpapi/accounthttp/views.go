// Package accounthttp is the self-serve user's HTTP surface: sign-up, verification,
// sign-in (with the second-factor step), password reset and change, email change,
// invitations, data export and account deletion — the JSON API and the pages, each
// handler decoding, calling one account method and encoding.
package accounthttp

import (
	"embed"
	"io/fs"

	"github.com/gatehouse-id/gatehouse/internal/account"
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

// LoginView is the sign-in form.
type LoginView struct {
	Email, Error, ReturnTo string
	NotVerified            bool
}

// LoginMFAView is the second step of a sign-in.
type LoginMFAView struct {
	Error, MFAToken, ReturnTo string
}

// TokenView is a page that confirms an emailed link (verify, reset, undo, secure,
// cancel deletion): the token for its form, or the failure.
type TokenView struct {
	Token, Error string
	Failed       bool
}

// EmailFormView asks for an address (resend verification, forgot password).
type EmailFormView struct {
	Action, Button, Email, Error, Intro string
}

// AccountView is the account page with the error of the form that failed, if any.
type AccountView struct {
	P                                   session.Principal
	Verified, MFA                       bool
	NewEmail                            string
	EmailError, MFAError, PasswordError string
}

// DeleteAccountView is the account deletion page.
type DeleteAccountView struct {
	P         session.Principal
	GraceDays int
	Error     string
}

// InviteView is the invitation acceptance page: a password form for a new account, or a
// sign-in link and then an Accept button for an address that has an account.
type InviteView struct {
	Token, Error                string
	Failed                      bool
	Inv                         account.Invitation
	Existing, SignedInAsInvitee bool
	SignedInAs, LoginURL        string
}
