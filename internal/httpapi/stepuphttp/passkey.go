package stepuphttp

import (
	"encoding/json"
	"net/http"

	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
	"github.com/gatehouse-id/gatehouse/internal/stepup"
)

// HandleReauthPasskeyBegin answers the request options of a step-up by passkey.
func HandleReauthPasskeyBegin(rs *kit.Responder, steps *stepup.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := kit.PrincipalFrom(r.Context())
		t, _ := kit.TenantFrom(r.Context())
		opts, err := steps.BeginPasskey(r.Context(), t, p)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, opts)
	}
}

// HandleReauthPasskeyFinish re-authenticates with the assertion (PublicKeyCredential.toJSON()).
func HandleReauthPasskeyFinish(rs *kit.Responder, steps *stepup.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		var raw json.RawMessage
		if err := kit.DecodeJSON(r, &raw); err != nil {
			rs.Error(w, r, err)
			return
		}
		p, _ := kit.PrincipalFrom(r.Context())
		t, _ := kit.TenantFrom(r.Context())
		iss, err := steps.ReauthPasskey(r.Context(), t, p, raw)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		kit.SetSessionCookie(w, iss.Token, iss.Session.ExpiresAt)
		rs.JSON(w, http.StatusOK, map[string]any{"auth_time": iss.Session.AuthTime, "aal": iss.Session.AAL, "assurance": iss.Session.Assurance,
			"session": kit.SessionBody{ID: iss.Session.ID.String(), Token: iss.Token, ExpiresAt: iss.Session.ExpiresAt}})
	}
}
