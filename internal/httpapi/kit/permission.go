package kit

import (
	"net/http"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/session"
)

var ErrForbidden = apperr.New(apperr.Forbidden, "forbidden", "You do not have permission to do this.")

// RequirePermission gates admin routes: 401 without a session, 403 without the permission
// in this tenant. (A session of another tenant never authenticates on this host.)
func RequirePermission(rs *Responder, az *authz.Service, perm authz.Permission) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := PrincipalFrom(r.Context())
			if !ok {
				rs.Error(w, r, session.ErrUnauthenticated)
				return
			}
			allowed, err := az.Can(r.Context(), p.TenantID, p.UserID, perm)
			if err != nil {
				rs.Error(w, r, err)
				return
			}
			if !allowed {
				rs.Error(w, r, ErrForbidden)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func Who(r *http.Request) audit.Who {
	p, _ := PrincipalFrom(r.Context())
	return audit.By(r.Context(), p.UserID, p.Email)
}
