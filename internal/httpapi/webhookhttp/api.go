// Package webhookhttp serves the webhook endpoints' admin and operator APIs, the events
// pull API and the portal's Webhooks page (docs/events.md).
package webhookhttp

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
	"github.com/gatehouse-id/gatehouse/internal/webhooks"
)

// Scope picks whose endpoints a route serves: the request's tenant, or the operator.
type Scope func(r *http.Request) webhooks.Owner

// TenantScope is the tenant of the request's host.
func TenantScope(r *http.Request) webhooks.Owner {
	t, _ := kit.TenantFrom(r.Context())
	return webhooks.Owner{TenantID: t.ID}
}

// PlatformScope is the operator.
func PlatformScope(*http.Request) webhooks.Owner { return webhooks.Platform }

func action(rs *kit.Responder, status int, f func(r *http.Request, id uuid.UUID) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := uuid.Parse(chi.URLParam(r, "id"))
		if err != nil {
			rs.Error(w, r, webhooks.ErrNotFound)
			return
		}
		v, err := f(r, id)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		if v == nil {
			w.WriteHeader(status)
			return
		}
		rs.JSON(w, status, v)
	}
}

// HandleList: GET …/webhooks.
func HandleList(rs *kit.Responder, svc *webhooks.Service, scope Scope) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		list, err := svc.List(r.Context(), scope(r))
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, map[string]any{"webhooks": list})
	}
}

// HandleCreate: POST …/webhooks → {webhook, secret} (the secret this once).
func HandleCreate(rs *kit.Responder, svc *webhooks.Service, scope Scope) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var in webhooks.Input
		if err := kit.DecodeJSON(r, &in); err != nil {
			rs.Error(w, r, err)
			return
		}
		out, err := svc.Create(r.Context(), scope(r), in, kit.Who(r))
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusCreated, out)
	}
}

// HandleGet: GET …/webhooks/{id}.
func HandleGet(rs *kit.Responder, svc *webhooks.Service, scope Scope) http.HandlerFunc {
	return action(rs, http.StatusOK, func(r *http.Request, id uuid.UUID) (any, error) {
		e, err := svc.Get(r.Context(), scope(r), id)
		return map[string]any{"webhook": e}, err
	})
}

// HandlePatch: PATCH …/webhooks/{id}.
func HandlePatch(rs *kit.Responder, svc *webhooks.Service, scope Scope) http.HandlerFunc {
	return action(rs, http.StatusOK, func(r *http.Request, id uuid.UUID) (any, error) {
		var in webhooks.Input
		if err := kit.DecodeJSON(r, &in); err != nil {
			return nil, err
		}
		e, err := svc.Update(r.Context(), scope(r), id, in, kit.Who(r))
		return map[string]any{"webhook": e}, err
	})
}

// HandleDelete: DELETE …/webhooks/{id}.
func HandleDelete(rs *kit.Responder, svc *webhooks.Service, scope Scope) http.HandlerFunc {
	return action(rs, http.StatusNoContent, func(r *http.Request, id uuid.UUID) (any, error) {
		return nil, svc.Delete(r.Context(), scope(r), id, kit.Who(r))
	})
}

// HandleRotate: POST …/webhooks/{id}/secret → {webhook, secret}; the previous secret
// signs too for 24 hours.
func HandleRotate(rs *kit.Responder, svc *webhooks.Service, scope Scope) http.HandlerFunc {
	return action(rs, http.StatusOK, func(r *http.Request, id uuid.UUID) (any, error) {
		return svc.Rotate(r.Context(), scope(r), id, kit.Who(r))
	})
}

// HandleDeliveries: GET …/webhooks/{id}/deliveries?limit=.
func HandleDeliveries(rs *kit.Responder, svc *webhooks.Service, scope Scope) http.HandlerFunc {
	return action(rs, http.StatusOK, func(r *http.Request, id uuid.UUID) (any, error) {
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		list, err := svc.Deliveries(r.Context(), scope(r), id, limit)
		return map[string]any{"deliveries": list}, err
	})
}

// HandleRetry: POST …/webhooks/{id}/deliveries/{delivery}/retry.
func HandleRetry(rs *kit.Responder, svc *webhooks.Service, scope Scope) http.HandlerFunc {
	return action(rs, http.StatusAccepted, func(r *http.Request, id uuid.UUID) (any, error) {
		d, err := uuid.Parse(chi.URLParam(r, "delivery"))
		if err != nil {
			return nil, webhooks.ErrNotRetryable
		}
		return map[string]any{"status": "pending"}, svc.Retry(r.Context(), scope(r), id, d, kit.Who(r))
	})
}

// HandleRetryFailed: POST …/webhooks/{id}/deliveries/retry → {retried: n}.
func HandleRetryFailed(rs *kit.Responder, svc *webhooks.Service, scope Scope) http.HandlerFunc {
	return action(rs, http.StatusAccepted, func(r *http.Request, id uuid.UUID) (any, error) {
		n, err := svc.RetryFailed(r.Context(), scope(r), id, kit.Who(r))
		return map[string]any{"retried": n}, err
	})
}

// HandleTest: POST …/webhooks/{id}/test → {delivery_id}.
func HandleTest(rs *kit.Responder, svc *webhooks.Service, scope Scope) http.HandlerFunc {
	return action(rs, http.StatusAccepted, func(r *http.Request, id uuid.UUID) (any, error) {
		d, err := svc.Test(r.Context(), scope(r), id, kit.Who(r))
		return map[string]any{"delivery_id": d}, err
	})
}

// HandlePlatformTest: POST /api/v1/platform/webhooks/{id}/test {tenant: slug} →
// {delivery_id}: the operator's test event is recorded in that tenant and labelled with it.
func HandlePlatformTest(rs *kit.Responder, svc *webhooks.Service) http.HandlerFunc {
	return action(rs, http.StatusAccepted, func(r *http.Request, id uuid.UUID) (any, error) {
		var in struct {
			Tenant string `json:"tenant"`
		}
		if err := kit.DecodeJSON(r, &in); err != nil {
			return nil, err
		}
		d, err := svc.PlatformTest(r.Context(), id, in.Tenant)
		return map[string]any{"delivery_id": d}, err
	})
}

// HandleEvents: GET /api/v1/admin/events?after=&types=&limit= → {events, next}, oldest
// first after the cursor.
func HandleEvents(rs *kit.Responder, svc *webhooks.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		q := r.URL.Query()
		var types []string
		for _, s := range strings.Split(q.Get("types"), ",") {
			if s = strings.TrimSpace(s); s != "" {
				types = append(types, s)
			}
		}
		limit, _ := strconv.Atoi(q.Get("limit"))
		page, err := svc.Events(r.Context(), t, q.Get("after"), types, limit)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, page)
	}
}
