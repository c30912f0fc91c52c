// Package adminhttp is the tenant admin portal and the admin JSON API: overview, users,
// roles, policies, invitations, branding and the audit log. Handlers decode, call one
// admin (or account, tenant) method and encode.
package adminhttp

import (
	"embed"
	"io/fs"
	"net/url"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/admin"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/sso"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

//go:embed templates/*.html
var templates embed.FS

// Templates are this package's pages.
func Templates() fs.FS {
	sub, _ := fs.Sub(templates, "templates")
	return sub
}

// OverviewView is the portal's first page.
type OverviewView struct {
	Counts      admin.Counts
	Logins      []audit.View
	SSOWarnings []sso.Connection
}

// UsersView is the user directory with its filters and the next page's link.
type UsersView struct {
	Users                               []admin.User
	Q, Next, Status, Verified, MFA, SSO string
	Deleted                             bool // a user was just deleted
}

// UserView is one user's page. The delete form asks for the user's address as
// confirmation; DeleteConfirm and DeleteImmediate keep what was entered, DeleteError says
// what is wrong with it.
type UserView struct {
	U        admin.User
	Role     string
	Roles    []string
	Sessions []session.View
	Notice   string

	GraceDays                  int
	Scheduled                  bool // the deletion was just scheduled
	DeleteConfirm, DeleteError string
	DeleteImmediate            bool
}

// PolicyView is the policies form.
type PolicyView struct {
	F     policyForm
	Saved bool
	Error string
}

// InvitationsView lists open invitations with the invite form.
type InvitationsView struct {
	Invitations   []account.Invitation
	Roles         []string
	Notice, Error string
}

// AuditView is one page of the audit log with its filter; the export and next-page links
// carry the same filter (built whole in Go: a query string interpolated into an href is
// escaped by html/template, which dropped the filter from the exports).
type AuditView struct {
	Events                   []audit.View
	Action, Actor, Since     string
	CSVURL, JSONURL, NextURL string
}

// NewAuditView builds the page's links from the filter q and the next page's cursor.
func NewAuditView(events []audit.View, action, actor, since string, q url.Values, next string) AuditView {
	v := AuditView{Events: events, Action: action, Actor: actor, Since: since,
		CSVURL: "/admin/audit.csv?" + q.Encode(), JSONURL: "/admin/audit.json?" + q.Encode()}
	if next != "" {
		nq := url.Values{}
		for k, vs := range q {
			nq[k] = vs
		}
		nq.Set("cursor", next)
		v.NextURL = "/admin/audit?" + nq.Encode()
	}
	return v
}

// BrandingView is the branding form, with the error of each field next to it.
type BrandingView struct {
	B     tenant.Branding
	Saved bool
	Error string
	Err   BrandingErrors
}

// BrandingErrors are the field-level errors of the branding form.
type BrandingErrors struct {
	DisplayName, LogoURL, PrimaryColor string
}

func (v *BrandingView) setError(fe *formError) bool {
	switch fe.Field {
	case "display_name":
		v.Err.DisplayName = fe.Message
	case "logo_url":
		v.Err.LogoURL = fe.Message
	case "primary_color":
		v.Err.PrimaryColor = fe.Message
	default:
		return false
	}
	return true
}

// RolesView lists the roles with their permissions and members.
type RolesView struct {
	Roles []admin.Role
}

// NewPolicyView is the policies form for p.
func NewPolicyView(p tenant.Policy, saved bool, errMsg string) PolicyView {
	return PolicyView{F: newPolicyForm(p), Saved: saved, Error: errMsg}
}
