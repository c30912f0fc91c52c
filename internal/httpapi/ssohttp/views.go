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

// FieldError is a form's problem: with Field set it belongs beside that input (the
// input's name), otherwise to the whole form.
type FieldError struct {
	Field, Message string
}

// For is the message for the input named field ("" when the problem is elsewhere).
func (e FieldError) For(field string) string {
	if e.Field != "" && e.Field == field {
		return e.Message
	}
	return ""
}

// ConnectionsView is the list of connections with step 1 of adding one (a name) and the
// chosen IdP's Guide.
type ConnectionsView struct {
	Connections []sso.Connection
	Guides      []Guide
	Guide       Guide
	Deleted     bool
	Err         FieldError
	Name, Slug  string // typed into the add form (kept on an error)
}

// ConnectionView is one connection's page: the SP values and the IdP's steps (1), the
// IdP metadata (2), Test connection (3), then domains, settings, keys and attempts.
type ConnectionView struct {
	C        sso.Connection
	Guide    Guide
	Steps    []StepView
	Attempts []sso.Attempt
	Notice   string
	Err      FieldError
	// Form is the form Err belongs to ("settings", "metadata" or "").
	Form              string
	Roles, DomainList string
	// MetadataURL and MetadataXML are what was typed into step 2 (kept on an error).
	MetadataURL, MetadataXML, EntityID string
}

// OIDCAddView is adding an OpenID Connect connection: the IdP's steps with the exact
// redirect URI for the identifier in the form, and the form (issuer, client, checks).
type OIDCAddView struct {
	Guides                     []Guide
	Guide                      Guide
	Steps                      []StepView
	RedirectURI, PostLogoutURI string
	Err                        FieldError
	Name, Slug, Issuer         string
	ClientID, Scopes           string
	HostedDomain, EntraTenant  string
}

// Draft tells a connection still without IdP metadata.
func (v ConnectionView) Draft() bool { return v.C.Status == "draft" }

// DeleteView is the confirmation step before a connection is deleted.
type DeleteView struct {
	C   sso.Connection
	Err FieldError
}
