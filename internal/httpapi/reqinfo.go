package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"net/netip"
	"strings"

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
}

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
	rc, _ := ctx.Value(ctxRequest).(*reqCtx)
	return rc
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

// setTenant records the resolved tenant for the rest of the request.
func setTenant(ctx context.Context, t tenant.Tenant) {
	if rc := requestState(ctx); rc != nil {
		rc.tenant, rc.hasTenant = t, true
	}
}

// requestInfo computes RequestInfo. Forwarded headers count only when the direct peer is a
// trusted proxy; X-Forwarded-For is walked from the right, skipping trusted proxies, so a
// client cannot choose its own address by sending the header itself.
func requestInfo(trusted []netip.Prefix) func(http.Handler) http.Handler {
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
			ri := RequestInfo{Host: r.Host, TLS: r.TLS != nil}
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
			w.Header().Set("X-Request-Id", ri.ID)
			ctx := context.WithValue(r.Context(), ctxRequest, &reqCtx{info: ri})
			ctx = audit.WithRequest(ctx, audit.Request{IP: ri.ClientIP, UserAgent: r.UserAgent(), RequestID: ri.ID})
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
