package webhookhttp

import (
	"embed"
	"io/fs"
	"net/http"
	"strings"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/events"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
	"github.com/gatehouse-id/gatehouse/internal/stepup"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/webhooks"
)

// The admin portal's Webhooks pages (/admin/webhooks): the endpoints with the form for a
// new one, the page that shows a secret once, and one endpoint's page (settings, enable,
// secret rotation, test event, deliveries log with retries). Every write needs the
// webhooks.manage permission (the route); changes to an endpoint or its secret also the
// webhooks.manage step-up (here).

//go:embed templates/*.html
var templates embed.FS

// Templates are this package's pages.
func Templates() fs.FS {
	sub, _ := fs.Sub(templates, "templates")
	return sub
}

// WebhooksView is the list page.
type WebhooksView struct {
	Webhooks []webhooks.Endpoint
	Types    []string
	URL      string
	Error    string
	Deleted  bool
}

// SecretView shows a new secret once.
type SecretView struct {
	Webhook webhooks.Endpoint
	Secret  string
	Rotated bool
}

// WebhookView is one endpoint's page.
type WebhookView struct {
	Webhook    webhooks.Endpoint
	Types      []string
	Deliveries []webhooks.Delivery
	Notice     string
	Error      string
}

// Reason says why the endpoint was disabled ("" when it was not by Gatehouse).
func (v WebhookView) Reason() string {
	if v.Webhook.DisabledReason == nil {
		return ""
	}
	if *v.Webhook.DisabledReason == "gone" {
		return "the endpoint answered 410 Gone"
	}
	return "its deliveries failed for three days"
}

// Has reports whether the endpoint's filter names t.
func (v WebhookView) Has(t string) bool {
	for _, x := range v.Webhook.EventTypes {
		if x == t {
			return true
		}
	}
	return false
}

func renderList(rs *kit.Responder, svc *webhooks.Service, w http.ResponseWriter, r *http.Request, status int, v WebhooksView) {
	list, err := svc.List(r.Context(), TenantScope(r))
	if err != nil {
		rs.Error(w, r, err)
		return
	}
	v.Webhooks, v.Types = list, events.Types
	rs.AdminPage(w, r, status, "admin_webhooks", "Webhooks", v)
}

// PageAdminWebhooks: GET /admin/webhooks.
func PageAdminWebhooks(rs *kit.Responder, svc *webhooks.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		renderList(rs, svc, w, r, http.StatusOK, WebhooksView{Deleted: r.URL.Query().Get("deleted") != ""})
	}
}

func formInput(r *http.Request) webhooks.Input {
	u, d := r.PostFormValue("url"), r.PostFormValue("description")
	types := []string{}
	for _, t := range r.PostForm["event_types"] {
		if t = strings.TrimSpace(t); t != "" {
			types = append(types, t)
		}
	}
	enabled := r.PostFormValue("enabled") != ""
	return webhooks.Input{URL: &u, Description: &d, EventTypes: &types, Enabled: &enabled}
}

// PageAdminWebhookCreate: POST /admin/webhooks; the secret is shown on the answer only.
func PageAdminWebhookCreate(rs *kit.Responder, svc *webhooks.Service, steps *stepup.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := kit.PrincipalFrom(r.Context())
		if !kit.PageStepUp(rs, steps, w, r, p, tenant.ActionWebhooksManage, "/admin/webhooks") {
			return
		}
		if err := r.ParseForm(); err != nil {
			rs.Error(w, r, kit.ErrTooLarge)
			return
		}
		in := formInput(r)
		c, err := svc.Create(r.Context(), TenantScope(r), in, kit.Who(r))
		if err != nil {
			if msg, status, ok := rs.FormError(w, r, err); ok {
				renderList(rs, svc, w, r, status, WebhooksView{URL: *in.URL, Error: msg})
			}
			return
		}
		rs.AdminPage(w, r, http.StatusCreated, "admin_webhook_secret", "Webhook created", SecretView{Webhook: c.Webhook, Secret: c.Secret})
	}
}

