// Package redirect decides which redirect targets stay on this host. Every redirect to a
// target that came from a request (return_to, a stored RelayState target, a connection's
// default path) goes through Local and uses the path it returns, never the raw value.
package redirect

import (
	"net/url"
	"path"
	"strings"
)

// MaxLen is the longest target accepted.
const MaxLen = 2048

// Local returns raw rebuilt as a clean absolute path on this host, with its query, or
// false when raw could lead anywhere else or is not a plain path.
//
// Browsers parse a Location the WHATWG way: they drop tabs and newlines anywhere, treat a
// backslash as a slash, and resolve dot segments — so "/./\evil.example" and
// "/x/../\evil.example" become "//evil.example", another origin. Go's http.Redirect also
// runs path.Clean over the value. Local therefore refuses every control character,
// decodes and cleans the path first (backslashes as slashes, percent-escapes resolved, dot
// segments removed), refuses backslashes and empty segments (literal or encoded) and a
// result that starts with two slashes; the path it returns is re-encoded, so no later
// cleaning can change what it means.
func Local(raw string) (string, bool) {
	if raw == "" || len(raw) > MaxLen {
		return "", false
	}
	for _, c := range raw {
		if c < 0x20 || c == 0x7f || c == ' ' {
			return "", false
		}
	}
	// No local path of ours has a backslash or an empty segment; browsers read the first as
	// a slash and both are how a path is made to look like another host.
	if strings.Contains(raw, `\`) || !strings.HasPrefix(raw, "/") || strings.HasPrefix(raw, "//") {
		return "", false
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return "", false
	}
	// u.Path is percent-decoded: an encoded slash or backslash counts as what it decodes to.
	p := u.Path
	if strings.Contains(p, `\`) || strings.Contains(p, "//") {
		return "", false
	}
	trailing := strings.HasSuffix(p, "/")
	p = path.Clean(p)
	if trailing && p != "/" {
		p += "/"
	}
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") {
		return "", false
	}
	for _, c := range p {
		if c < 0x20 || c == 0x7f {
			return "", false
		}
	}
	if strings.ContainsAny(u.RawQuery, `\`) {
		return "", false
	}
	out := (&url.URL{Path: p, RawQuery: u.RawQuery}).String()
	if !strings.HasPrefix(out, "/") || strings.HasPrefix(out, "//") {
		return "", false
	}
	return out, true
}

// LocalOr returns Local(raw), or fallback when raw is not a local target.
func LocalOr(raw, fallback string) string {
	if p, ok := Local(raw); ok {
		return p
	}
	return fallback
}
