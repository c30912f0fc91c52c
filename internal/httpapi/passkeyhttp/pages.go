package passkeyhttp

import (
	"net/http"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
	"github.com/gatehouse-id/gatehouse/internal/passkey"
	"github.com/gatehouse-id/gatehouse/internal/stepup"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// PageRename renames a passkey from the account page's form.
func PageRename(rs *kit.Responder, passkeys *passkey.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := kit.SignedIn(w, r, "/account")
		if !ok {
			return
		}
		id, err := uuid.Parse(chi.URLParam(r, "id"))
		if err != nil {
			rs.Error(w, r, passkey.ErrNotFound)
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		if _, err := passkeys.Rename(r.Context(), t, p, id, r.PostFormValue("name")); err != nil {
			rs.Error(w, r, err)
			return
		}
		http.Redirect(w, r, "/account#passkeys", http.StatusSeeOther)
	}
}

// PageRemove removes a passkey from the account page's form (step-up passkey.remove
// first: the browser is sent to confirm and comes back to the account page).
func PageRemove(rs *kit.Responder, passkeys *passkey.Service, steps *stepup.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, ok := kit.SignedIn(w, r, "/account")
		if !ok {
			return
		}
		if !kit.PageStepUp(rs, steps, w, r, p, tenant.ActionPasskeyRemove, "/account#passkeys") {
			return
		}
		id, err := uuid.Parse(chi.URLParam(r, "id"))
		if err != nil {
			rs.Error(w, r, passkey.ErrNotFound)
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		if err := passkeys.Remove(r.Context(), t, p, id); err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.Message(w, r, "Passkey removed", "That passkey no longer signs you in. We sent you an email about it.", "Back to your account", "/account#passkeys")
	}
}

// PageOffer is the one-time offer to add a passkey after sign-up or a password sign-in
// (GET /account/passkeys/offer?return_to=).
func PageOffer(rs *kit.Responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, ok := kit.SignedIn(w, r, r.URL.RequestURI()); !ok {
			return
		}
		rs.Page(w, r, http.StatusOK, "passkey_offer", "Add a passkey", OfferView{ReturnTo: kit.SafeReturn(r.URL.Query().Get("return_to"))})
	}
}

// OfferView is the passkey offer page.
type OfferView struct {
	ReturnTo string
}
