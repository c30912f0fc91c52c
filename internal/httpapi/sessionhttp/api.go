package sessionhttp

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
	"github.com/gatehouse-id/gatehouse/internal/session"
)

func HandleListSessions(rs *kit.Responder, sessions *session.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := kit.PrincipalFrom(r.Context())
		list, err := sessions.List(r.Context(), p)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, map[string]any{"sessions": list})
	}
}

func HandleRevokeSession(rs *kit.Responder, sessions *session.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := kit.PrincipalFrom(r.Context())
		id, err := uuid.Parse(chi.URLParam(r, "id"))
		if err != nil {
			rs.Error(w, r, session.ErrNotFound)
			return
		}
		if err := sessions.Revoke(r.Context(), p, id, "revoked_by_user"); err != nil {
			rs.Error(w, r, err)
			return
		}
		if id == p.Session.ID {
			kit.ClearSessionCookie(w)
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func HandleRevokeOthers(rs *kit.Responder, sessions *session.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := kit.PrincipalFrom(r.Context())
		n, err := sessions.RevokeOthers(r.Context(), p)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, map[string]int{"revoked": n})
	}
}
