package stepuphttp

import (
	"encoding/base64"
	"net/http"
	"strings"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
	"github.com/gatehouse-id/gatehouse/internal/mfa"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/stepup"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/web"
)

// lowCodes is the count of unused recovery codes at which the page suggests new ones.
const lowCodes = 3

// PageMFA is the two-factor page: whether TOTP is on, how many recovery codes remain, and
// the actions (set up, new recovery codes, turn off).
func PageMFA(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := kit.SignedIn(w, r, "/account/mfa")
		if !ok {
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		st, err := accounts.MFAStatus(r.Context(), t, p)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.Page(w, r, http.StatusOK, "mfa", "Two-factor authentication", MFAView{S: st, Low: st.Enabled && st.RecoveryCodesRemaining <= lowCodes})
	}
}

// PageRegenerateRecoveryCodes replaces the recovery codes (step-up
// recovery_codes.regenerate, back to /account/mfa) and shows the new ones once.
func PageRegenerateRecoveryCodes(rs *kit.Responder, accounts *account.Service, steps *stepup.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := kit.SignedIn(w, r, "/account/mfa")
		if !ok {
			return
		}
		if !kit.PageStepUp(rs, steps, w, r, p, tenant.ActionRecoveryCodesRegenerate, "/account/mfa") {
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		codes, err := accounts.RegenerateRecoveryCodes(r.Context(), t, p)
		if err != nil {
			if msg, status, ok := rs.FormError(w, r, err); ok {
				rs.Page(w, r, status, "message", "Recovery codes",
					kit.MessageView{Heading: "No new recovery codes", Text: msg, LinkText: "Back to two-factor authentication", Link: "/account/mfa"})
			}
			return
		}
		renderCodes(w, r, rs, t, p, "New recovery codes",
			"Your old recovery codes no longer work. Each of these signs you in once if you lose your phone. They are shown only now: copy, download or print them and keep them somewhere safe.",
			codes)
	}
}

// retryConfirm answers a refused set-up code: the set-up page again with the same key and
// the message when the user may see the key (the mfa.enroll step-up is met), else a page
// that says to start again.
func retryConfirm(rs *kit.Responder, accounts *account.Service, steps *stepup.Service, w http.ResponseWriter, r *http.Request, p session.Principal, err error) {
	msg, status, ok := rs.FormError(w, r, err)
	if !ok {
		return
	}
	t, _ := kit.TenantFrom(r.Context())
	if mfa.WrongCode(err) || apperr.Is(err, "rate_limited") {
		serr := steps.Require(r.Context(), t, p, tenant.ActionMFAEnroll, "")
		if _, required := stepup.AsRequired(serr); serr != nil && !required {
			rs.Error(w, r, serr)
			return
		}
		if serr == nil {
			e, perr := accounts.PendingTOTP(r.Context(), t, p)
			if perr == nil {
				rs.Page(w, r, status, "mfa_enroll", "Set up two-factor authentication", EnrollView{E: e,
					QR: web.DataURL("image/png", e.QRPNGBase64), Error: msg})
				return
			}
			if !apperr.Is(perr, "mfa_not_enrolled") && !apperr.Is(perr, "mfa_already_enabled") {
				rs.Error(w, r, perr)
				return
			}
		}
	}
	rs.Page(w, r, status, "message", "Two-factor authentication",
		kit.MessageView{Heading: "That code did not work", Text: msg + " Start the set-up again.", LinkText: "Back to your account", Link: "/account#mfa"})
}

// renderCodes shows new recovery codes once, with a copy button and a download of the same
// text (a data: URL: the codes exist only in this response).
func renderCodes(w http.ResponseWriter, r *http.Request, rs *kit.Responder, t tenant.Tenant, p session.Principal, heading, intro string, codes []string) {
	list := strings.Join(codes, "\n")
	file := "Recovery codes for " + p.Email + " at " + t.DisplayName() + "\n" +
		"Each code signs you in once instead of a code from your authenticator app.\n" +
		"New codes replace all of these. Keep this file private.\n\n" + list + "\n"
	rs.Page(w, r, http.StatusOK, "mfa_codes", heading, CodesView{Heading: heading, Intro: intro, Codes: codes, Text: list,
		Download: web.DataURL("text/plain;charset=utf-8", base64.StdEncoding.EncodeToString([]byte(file))),
		FileName: "recovery-codes-" + t.Slug + ".txt"})
}
