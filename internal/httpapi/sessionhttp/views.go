// Package sessionhttp is the session check apps call (GET /api/v1/session), the user's
// list of devices and signing out of them, as JSON and pages.
package sessionhttp

import (
	"embed"
	"io/fs"
)

//go:embed templates/*.html
var templates embed.FS

// Templates are this package's pages.
func Templates() fs.FS {
	sub, _ := fs.Sub(templates, "templates")
	return sub
}

// SessionsView is "Where you're signed in".
type SessionsView struct {
	Sessions []SessionRow
	Notice   string
	Others   bool
}

// SignedOutView is the page after signing out: what happened at the organisation's
// sign-in, for a session that came from SSO.
type SignedOutView struct {
	IdPEnded       bool // the IdP confirmed single logout
	IdPStill       bool // the IdP has no single logout: it still has a session
	IdPUnconfirmed bool // the IdP did not confirm single logout
}
