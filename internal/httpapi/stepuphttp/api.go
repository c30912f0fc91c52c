package stepuphttp

import (
	"net/http"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
	"github.com/gatehouse-id/gatehouse/internal/stepup"
)

func HandleReauth(rs *kit.Responder, steps *stepup.Service) http.HandlerFunc {
	type request struct {
		Password string `json:"password"`
		Code     string `json:"code"`
	}
	return func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := kit.DecodeJSON(r, &req); err != nil {
			rs.Error(w, r, err)
			return
		}
		if (req.Password == "") == (req.Code == "") {
			rs.Error(w, r, apperr.New(apperr.Invalid, "invalid_request", "Send either a password or a code."))
			return
		}
		p, _ := kit.PrincipalFrom(r.Context())
		t, _ := kit.TenantFrom(r.Context())
		iss, err := steps.Reauth(r.Context(), t, p, stepup.ReauthInput{Password: req.Password, Code: req.Code}, kit.Meta(r))
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		kit.SetSessionCookie(w, iss.Token, iss.Session.ExpiresAt)
		rs.JSON(w, http.StatusOK, map[string]any{"auth_time": iss.Session.AuthTime, "aal": iss.Session.AAL,
			"session": kit.SessionBody{ID: iss.Session.ID.String(), Token: iss.Token, ExpiresAt: iss.Session.ExpiresAt}})
	}
}

func HandleEnrollTOTP(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := kit.PrincipalFrom(r.Context())
		t, _ := kit.TenantFrom(r.Context())
		e, err := accounts.EnrollTOTP(r.Context(), t, p)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusCreated, e)
	}
}

func HandleConfirmTOTP(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	type request struct {
		Code string `json:"code"`
	}
	return func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := kit.DecodeJSON(r, &req); err != nil {
			rs.Error(w, r, err)
			return
		}
		p, _ := kit.PrincipalFrom(r.Context())
		t, _ := kit.TenantFrom(r.Context())
		codes, err := accounts.ConfirmTOTP(r.Context(), t, p, req.Code)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, confirmResponse{Status: "mfa_enabled", RecoveryCodes: codes})
	}
}

// confirmResponse answers a confirmed TOTP set-up with its recovery codes (shown only now).
type confirmResponse struct {
	Status        string   `json:"status"`
	RecoveryCodes []string `json:"recovery_codes"`
}

// HandleMFAStatus answers the signed-in user's second factor and unused recovery codes.
func HandleMFAStatus(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := kit.PrincipalFrom(r.Context())
		t, _ := kit.TenantFrom(r.Context())
		st, err := accounts.MFAStatus(r.Context(), t, p)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, st)
	}
}

func HandleDisableTOTP(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := kit.PrincipalFrom(r.Context())
		t, _ := kit.TenantFrom(r.Context())
		if err := accounts.DisableTOTP(r.Context(), t, p); err != nil {
			rs.Error(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func HandleRegenerateRecoveryCodes(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := kit.PrincipalFrom(r.Context())
		t, _ := kit.TenantFrom(r.Context())
		codes, err := accounts.RegenerateRecoveryCodes(r.Context(), t, p)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, map[string]any{"recovery_codes": codes})
	}
}
