package httpapi

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/sso"
)

// Tenant admin API for SSO connections (permission sso.configure; changes need a
// recent step-up for sso.configure).

func connParam(rs *responder, w http.ResponseWriter, r *http.Request) (uuid.UUID, bool) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		rs.Error(w, r, sso.ErrNotFound)
		return uuid.Nil, false
	}
	return id, true
}

func handleAdminListSSO(rs *responder, svc *sso.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := TenantFrom(r.Context())
		list, err := svc.List(r.Context(), t)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, map[string]any{"connections": list})
	}
}

func handleAdminCreateSSO(rs *responder, svc *sso.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var in sso.Input
		if err := decodeJSON(r, &in); err != nil {
			rs.Error(w, r, err)
			return
		}
		t, _ := TenantFrom(r.Context())
		c, err := svc.Create(r.Context(), t, in, who(r))
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusCreated, map[string]any{"connection": c})
	}
}

func handleAdminGetSSO(rs *responder, svc *sso.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := connParam(rs, w, r)
		if !ok {
			return
		}
		t, _ := TenantFrom(r.Context())
		c, err := svc.Get(r.Context(), t, id)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, map[string]any{"connection": c})
	}
}

func handleAdminPatchSSO(rs *responder, svc *sso.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := connParam(rs, w, r)
		if !ok {
			return
		}
		var in sso.Input
		if err := decodeJSON(r, &in); err != nil {
			rs.Error(w, r, err)
			return
		}
		t, _ := TenantFrom(r.Context())
		c, err := svc.Update(r.Context(), t, id, in, who(r))
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, map[string]any{"connection": c})
	}
}

func handleAdminDeleteSSO(rs *responder, svc *sso.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := connParam(rs, w, r)
		if !ok {
			return
		}
		t, _ := TenantFrom(r.Context())
		if err := svc.Delete(r.Context(), t, id, who(r)); err != nil {
			rs.Error(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func handleAdminRotateSSOKey(rs *responder, svc *sso.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := connParam(rs, w, r)
		if !ok {
			return
		}
		t, _ := TenantFrom(r.Context())
		c, err := svc.RotateKey(r.Context(), t, id, who(r))
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, map[string]any{"connection": c})
	}
}

func handleAdminDropPrevSSOKey(rs *responder, svc *sso.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := connParam(rs, w, r)
		if !ok {
			return
		}
		t, _ := TenantFrom(r.Context())
		if err := svc.DropPreviousKey(r.Context(), t, id); err != nil {
			rs.Error(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func handleAdminSSOAttempts(rs *responder, svc *sso.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, ok := connParam(rs, w, r)
		if !ok {
			return
		}
		t, _ := TenantFrom(r.Context())
		if _, err := svc.Get(r.Context(), t, id); err != nil {
			rs.Error(w, r, err)
			return
		}
		list, err := svc.Attempts(r.Context(), t, id, 50)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, map[string]any{"attempts": list})
	}
}

func handleAdminListDomains(rs *responder, svc *sso.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := TenantFrom(r.Context())
		list, err := svc.Domains(r.Context(), t)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, map[string]any{"domains": list})
	}
}

func handleAdminVerifyDomain(rs *responder, svc *sso.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := TenantFrom(r.Context())
		d, err := svc.VerifyDomain(r.Context(), t, chi.URLParam(r, "domain"), who(r))
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, map[string]any{"domain": d})
	}
}
