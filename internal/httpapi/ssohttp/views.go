// Package ssohttp is SAML single sign-on over HTTP: SP metadata, SP-initiated login, the
// ACS, single logout, discovery, re-authentication, and the admin portal's connection
// pages and API.
package ssohttp

import (
	"embed"
	"io/fs"

	"github.com/gatehouse-id/gatehouse/internal/sso"
)

//go:embed templates/*.html
var templates embed.FS

// Templates are this package's pages.
func Templates() fs.FS {
	sub, _ := fs.Sub(templates, "templates")
	return sub
}

// TestView is the result of Test connection: every check and what came back.
type TestView struct {
	Report    *sso.Report
	Reference string
	OK        bool
}

// ConnectionsView is the list of connections with the add form and its Guide.
type ConnectionsView struct {
	Connections []sso.Connection
	Guides      []Guide
	Guide       Guide
	Deleted     bool
	Error       string
}

// ConnectionView is one connection's page.
type ConnectionView struct {
	C                 sso.Connection
	Guide             Guide
	Attempts          []sso.Attempt
	Notice, Error     string
	Roles, DomainList string
}
