// Package stepuphttp is re-authentication and the second factor's management over HTTP:
// /reauth and its API, TOTP enrolment, confirmation and removal, recovery codes.
package stepuphttp

import (
	"embed"
	"html/template"
	"io/fs"

	"github.com/gatehouse-id/gatehouse/internal/mfa"
)

//go:embed templates/*.html
var templates embed.FS

// Templates are this package's pages.
func Templates() fs.FS {
	sub, _ := fs.Sub(templates, "templates")
	return sub
}

// ReauthView is the re-authentication page; Kept says that the change that led here is
// waiting on the page the user returns to.
type ReauthView struct {
	Error, Action, ReturnTo, SSOURL, Kept string
	HasCode, SSO                          bool
	HasPasskey, PasskeyOnly               bool // a passkey button; only a passkey meets the rule
}

// EnrollView is the TOTP set-up page: the secret and its QR code, and after a wrong code
// its message (the same secret stays for another try).
type EnrollView struct {
	E     mfa.Enrollment
	QR    template.URL
	Error string
}

// CodesView shows new recovery codes once, after the set-up is confirmed or the codes are
// replaced: Text (one a line) for the copy button, Download the same file as a data: URL
// named FileName (nothing is kept on the server to fetch later).
type CodesView struct {
	Heading, Intro string
	Codes          []string
	Text           string
	Download       template.URL
	FileName       string
}

// MFAView is the two-factor page: on, pending or off, recovery codes left (Low when few).
type MFAView struct {
	S   mfa.Status
	Low bool
}
