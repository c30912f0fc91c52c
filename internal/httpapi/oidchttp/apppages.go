package oidchttp

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
	"github.com/gatehouse-id/gatehouse/internal/oidcop"
	"github.com/gatehouse-id/gatehouse/internal/stepup"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// The admin portal's Applications pages (/admin/apps): the list with how to connect an
// app and the form for a new one, one app's page (settings, secret rotation, delete), the
// page that shows a client secret once, and the delete confirmation. Every write needs
// the apps.manage permission (the route) and the apps.manage step-up (here).

func connectInfo(svc *oidcop.Service, t tenant.Tenant) ConnectInfo {
	iss := svc.Issuer(t)
	return ConnectInfo{Issuer: iss, Discovery: iss + oidcop.DiscoveryPath}
}

func renderApps(rs *kit.Responder, svc *oidcop.Service, w http.ResponseWriter, r *http.Request, status int, v AppsView) {
	t, _ := kit.TenantFrom(r.Context())
	list, err := svc.ListApps(r.Context(), t)
	if err != nil {
		rs.Error(w, r, err)
		return
	}
	v.Apps, v.Connect = list, connectInfo(svc, t)
	rs.AdminPage(w, r, status, "admin_apps", "Applications", v)
}

func PageAdminApps(rs *kit.Responder, svc *oidcop.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		renderApps(rs, svc, w, r, http.StatusOK, AppsView{Form: newForm(time.Now()), Deleted: r.URL.Query().Get("deleted") != ""})
	}
}

// resubmitted finds the app a second submission of the new-application form made: one
// of the same name created after the form was shown.
func resubmitted(list []oidcop.App, name, opened string) (oidcop.App, bool) {
	us, err := strconv.ParseInt(opened, 10, 64)
	if err != nil {
		return oidcop.App{}, false
	}
	since := time.UnixMicro(us)
	for _, a := range list {
		if a.Name == strings.TrimSpace(name) && !a.CreatedAt.Before(since) {
			return a, true
		}
	}
	return oidcop.App{}, false
}

// PageAdminAppCreate creates an app. A confidential app's secret is shown on the page this
// POST answers, and only there; a public app has none and goes to its page.
func PageAdminAppCreate(rs *kit.Responder, svc *oidcop.Service, steps *stepup.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := kit.PrincipalFrom(r.Context())
		if !kit.PageStepUp(rs, steps, w, r, p, tenant.ActionAppsManage, "/admin/apps") {
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		if err := r.ParseForm(); err != nil {
			rs.Error(w, r, kit.ErrTooLarge)
			return
		}
		list, err := svc.ListApps(r.Context(), t)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		if a, ok := resubmitted(list, r.PostFormValue("name"), r.PostFormValue("opened")); ok {
			http.Redirect(w, r, "/admin/apps/"+a.ID.String()+"?resubmitted=1", http.StatusSeeOther)
			return
		}
		in, err := appInput(r, true)
		var c oidcop.Created
		if err == nil {
			c, err = svc.CreateApp(r.Context(), t, in, kit.Who(r))
		}
		if err != nil {
			if _, status, ok := rs.FormError(w, r, err); ok {
				renderApps(rs, svc, w, r, status, AppsView{Form: typedForm(r), Err: fieldError(err)})
			}
			return
		}
		if c.ClientSecret == "" {
			http.Redirect(w, r, "/admin/apps/"+c.App.ID.String()+"?created=1", http.StatusSeeOther)
			return
		}
		rs.AdminPage(w, r, http.StatusCreated, "admin_app_secret", c.App.Name, SecretView{App: c.App, Secret: c.ClientSecret, Connect: connectInfo(svc, t)})
	}
}

func appFromURL(rs *kit.Responder, svc *oidcop.Service, w http.ResponseWriter, r *http.Request) (oidcop.App, bool) {
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		rs.Error(w, r, oidcop.ErrAppNotFound)
		return oidcop.App{}, false
	}
	t, _ := kit.TenantFrom(r.Context())
	a, err := svc.GetApp(r.Context(), t, id)
	if err != nil {
		rs.Error(w, r, err)
		return oidcop.App{}, false
	}
	return a, true
}

// version is an app's state as the rotation form carries it.
func version(a oidcop.App) string { return strconv.FormatInt(a.UpdatedAt.UnixMicro(), 10) }

func renderApp(rs *kit.Responder, svc *oidcop.Service, w http.ResponseWriter, r *http.Request, status int, v AppView) {
	t, _ := kit.TenantFrom(r.Context())
	v.Connect, v.Version = connectInfo(svc, t), version(v.App)
	rs.AdminPage(w, r, status, "admin_app", v.App.Name, v)
}

