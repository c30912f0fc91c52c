// Package oidchttp is the HTTP side of Gatehouse as each tenant's OpenID Provider: the
// protocol endpoints (run by zitadel/oidc over internal/oidcop's storage), the sign-in
// bridge and consent page between /oauth2/authorize and the tenant's own sign-in, and the
// admin API for apps.
package oidchttp

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
	"github.com/gatehouse-id/gatehouse/internal/oidcop"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// Protocol serves the OpenID Provider's endpoints for the request's tenant.
func Protocol(p *oidcop.Protocol) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		p.ServeHTTP(w, r.WithContext(oidcop.WithTenant(r.Context(), t, kit.Who(r))))
	}
}

// Discovery serves /.well-known/openid-configuration.
func Discovery(p *oidcop.Protocol) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		p.Discovery(w, r.WithContext(oidcop.WithTenant(r.Context(), t, kit.Who(r))))
	}
}

func appAction(rs *kit.Responder, status int, f func(r *http.Request, t tenant.Tenant, id uuid.UUID) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := uuid.Parse(chi.URLParam(r, "id"))
		if err != nil {
			rs.Error(w, r, oidcop.ErrAppNotFound)
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

func HandleListApps(rs *kit.Responder, svc *oidcop.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		list, err := svc.ListApps(r.Context(), t)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, map[string]any{"apps": list})
	}
}

func HandleCreateApp(rs *kit.Responder, svc *oidcop.Service) http.HandlerFunc {
	return kit.JSONHandler(rs, http.StatusCreated, func(r *http.Request, t tenant.Tenant, in oidcop.AppInput) (oidcop.Created, error) {
		return svc.CreateApp(r.Context(), t, in, kit.Who(r))
	})
}

func HandleGetApp(rs *kit.Responder, svc *oidcop.Service) http.HandlerFunc {
	return appAction(rs, http.StatusOK, func(r *http.Request, t tenant.Tenant, id uuid.UUID) (any, error) {
		a, err := svc.GetApp(r.Context(), t, id)
		return map[string]any{"app": a}, err
	})
}

func HandlePatchApp(rs *kit.Responder, svc *oidcop.Service) http.HandlerFunc {
	return appAction(rs, http.StatusOK, func(r *http.Request, t tenant.Tenant, id uuid.UUID) (any, error) {
		var in oidcop.AppInput
		if err := kit.DecodeJSON(r, &in); err != nil {
			return nil, err
		}
		a, err := svc.UpdateApp(r.Context(), t, id, in, kit.Who(r))
		return map[string]any{"app": a}, err
	})
}

func HandleDeleteApp(rs *kit.Responder, svc *oidcop.Service) http.HandlerFunc {
	return appAction(rs, http.StatusNoContent, func(r *http.Request, t tenant.Tenant, id uuid.UUID) (any, error) {
		return nil, svc.DeleteApp(r.Context(), t, id, kit.Who(r))
	})
}

func HandleRotateAppSecret(rs *kit.Responder, svc *oidcop.Service) http.HandlerFunc {
	return appAction(rs, http.StatusOK, func(r *http.Request, t tenant.Tenant, id uuid.UUID) (any, error) {
		return svc.RotateSecret(r.Context(), t, id, kit.Who(r))
	})
}
