package tenant

import (
	"errors"
	"fmt"
	"regexp"
)

// AppDecl declares one app (OAuth 2 / OpenID Connect client) of the tenant, with the fields
// of the admin API (/api/v1/admin/apps). The client_id is the declaration's stable key: a
// declared app is created with it and found by it on every later apply (it may also name
// an app created in the portal, which the file then manages). Like the policy, a
// declaration is the app's whole truth: a field left out takes its default on every apply.
// Secrets are never in files: a confidential app's secret comes from the environment
// variable ClientSecretEnv names, or is generated at the first apply and printed once.
// The oidcop package applies the declarations (after the tenant itself).
type AppDecl struct {
	ClientID               string   `json:"client_id"`
	Name                   string   `json:"name"`
	Type                   string   `json:"type,omitempty"` // confidential (default) or public
	RedirectURIs           []string `json:"redirect_uris,omitempty"`
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris,omitempty"`
	BackchannelLogoutURI   string   `json:"backchannel_logout_uri,omitempty"`
	FirstParty             bool     `json:"first_party,omitempty"`
	AllowedScopes          []string `json:"allowed_scopes,omitempty"` // nil: every scope
	GrantTypes             []string `json:"grant_types,omitempty"`    // nil: authorization_code, refresh_token
	AccessTokenTTLSeconds  int      `json:"access_token_ttl_seconds,omitempty"`
	RefreshTokenTTLSeconds int      `json:"refresh_token_ttl_seconds,omitempty"`
	ClientSecretEnv        string   `json:"client_secret_env,omitempty"`
}

var (
	declClientID = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{7,63}$`)
	envName      = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)
)

// validateApps checks what can be checked without the database (the app settings
// themselves are validated by the oidcop package, on a dry run too).
func validateApps(apps []AppDecl, at func(string, error) error) error {
	seen := map[string]bool{}
	for i := range apps {
		a := &apps[i]
		field := fmt.Sprintf("apps[%d]", i)
		if a.Type == "" {
			a.Type = "confidential"
		}
		switch {
		case !declClientID.MatchString(a.ClientID):
			return at(field+".client_id", errors.New("8 to 64 lowercase letters, digits, dashes and underscores, starting with a letter or digit"))
		case seen[a.ClientID]:
			return at(field+".client_id", fmt.Errorf("%q is declared twice", a.ClientID))
		case a.Name == "":
			return at(field+".name", errors.New("required"))
		case a.Type != "confidential" && a.Type != "public":
			return at(field+".type", fmt.Errorf("must be confidential or public, not %q", a.Type))
		case a.ClientSecretEnv != "" && a.Type == "public":
			return at(field+".client_secret_env", errors.New("a public app has no secret"))
		case a.ClientSecretEnv != "" && !envName.MatchString(a.ClientSecretEnv):
			return at(field+".client_secret_env", fmt.Errorf("%q is not an environment variable name", a.ClientSecretEnv))
		}
		seen[a.ClientID] = true
	}
	return nil
}
