// Package passkeyhttp serves the passkey API and the account page's passkey actions
// (internal/passkey). Passwordless sign-in lives in accounthttp, step-up in stepuphttp.
package passkeyhttp

import (
	"encoding/json"
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
	"github.com/gatehouse-id/gatehouse/internal/passkey"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// ReadCredential reads the body of a finish call: the credential as
// PublicKeyCredential.toJSON() gives it (one JSON object, checked like every body).
func ReadCredential(r *http.Request) ([]byte, error) {
	var raw json.RawMessage
	if err := kit.DecodeJSON(r, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// HandleRegisterBegin answers the creation options for a new passkey (step-up
// mfa.enroll in front).
func HandleRegisterBegin(rs *kit.Responder, passkeys *passkey.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := kit.PrincipalFrom(r.Context())
		t, _ := kit.TenantFrom(r.Context())
		opts, err := passkeys.BeginRegistration(r.Context(), t, p)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, opts)
	}
}

// HandleRegisterFinish stores the new passkey (?name= names it) and answers 201 {passkey}.
func HandleRegisterFinish(rs *kit.Responder, passkeys *passkey.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := ReadCredential(r)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		p, _ := kit.PrincipalFrom(r.Context())
		t, _ := kit.TenantFrom(r.Context())
		pk, err := passkeys.FinishRegistration(r.Context(), t, p, body, r.URL.Query().Get("name"))
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusCreated, map[string]any{"passkey": pk})
	}
}

// HandleList answers the caller's passkeys.
func HandleList(rs *kit.Responder, passkeys *passkey.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := kit.PrincipalFrom(r.Context())
		t, _ := kit.TenantFrom(r.Context())
		list, err := passkeys.List(r.Context(), t, p)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, map[string]any{"passkeys": list, "next_cursor": ""})
	}
}

type renameRequest struct {
	Name string `json:"name"`
}

// HandleRename renames one of the caller's passkeys.
func HandleRename(rs *kit.Responder, passkeys *passkey.Service) http.HandlerFunc {
	return kit.JSONHandler(rs, http.StatusOK, func(r *http.Request, t tenant.Tenant, in renameRequest) (map[string]any, error) {
		id, err := uuid.Parse(chi.URLParam(r, "id"))
		if err != nil {
			return nil, passkey.ErrNotFound
		}
		p, _ := kit.PrincipalFrom(r.Context())
		pk, err := passkeys.Rename(r.Context(), t, p, id, in.Name)
		return map[string]any{"passkey": pk}, err
	})
}

// HandleDelete removes one of the caller's passkeys (step-up passkey.remove in front).
func HandleDelete(rs *kit.Responder, passkeys *passkey.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := uuid.Parse(chi.URLParam(r, "id"))
		if err != nil {
			rs.Error(w, r, passkey.ErrNotFound)
			return
		}
		p, _ := kit.PrincipalFrom(r.Context())
		t, _ := kit.TenantFrom(r.Context())
		if err := passkeys.Remove(r.Context(), t, p, id); err != nil {
			rs.Error(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}
