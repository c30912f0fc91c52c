package scimhttp

import (
	"net/http"
	"strconv"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
	"github.com/gatehouse-id/gatehouse/internal/scim"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

func directoryAction(rs *kit.Responder, status int, f func(r *http.Request, t tenant.Tenant, id uuid.UUID) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := uuid.Parse(chi.URLParam(r, "id"))
		if err != nil {
			rs.Error(w, r, scim.ErrDirectoryNotFound)
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		v, err := f(r, t, id)
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

// HandleListDirectories is GET /api/v1/admin/directories.
func HandleListDirectories(rs *kit.Responder, svc *scim.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		list, err := svc.ListDirectories(r.Context(), t)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, map[string]any{"directories": list, "next_cursor": ""})
	}
}

// HandleCreateDirectory is POST /api/v1/admin/directories: {directory, token} (token once).
func HandleCreateDirectory(rs *kit.Responder, svc *scim.Service) http.HandlerFunc {
	return kit.JSONHandler(rs, http.StatusCreated, func(r *http.Request, t tenant.Tenant, in scim.DirectoryInput) (scim.Created, error) {
		return svc.CreateDirectory(r.Context(), t, in, kit.Who(r))
	})
}

// HandleGetDirectory is GET /api/v1/admin/directories/{id}.
func HandleGetDirectory(rs *kit.Responder, svc *scim.Service) http.HandlerFunc {
	return directoryAction(rs, http.StatusOK, func(r *http.Request, t tenant.Tenant, id uuid.UUID) (any, error) {
		d, err := svc.GetDirectory(r.Context(), t, id)
		return map[string]any{"directory": d}, err
	})
}

// HandleDeleteDirectory is DELETE /api/v1/admin/directories/{id}.
func HandleDeleteDirectory(rs *kit.Responder, svc *scim.Service) http.HandlerFunc {
	return directoryAction(rs, http.StatusNoContent, func(r *http.Request, t tenant.Tenant, id uuid.UUID) (any, error) {
		return nil, svc.DeleteDirectory(r.Context(), t, id, kit.Who(r))
	})
}

// HandleCreateToken is POST /api/v1/admin/directories/{id}/tokens.
func HandleCreateToken(rs *kit.Responder, svc *scim.Service) http.HandlerFunc {
	return directoryAction(rs, http.StatusCreated, func(r *http.Request, t tenant.Tenant, id uuid.UUID) (any, error) {
		return svc.CreateToken(r.Context(), t, id, kit.Who(r))
	})
}

// HandleRevokeToken is DELETE /api/v1/admin/directories/{id}/tokens/{token}.
func HandleRevokeToken(rs *kit.Responder, svc *scim.Service) http.HandlerFunc {
	return directoryAction(rs, http.StatusNoContent, func(r *http.Request, t tenant.Tenant, id uuid.UUID) (any, error) {
		tid, err := uuid.Parse(chi.URLParam(r, "token"))
		if err != nil {
			return nil, scim.ErrTokenNotFound
		}
		return nil, svc.RevokeToken(r.Context(), t, id, tid, kit.Who(r))
	})
}

// HandleDirectoryLog is GET /api/v1/admin/directories/{id}/requests?limit=.
func HandleDirectoryLog(rs *kit.Responder, svc *scim.Service) http.HandlerFunc {
	return directoryAction(rs, http.StatusOK, func(r *http.Request, t tenant.Tenant, id uuid.UUID) (any, error) {
		limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
		l, err := svc.RequestLog(r.Context(), t, id, limit)
		return map[string]any{"requests": l, "next_cursor": ""}, err
	})
}
