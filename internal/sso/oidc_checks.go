package sso

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse-id/gatehouse/internal/outbound"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// The checks and readings of an OIDC answer (oidc_flow.go runs them in order) and
// RP-initiated logout.

// idpChecks are the IdP-specific checks a connection may have: the Google Workspace
// domain (hd) and the Entra ID directory (tid). (An Okta org is its issuer, which the
// verifier matches exactly.)
func idpChecks(c sqlcgen.SSOConnection, cl idTokenClaims) (string, error) {
	if c.OIDCHostedDomain != nil && !strings.EqualFold(cl.HostedDomain, *c.OIDCHostedDomain) {
		return "hd_mismatch", fmt.Errorf("the account's Google Workspace domain (hd %q) is not %s", clipMsg(cl.HostedDomain), *c.OIDCHostedDomain)
	}
	if c.OIDCTenant != nil && !strings.EqualFold(cl.TenantID, *c.OIDCTenant) {
		return "tid_mismatch", fmt.Errorf("the account's Entra ID directory (tid %q) is not %s", clipMsg(cl.TenantID), *c.OIDCTenant)
	}
	return "", nil
}

func idpChecksDetail(c sqlcgen.SSOConnection) string {
	var parts []string
	if c.OIDCHostedDomain != nil {
		parts = append(parts, "hd = "+*c.OIDCHostedDomain)
	}
	if c.OIDCTenant != nil {
		parts = append(parts, "tid = "+*c.OIDCTenant)
	}
	if len(parts) == 0 {
		return "none configured"
	}
	return strings.Join(parts, ", ")
}

// verifyReason maps go-oidc's verification errors to stable reasons.
func verifyReason(err error) string {
	var exp *oidc.TokenExpiredError
	msg := err.Error()
	switch {
	case errors.As(err, &exp):
		return "expired"
	case strings.Contains(msg, "issued by a different provider"):
		return "issuer_mismatch"
	case strings.Contains(msg, "expected audience"):
		return "audience_mismatch"
	case strings.Contains(msg, "before the nbf"):
		return "not_yet_valid"
	case strings.Contains(msg, "malformed jwt"), strings.Contains(msg, "not signed"), strings.Contains(msg, "unsupported algorithm"),
		strings.Contains(msg, "unexpected signature algorithm"):
		return "signature_algorithm_refused"
	case strings.Contains(msg, "failed to verify signature"):
		return "signature_invalid"
	}
	return "id_token_invalid"
}

func withoutNone(algs []string) []string {
	out := make([]string, 0, len(algs))
	for _, a := range algs {
		if a != "none" && a != "" {
			out = append(out, a)
		}
	}
	return out
}

// tokenError is a token endpoint failure as the admin may read it: the OAuth error code,
// never the response body or the dialer's addresses.
func tokenError(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.ErrorCode != "" {
			return clipMsg(re.ErrorCode)
		}
		return "status " + strconv.Itoa(re.Response.StatusCode)
	}
	return clipMsg(outbound.Reason(err))
}

// emailVerified reads an email_verified claim: true only for a JSON true (or "true", as
// some IdPs send it); missing means unverified.
func emailVerified(v any) bool {
	switch x := v.(type) {
	case bool:
		return x
	case string:
		return x == "true"
	}
	return false
}

// fillClaims copies the claims into the report's attributes (bounded), as strings.
func fillClaims(r *Report, claims map[string]any) {
	keys := make([]string, 0, len(claims))
	for k := range claims {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if len(r.Attributes) >= 100 || len(k) > 256 {
			break
		}
		var vals []string
		switch x := claims[k].(type) {
		case string:
			vals = []string{x}
		case bool:
			vals = []string{strconv.FormatBool(x)}
		case float64:
			vals = []string{strconv.FormatFloat(x, 'f', -1, 64)}
		case []any:
			for _, e := range x {
				if s, ok := e.(string); ok && len(vals) < 100 {
					vals = append(vals, s)
				}
			}
		default:
			continue
		}
		for i, v := range vals {
			if len(v) > 1024 {
				vals[i] = v[:1024]
			}
		}
		r.Attributes[k] = vals
	}
}

// oidcLogout is RP-initiated logout at the IdP, when its discovery publishes an
// end_session_endpoint: the browser goes there with client_id and the signed-out page
// as post_logout_redirect_uri.
func (s *Service) oidcLogout(t tenant.Tenant, c sqlcgen.SSOConnection) (Logout, error) {
	out := Logout{SSO: true}
	var d discovery
	if err := json.Unmarshal(c.OIDCDiscovery, &d); err != nil || d.EndSessionURL == "" {
		return out, nil
	}
	u, err := url.Parse(d.EndSessionURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return out, nil
	}
	q := u.Query()
	q.Set("client_id", deref(c.OIDCClientID))
	q.Set("post_logout_redirect_uri", s.PostLogoutURI(t))
	u.RawQuery = q.Encode()
	out.RedirectURL = u.String()
	return out, nil
}

// PostLogoutURI is where an OIDC IdP sends the browser after RP-initiated logout (to be
// registered at the IdP beside the redirect URI).
func (s *Service) PostLogoutURI(t tenant.Tenant) string {
	return s.urls.Link(t.Slug, "/signed-out", url.Values{"idp": {"oidc"}})
}