var notices = map[string]string{
	"saved":   "Saved.",
	"tested":  "A webhook.test event is on its way: its delivery is at the top of the log below.",
	"retried": "The failed deliveries are sent again.",
}

func endpointFromURL(rs *kit.Responder, svc *webhooks.Service, w http.ResponseWriter, r *http.Request) (webhooks.Endpoint, bool) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		rs.Error(w, r, webhooks.ErrNotFound)
		return webhooks.Endpoint{}, false
	}
	e, err := svc.Get(r.Context(), TenantScope(r), id)
	if err != nil {
		rs.Error(w, r, err)
		return webhooks.Endpoint{}, false
	}
	return e, true
}

func renderOne(rs *kit.Responder, svc *webhooks.Service, w http.ResponseWriter, r *http.Request, status int, v WebhookView) {
	list, err := svc.Deliveries(r.Context(), TenantScope(r), v.Webhook.ID, 50)
	if err != nil {
		rs.Error(w, r, err)
		return
	}
	v.Deliveries, v.Types = list, events.Types
	rs.AdminPage(w, r, status, "admin_webhook", "Webhook", v)
}

// PageAdminWebhook: GET /admin/webhooks/{id}.
func PageAdminWebhook(rs *kit.Responder, svc *webhooks.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		e, ok := endpointFromURL(rs, svc, w, r)
		if !ok {
			return
		}
		v := WebhookView{Webhook: e}
		for k, text := range notices {
			if r.URL.Query().Get(k) != "" {
				v.Notice = text
			}
		}
		renderOne(rs, svc, w, r, http.StatusOK, v)
	}
}

// PageAdminWebhookAction: POST /admin/webhooks/{id}/{action}: save (settings, enable),
// secret (rotation), delete, test, retry (one delivery with "delivery", else all failed).
func PageAdminWebhookAction(rs *kit.Responder, svc *webhooks.Service, steps *stepup.Service, action string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		e, ok := endpointFromURL(rs, svc, w, r)
		if !ok {
			return
		}
		back := "/admin/webhooks/" + e.ID.String()
		if action == "save" || action == "secret" || action == "delete" {
			p, _ := kit.PrincipalFrom(r.Context())
			if !kit.PageStepUp(rs, steps, w, r, p, tenant.ActionWebhooksManage, back) {
				return
			}
		}
		if err := r.ParseForm(); err != nil {
			rs.Error(w, r, kit.ErrTooLarge)
			return
		}
		ctx, o, who := r.Context(), TenantScope(r), kit.Who(r)
		var err error
		next := back
		switch action {
		case "save":
			_, err = svc.Update(ctx, o, e.ID, formInput(r), who)
			next += "?saved=1"
		case "secret":
			var c webhooks.Created
			if c, err = svc.Rotate(ctx, o, e.ID, who); err == nil {
				rs.AdminPage(w, r, http.StatusOK, "admin_webhook_secret", "New webhook secret", SecretView{Webhook: c.Webhook, Secret: c.Secret, Rotated: true})
				return
			}
		case "delete":
			err = svc.Delete(ctx, o, e.ID, who)
			next = "/admin/webhooks?deleted=1"
		case "test":
			_, err = svc.Test(ctx, o, e.ID, who)
			next += "?tested=1"
		case "retry":
			if d, perr := uuid.Parse(r.PostFormValue("delivery")); perr == nil {
				err = svc.Retry(ctx, o, e.ID, d, who)
			} else {
				_, err = svc.RetryFailed(ctx, o, e.ID, who)
			}
			next += "?retried=1"
		}
		if err != nil {
			if msg, status, ok := rs.FormError(w, r, err); ok {
				renderOne(rs, svc, w, r, status, WebhookView{Webhook: e, Error: msg})
			}
			return
		}
		http.Redirect(w, r, next, http.StatusSeeOther)
	}
}