// appNotices are the app page's messages after a change (?key=1).
var appNotices = []struct{ key, text string }{
	{"created", "Application created. It is public, so it has no secret: it proves each sign-in with PKCE."},
	{"saved", "Saved. The new settings apply to the next sign-in and the next tokens."},
	{"resubmitted", "This application was already created from that form, so nothing new was created. Its secret was shown once and is not shown again: if you did not store it, rotate the secret below."},
	{"stale", "Nothing was rotated: the secret was rotated (or the application changed) after that page was shown. The new secret is not shown again: if you did not store it, rotate again."},
}

func PageAdminApp(rs *kit.Responder, svc *oidcop.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a, ok := appFromURL(rs, svc, w, r)
		if !ok {
			return
		}
		v := AppView{App: a, Form: formOf(a)}
		for _, n := range appNotices {
			if r.URL.Query().Get(n.key) != "" {
				v.Notice = n.text
				break
			}
		}
		renderApp(rs, svc, w, r, http.StatusOK, v)
	}
}

func PageAdminAppUpdate(rs *kit.Responder, svc *oidcop.Service, steps *stepup.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a, ok := appFromURL(rs, svc, w, r)
		if !ok {
			return
		}
		p, _ := kit.PrincipalFrom(r.Context())
		back := "/admin/apps/" + a.ID.String()
		if !kit.PageStepUp(rs, steps, w, r, p, tenant.ActionAppsManage, back) {
			return
		}
		if err := r.ParseForm(); err != nil {
			rs.Error(w, r, kit.ErrTooLarge)
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		in, err := appInput(r, false)
		if err == nil {
			_, err = svc.UpdateApp(r.Context(), t, a.ID, in, kit.Who(r))
		}
		if err != nil {
			if _, status, ok := rs.FormError(w, r, err); ok {
				f := typedForm(r)
				f.Type = a.Type
				renderApp(rs, svc, w, r, status, AppView{App: a, Form: f, Err: fieldError(err)})
			}
			return
		}
		http.Redirect(w, r, back+"?saved=1", http.StatusSeeOther)
	}
}

// PageAdminAppRotate gives a confidential app a new secret, shown on the page this POST
// answers; the previous secret works for oidcop.SecretOverlap more.
func PageAdminAppRotate(rs *kit.Responder, svc *oidcop.Service, steps *stepup.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a, ok := appFromURL(rs, svc, w, r)
		if !ok {
			return
		}
		p, _ := kit.PrincipalFrom(r.Context())
		back := "/admin/apps/" + a.ID.String()
		if !kit.PageStepUp(rs, steps, w, r, p, tenant.ActionAppsManage, back) {
			return
		}
		if r.PostFormValue("version") != version(a) {
			http.Redirect(w, r, back+"?stale=1", http.StatusSeeOther)
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		c, err := svc.RotateSecret(r.Context(), t, a.ID, kit.Who(r))
		if err != nil {
			if _, status, ok := rs.FormError(w, r, err); ok {
				renderApp(rs, svc, w, r, status, AppView{App: a, Form: formOf(a), Err: fieldError(err)})
			}
			return
		}
		rs.AdminPage(w, r, http.StatusOK, "admin_app_secret", c.App.Name, SecretView{App: c.App, Secret: c.ClientSecret,
			Connect: connectInfo(svc, t), Rotated: true})
	}
}

// PageAdminAppDelete is the confirmation step before an app is deleted.
func PageAdminAppDelete(rs *kit.Responder, svc *oidcop.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a, ok := appFromURL(rs, svc, w, r)
		if !ok {
			return
		}
		rs.AdminPage(w, r, http.StatusOK, "admin_app_delete", "Delete "+a.Name, AppDeleteView{App: a})
	}
}

func PageAdminAppDeletePost(rs *kit.Responder, svc *oidcop.Service, steps *stepup.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a, ok := appFromURL(rs, svc, w, r)
		if !ok {
			return
		}
		if typed := r.PostFormValue("confirm"); strings.TrimSpace(typed) != a.Name {
			rs.AdminPage(w, r, http.StatusBadRequest, "admin_app_delete", "Delete "+a.Name, AppDeleteView{App: a, Confirm: typed,
				Err: FieldError{Field: "confirm", Message: "Type the application's name, " + a.Name + ", exactly to confirm."}})
			return
		}
		p, _ := kit.PrincipalFrom(r.Context())
		if !kit.PageStepUp(rs, steps, w, r, p, tenant.ActionAppsManage, "/admin/apps/"+a.ID.String()+"/delete") {
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		if err := svc.DeleteApp(r.Context(), t, a.ID, kit.Who(r)); err != nil {
			rs.Error(w, r, err)
			return
		}
		http.Redirect(w, r, "/admin/apps?deleted=1", http.StatusSeeOther)
	}
}
