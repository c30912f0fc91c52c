package kit

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// RequestInfo is what the outer middleware learned about a request.
type RequestInfo struct {
	ID       string     // request id: random, or X-Request-Id from a trusted proxy
	ClientIP netip.Addr // after trusted-proxy X-Forwarded-For handling
	Host     string     // effective host (X-Forwarded-Host only from trusted proxies)
	TLS      bool       // effective scheme is https
	// UserAgent is the User-Agent header made safe to store: valid UTF-8, no control
	// characters, at most maxUserAgent bytes.
	UserAgent string
}

// maxUserAgent bounds what is stored of a User-Agent (real ones are under 300 bytes).
const maxUserAgent = 512

// cleanHeaderText makes a client-supplied header value safe to store and show: invalid
// UTF-8 becomes U+FFFD (PostgreSQL refuses it in text columns: the request used to fail
// with a 500, losing its audit entry), control characters become spaces, and the result
// is cut at max bytes on a character boundary.
func cleanHeaderText(v string, max int) string {
	v = strings.ToValidUTF8(v, "\uFFFD")
	v = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return ' '
		}
		return r
	}, v)
	if len(v) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(v[cut]) {
			cut--
		}
		v = v[:cut]
	}
	return strings.TrimSpace(v)
}

var errInvalidQuery = apperr.New(apperr.Invalid, "invalid_request", "The query string is not valid: it must be percent-encoded UTF-8.")

// ValidQuery refuses a query string that does not decode, or decodes to invalid UTF-8 or
// NUL, on every route — like bodies, before any handler reads a parameter.
func ValidQuery(rs *Responder) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.RawQuery != "" {
				vals, err := url.ParseQuery(r.URL.RawQuery)
				if err != nil {
					rs.Error(w, r, errInvalidQuery)
					return
				}
				for k, vs := range vals {
					if !textOK(k) {
						rs.Error(w, r, errInvalidQuery)
						return
					}
					for _, v := range vs {
						if !textOK(v) {
							rs.Error(w, r, errInvalidQuery.WithDetails(map[string]any{"field": k}))
							return
						}
					}
				}
			}
			next.ServeHTTP(w, r)
		})
	}
}

func textOK(s string) bool { return utf8.ValidString(s) && !strings.ContainsRune(s, 0) }

type ctxKey int

const ctxRequest ctxKey = 0

// reqCtx is the one per-request value the middleware stores in the context; later stages
// fill in the tenant and the principal instead of copying the request again.
type reqCtx struct {
	info         RequestInfo
	tenant       tenant.Tenant
	hasTenant    bool
	principal    session.Principal
	hasPrincipal bool
}

func requestState(ctx context.Context) *reqCtx {
	if e, ok := ctx.(*entryCtx); ok {
		return &e.rc // the common case: the request's own context, no lookup through the chain
	}
	rc, _ := ctx.Value(ctxRequest).(*reqCtx)
	return rc
}

// entryCtx is the context WithRequestInfo gives a request: in one allocation, the
// request's state (reqCtx), where it came from for audit events (audit.RequestKey), and
// chi's routing context (which the Observer reads the route pattern from afterwards and
// chi's router fills in), where it used to be a context node and an allocation each.
type entryCtx struct {
	context.Context
	rc    reqCtx
	audit audit.Request
	route chi.Context
}

func (c *entryCtx) Value(key any) any {
	switch key {
	case ctxRequest:
		return &c.rc
	case chi.RouteCtxKey:
		return &c.route
	case audit.RequestKey():
		return &c.audit
	}
	return c.Context.Value(key)
}

// Info returns the request's RequestInfo (zero value outside the middleware).
func Info(ctx context.Context) RequestInfo {
	if rc := requestState(ctx); rc != nil {
		return rc.info
	}
	return RequestInfo{}
}

// TenantFrom returns the tenant resolved for the request's host.
func TenantFrom(ctx context.Context) (tenant.Tenant, bool) {
	if rc := requestState(ctx); rc != nil && rc.hasTenant {
		return rc.tenant, true
	}
	return tenant.Tenant{}, false
}

// SetTenant records the resolved tenant for the rest of the request.
func SetTenant(ctx context.Context, t tenant.Tenant) {
	if rc := requestState(ctx); rc != nil {
		rc.tenant, rc.hasTenant = t, true
	}
}

// WithRequestInfo computes RequestInfo. Forwarded headers count only when the direct peer is a
// trusted proxy; X-Forwarded-For is walked from the right, skipping trusted proxies, so a
// client cannot choose its own address by sending the header itself.
func WithRequestInfo(trusted []netip.Prefix) func(http.Handler) http.Handler {
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ri := RequestInfo{Host: r.Host, TLS: r.TLS != nil, UserAgent: cleanHeaderText(r.UserAgent(), maxUserAgent)}
			peer := remoteAddr(r)
			ri.ClientIP = peer
			if peer.IsValid() && isTrusted(peer) {
				if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 {
					hops := strings.Split(strings.Join(xff, ","), ",")
					for i := len(hops) - 1; i >= 0; i-- {
						a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
						if err != nil {
							break
						}
						ri.ClientIP = a.Unmap()
						if !isTrusted(ri.ClientIP) {
							break
						}
					}
				}
				if h := lastValue(r.Header.Get("X-Forwarded-Host")); h != "" {
					ri.Host = h
				}
				if p := lastValue(r.Header.Get("X-Forwarded-Proto")); p != "" {
					ri.TLS = strings.EqualFold(p, "https")
				}
				if id := r.Header.Get("X-Request-Id"); validRequestID(id) {
					ri.ID = id
				}
			}
			if ri.ID == "" {
				ri.ID = newRequestID()
			}
			w.Header()["X-Request-Id"] = []string{ri.ID}
			ctx := &entryCtx{Context: r.Context(), rc: reqCtx{info: ri},
				audit: audit.Request{IP: ri.ClientIP, UserAgent: ri.UserAgent, RequestID: ri.ID}}
			next.ServeHTTP(w, r.WithContext(ctx))
		})
	}
}

func remoteAddr(r *http.Request) netip.Addr {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// lastValue takes the value the nearest proxy appended.
func lastValue(v string) string {
	if i := strings.LastIndexByte(v, ','); i >= 0 {
		v = v[i+1:]
	}
	return strings.TrimSpace(v)
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// TenantID is the id of the request's tenant (uuid.Nil off tenant hosts).
func TenantID(r *http.Request) uuid.UUID {
	t, _ := TenantFrom(r.Context())
	return t.ID
}
