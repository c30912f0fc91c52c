package kit

import (
	"net/http"

	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// JSONHandler is the shape of most JSON endpoints: decode the body into In, call one
// domain method with the request's tenant, encode its Out with status. Any error is
// answered by the responder's one table.
func JSONHandler[In, Out any](rs *Responder, status int, call func(r *http.Request, t tenant.Tenant, in In) (Out, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var in In
		if err := DecodeJSON(r, &in); err != nil {
			rs.Error(w, r, err)
			return
		}
		t, _ := TenantFrom(r.Context())
		out, err := call(r, t, in)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, status, out)
	}
}

// FormHandler is the shape of a page's form post: call one domain method with the
// request's tenant; on success redirect to the path it returns (303), on a refusal let
// fail render the form again with the message and status.
func FormHandler(rs *Responder, call func(r *http.Request, t tenant.Tenant) (redirectTo string, err error),
	fail func(w http.ResponseWriter, r *http.Request, status int, msg string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := TenantFrom(r.Context())
		to, err := call(r, t)
		if err != nil {
			if msg, status, ok := rs.FormError(w, r, err); ok {
				fail(w, r, status, msg)
			}
			return
		}
		http.Redirect(w, r, SafeReturn(to), http.StatusSeeOther)
	}
}
