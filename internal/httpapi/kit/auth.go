package kit

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/session"
)

// PrincipalFrom returns the signed-in principal of the request, if any.
func PrincipalFrom(ctx context.Context) (session.Principal, bool) {
	if rc := requestState(ctx); rc != nil && rc.hasPrincipal {
		return rc.principal, true
	}
	return session.Principal{}, false
}

func setPrincipal(ctx context.Context, p session.Principal) {
	if rc := requestState(ctx); rc != nil {
		rc.principal, rc.hasPrincipal = p, true
	}
}

// Authenticate resolves the session cookie or bearer token of a tenant request. A bearer
// header that does not Authenticate is an error (never a silent fallback to the cookie);
// a stale cookie is simply ignored (and cleared), so public pages still work.
func Authenticate(rs *Responder, sessions *session.Service) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t, _ := TenantFrom(r.Context())
			// The OAuth endpoints read their own Authorization header (client
			// credentials, Gatehouse-issued access tokens), never a session token.
			if h := r.Header.Get("Authorization"); h != "" && !isOAuthEndpoint(r.URL.Path) {
				tok, ok := strings.CutPrefix(h, "Bearer ")
				if !ok {
					rs.Error(w, r, session.ErrUnauthenticated)
					return
				}
				p, err := sessions.Authenticate(r.Context(), t.ID, strings.TrimSpace(tok))
				if err != nil {
					w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
					rs.Error(w, r, err)
					return
				}
				setPrincipal(r.Context(), p)
				next.ServeHTTP(w, r)
				return
			}
			if c, err := r.Cookie(session.CookieName); err == nil && c.Value != "" {
				p, err := sessions.Authenticate(r.Context(), t.ID, c.Value)
				if err == nil {
					setPrincipal(r.Context(), p)
					next.ServeHTTP(w, r)
					return
				}
				if !isUnauthenticated(err) {
					rs.Error(w, r, err)
					return
				}
				ClearSessionCookie(w)
			}
			next.ServeHTTP(w, r)
		})
	}
}

// RequireSession answers 401 unauthenticated without a valid session.
func RequireSession(rs *Responder) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, ok := PrincipalFrom(r.Context()); !ok {
				rs.Error(w, r, session.ErrUnauthenticated)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func isUnauthenticated(err error) bool {
	return err == session.ErrUnauthenticated
}

// SetSessionCookie sets the host-only session cookie: __Host- prefix, Secure, HttpOnly,
// SameSite=Lax, Path=/, living as long as the session may.
func SetSessionCookie(w http.ResponseWriter, tok string, expires time.Time) {
	http.SetCookie(w, &http.Cookie{Name: session.CookieName, Value: tok, Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Expires: expires, MaxAge: int(time.Until(expires).Seconds())})
}

func ClearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: session.CookieName, Value: "", Path: "/", Secure: true, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, MaxAge: -1})
}

func Meta(r *http.Request) session.Meta {
	ri := Info(r.Context())
	return session.Meta{IP: ri.ClientIP, UserAgent: ri.UserAgent}
}

// SignedIn returns the signed-in principal of a page request; without one it sends the
// browser to /login, to come back to returnTo afterwards, and reports false.
func SignedIn(w http.ResponseWriter, r *http.Request, returnTo string) (session.Principal, bool) {
	p, ok := PrincipalFrom(r.Context())
	if !ok {
		http.Redirect(w, r, "/login?return_to="+url.QueryEscape(SafeReturn(returnTo)), http.StatusSeeOther)
	}
	return p, ok
}

// isOAuthEndpoint reports the OpenID Provider's protocol endpoints (internal/oidcop).
func isOAuthEndpoint(p string) bool {
	if strings.HasPrefix(p, "/scim/v2/") {
		return true // SCIM requests carry a directory token (internal/scim), never a session
	}
	switch p {
	case "/oauth2/token", "/oauth2/userinfo", "/oauth2/introspect", "/oauth2/revoke":
		return true
	}
	return false
}
