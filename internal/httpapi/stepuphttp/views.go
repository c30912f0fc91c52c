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
}

// EnrollView is the TOTP set-up page: the secret and its QR code.
type EnrollView struct {
	E  mfa.Enrollment
	QR template.URL
}
