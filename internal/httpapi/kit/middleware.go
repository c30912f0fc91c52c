package kit

import (
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/sso"
)

// Body limits (../shared/API.md): JSON 64 KiB; the SAML ACS and SSO configuration (IdP
// metadata documents) 512 KiB.
const MaxBodyBytes = 64 << 10

// MaxSCIMBodyBytes is the body limit of /scim/v2 requests.
const MaxSCIMBodyBytes = 1 << 20

// Recoverer turns a panic into 500 internal. The stack goes to the log, never to the client.
func Recoverer(rs *Responder) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					rs.Error(w, r, fmt.Errorf("panic: %v\n%s", v, debug.Stack()))
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// statusRecorder remembers the status for the access log.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// SecurityHeaders sets the headers every response carries. Pages get a strict CSP without
// inline scripts or styles; frames are refused everywhere. The values are shared,
// immutable slices (len == cap, so an Add elsewhere copies instead of writing into them):
// this runs on every request.
func SecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for k, v := range staticHeaders {
			h[k] = v
		}
		if Info(r.Context()).TLS {
			h["Strict-Transport-Security"] = hstsValue
		}
		next.ServeHTTP(w, r)
	})
}

func Fixed(v string) []string { return []string{v}[:1:1] }

var (
	staticHeaders = map[string][]string{
		"X-Content-Type-Options":     Fixed("nosniff"),
		"Referrer-Policy":            Fixed("no-referrer"),
		"X-Frame-Options":            Fixed("DENY"),
		"Cross-Origin-Opener-Policy": Fixed("same-origin"),
		"Cache-Control":              Fixed("no-store"),
		"Content-Security-Policy": Fixed("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' https: data:; " +
			"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
	}
	hstsValue = Fixed("max-age=63072000; includeSubDomains")
)

// LimitBody caps request bodies; DecodeJSON turns the overflow into 413 request_too_large.
// The SAML endpoints get their own, larger limit (signed XML, base64-encoded).
func LimitBody(limit int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Body == http.NoBody {
				// net/http's request without a body (no Content-Length, not chunked: every
				// GET of the hot paths): nothing to read, nothing to limit.
				next.ServeHTTP(w, r)
				return
			}
			limit := limit
			if isSAMLPost(r) || isSSOConfig(r) {
				limit = sso.MaxACSBody
			}
			if strings.HasPrefix(r.URL.Path, "/scim/v2/") {
				limit = MaxSCIMBodyBytes // a group push of thousands of members
			}
			if r.ContentLength > limit {
				// Refuse before reading a byte when the client announced the size.
				r.Body = http.MaxBytesReader(w, r.Body, 0)
			} else {
				r.Body = http.MaxBytesReader(w, r.Body, limit)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// CrossOrigin rejects cross-site unsafe requests from browsers (Go's CrossOriginProtection:
// Sec-Fetch-Site, then Origin against Host). Non-browser clients send neither header and
// pass; their protection is the bearer token.
func CrossOrigin(rs *Responder) func(http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	// The IdP delivers SAML responses and logout messages as cross-site POSTs; their
	// protection is the signature and the single-use request id, not the origin.
	cop.AddInsecureBypassPattern("POST /sso/saml/{connection}/acs")
	cop.AddInsecureBypassPattern("POST /sso/saml/{connection}/slo")
	// OAuth endpoints that apps (browser apps included) call cross-origin; they are
	// protected by client authentication, PKCE and bearer tokens, never by a cookie.
	cop.AddInsecureBypassPattern("POST /oauth2/token")
	cop.AddInsecureBypassPattern("POST /oauth2/userinfo")
	cop.AddInsecureBypassPattern("POST /oauth2/introspect")
	cop.AddInsecureBypassPattern("POST /oauth2/revoke")
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs.Error(w, r, apperr.New(apperr.Forbidden, "cross_origin_request", "Cross-origin requests are not allowed."))
	}))
	return cop.Handler
}

// isSAMLPost reports a POST to /sso/saml/{connection}/acs or /slo.
func isSAMLPost(r *http.Request) bool {
	p := r.URL.Path
	return r.Method == http.MethodPost && strings.HasPrefix(p, "/sso/saml/") &&
		(strings.HasSuffix(p, "/acs") || strings.HasSuffix(p, "/slo")) && strings.Count(p, "/") == 4
}

// isSSOConfig reports the SSO configuration writes, which may carry IdP metadata
// documents (the largest real ones are ~150 KB).
func isSSOConfig(r *http.Request) bool {
	if r.Method != http.MethodPost && r.Method != http.MethodPatch {
		return false
	}
	p := r.URL.Path
	return p == "/admin/sso" || p == "/api/v1/admin/sso/connections" ||
		(strings.HasPrefix(p, "/admin/sso/") && strings.Count(p, "/") == 3) ||
		(strings.HasPrefix(p, "/api/v1/admin/sso/connections/") && strings.Count(p, "/") == 6)
}
