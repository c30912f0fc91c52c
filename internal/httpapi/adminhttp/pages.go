package adminhttp

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/admin"
	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/stepup"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// adminPage guards a portal page: sign-in first, then the permission (403 page otherwise).
func AdminPage(rs *kit.Responder, ad Deps, perm authz.Permission) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := kit.PrincipalFrom(r.Context())
			if !ok {
				http.Redirect(w, r, "/login?return_to="+url.QueryEscape(r.URL.Path), http.StatusSeeOther)
				return
			}
			allowed, err := ad.Authz.Can(r.Context(), p.TenantID, p.UserID, perm)
			if err != nil {
				rs.Error(w, r, err)
				return
			}
			if !allowed {
				rs.Page(w, r, http.StatusForbidden, "error", "Not allowed",
					kit.ErrorView{Heading: "Not allowed", Message: "The administration portal is for this organisation's administrators.", Code: "forbidden"})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func PageAdminOverview(rs *kit.Responder, ad Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		o, err := ad.Admin.Overview(r.Context(), t)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		warnings, err := ad.SSO.Warnings(r.Context(), t)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.AdminPage(w, r, http.StatusOK, "admin_overview", "Administration", OverviewView{Counts: o.Counts, Logins: o.Logins, SSOWarnings: warnings})
	}
}

func PageAdminUsers(rs *kit.Responder, ad Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		f, err := userFilter(r)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		f.Limit = 100
		page, err := ad.Admin.ListUsers(r.Context(), t, f)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		next := ""
		if page.NextCursor != "" {
			q := r.URL.Query()
			q.Set("cursor", page.NextCursor)
			next = "/admin/users?" + q.Encode()
		}
		rs.AdminPage(w, r, http.StatusOK, "admin_users", "Users", UsersView{Users: page.Users, Q: f.Query, Next: next, Deleted: r.URL.Query().Get("deleted") == "1",
			Status: r.URL.Query().Get("status"), Verified: r.URL.Query().Get("verified"), MFA: r.URL.Query().Get("mfa"), SSO: r.URL.Query().Get("sso")})
	}
}

func PageAdminUser(rs *kit.Responder, ad Deps, notice string) http.HandlerFunc {
	return PageAdminUserStatus(rs, ad, http.StatusOK, notice)
}

// PageAdminUserStatus renders the user page with a notice, answering status (the 4xx of a
// refused action shown on the page).
func PageAdminUserStatus(rs *kit.Responder, ad Deps, status int, notice string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := userParam(rs, ad, w, r)
		if !ok {
			return
		}
		renderUser(rs, ad, w, r, status, u, UserView{Notice: notice})
	}
}

// renderUser shows u's page; v carries the notice and the delete form's state.
func renderUser(rs *kit.Responder, ad Deps, w http.ResponseWriter, r *http.Request, status int, u admin.User, v UserView) {
	list, err := ad.Sessions.List(r.Context(), session.Principal{TenantID: kit.TenantID(r), UserID: u.ID})
	if err != nil {
		rs.Error(w, r, err)
		return
	}
	t, _ := kit.TenantFrom(r.Context())
	v.U, v.Role, v.Roles, v.Sessions, v.GraceDays = u, u.Role, authz.Roles, list, t.Policy.Deletion.GraceDays
	v.Scheduled = r.URL.Query().Get("deleted") == "scheduled" && u.Status == "pending_deletion"
	rs.AdminPage(w, r, status, "admin_user", u.Email, v)
}

func PageAdminUserRole(rs *kit.Responder, ad Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := userParam(rs, ad, w, r)
		if !ok {
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		roles := []string{}
		if role := r.PostFormValue("role"); role != "" {
			roles = append(roles, role)
		}
		if err := ad.Admin.SetRoles(r.Context(), t, kit.Who(r), u.ID, roles); err != nil {
			if msg, status, ok := rs.FormError(w, r, err); ok {
				PageAdminUserStatus(rs, ad, status, msg)(w, r)
			}
			return
		}
		http.Redirect(w, r, "/admin/users/"+u.ID.String(), http.StatusSeeOther)
	}
}

func PageAdminRevokeSessions(rs *kit.Responder, ad Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := userParam(rs, ad, w, r)
		if !ok {
			return
		}
		if _, err := ad.Sessions.RevokeAllOf(r.Context(), kit.TenantID(r), u.ID, "admin", kit.Who(r)); err != nil {
			rs.Error(w, r, err)
			return
		}
		http.Redirect(w, r, "/admin/users/"+u.ID.String(), http.StatusSeeOther)
	}
}

// currentTenant reads the request's tenant from the database, not the resolver's cache:
// a form page shown right after "Saved." must show what was saved, even before this node
// has heard of the change.
func currentTenant(rs *kit.Responder, ad Deps, w http.ResponseWriter, r *http.Request) (tenant.Tenant, bool) {
	t, err := ad.Tenants.GetByID(r.Context(), kit.TenantID(r))
	if err != nil {
		rs.Error(w, r, err)
		return tenant.Tenant{}, false
	}
	return t, true
}

func PageAdminPolicy(rs *kit.Responder, ad Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, ok := currentTenant(rs, ad, w, r)
		if !ok {
			return
		}
		rs.AdminPage(w, r, http.StatusOK, "admin_policy", "Policies", PolicyView{F: newPolicyForm(t.Policy), Saved: r.URL.Query().Get("saved") != ""})
	}
}

func PageAdminPolicyPost(rs *kit.Responder, ad Deps, steps *stepup.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := kit.PrincipalFrom(r.Context())
		if !kit.PageStepUp(rs, steps, w, r, p, tenant.ActionPolicyUpdate, "/admin/policy") {
			return
		}
		t, ok := currentTenant(rs, ad, w, r) // the base of the change: never a stale copy
		if !ok {
			return
		}
		pol, err := policyFromForm(r, t.Policy)
		if err == nil {
			if _, err = ad.Tenants.UpdatePolicy(r.Context(), t.ID, pol, kit.Who(r)); err != nil {
				err = policyFieldError(err, pol)
			}
		}
		if err != nil {
			form := typedPolicyForm(r, t.Policy)
			var fe *formError
			if errors.As(err, &fe) && form.setError(fe) {
				rs.AdminPage(w, r, kit.StatusOf[apperr.Invalid], "admin_policy", "Policies", PolicyView{F: form, Error: notSaved})
				return
			}
			if msg, status, ok := rs.FormError(w, r, err); ok {
				rs.AdminPage(w, r, status, "admin_policy", "Policies", PolicyView{F: form, Error: msg})
			}
			return
		}
		http.Redirect(w, r, "/admin/policy?saved=1", http.StatusSeeOther)
	}
}

func PageAdminInvitations(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		renderInvitations(rs, accounts, w, r, http.StatusOK, "", "")
	}
}

func renderInvitations(rs *kit.Responder, accounts *account.Service, w http.ResponseWriter, r *http.Request, status int, notice, errMsg string) {
	t, _ := kit.TenantFrom(r.Context())
	list, err := accounts.Invitations(r.Context(), t)
	if err != nil {
		rs.Error(w, r, err)
		return
	}
	rs.AdminPage(w, r, status, "admin_invitations", "Invitations", InvitationsView{Invitations: list, Roles: authz.Roles, Notice: notice, Error: errMsg})
}

func PageAdminInvite(rs *kit.Responder, accounts *account.Service, ad Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		p, _ := kit.PrincipalFrom(r.Context())
		isOwner, err := ad.Admin.IsOwner(r.Context(), t, p.UserID)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		email := r.PostFormValue("email")
		if _, err := accounts.Invite(r.Context(), t, p, email, r.PostFormValue("role"), isOwner); err != nil {
			if msg, status, ok := rs.FormError(w, r, err); ok {
				renderInvitations(rs, accounts, w, r, status, "", msg)
			}
			return
		}
		renderInvitations(rs, accounts, w, r, http.StatusOK, "Invitation sent to "+strings.TrimSpace(email)+".", "")
	}
}

func PageAdminRevokeInvitation(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		p, _ := kit.PrincipalFrom(r.Context())
		id, err := uuid.Parse(chi.URLParam(r, "id"))
		if err == nil {
			err = accounts.RevokeInvitation(r.Context(), t, p, id)
		} else {
			err = apperr.New(apperr.NotFound, "not_found", "There is no such open invitation.")
		}
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		http.Redirect(w, r, "/admin/invitations", http.StatusSeeOther)
	}
}

func auditFilter(r *http.Request) audit.Filter {
	f := audit.Filter{Action: strings.TrimSpace(r.URL.Query().Get("action")), Cursor: r.URL.Query().Get("cursor"), Limit: 100}
	if id, err := uuid.Parse(r.URL.Query().Get("actor")); err == nil {
		f.Actor = id
	}
	if d, err := time.Parse("2006-01-02", r.URL.Query().Get("since")); err == nil {
		f.Since = d
	}
	return f
}

func PageAdminAudit(rs *kit.Responder, ad Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		f := auditFilter(r)
		page, err := ad.Admin.Audit(r.Context(), t, f)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		events, next := page.Events, page.NextCursor
		q := url.Values{"action": {f.Action}}
		actor, since := "", ""
		if f.Actor != uuid.Nil {
			actor = f.Actor.String()
			q.Set("actor", actor)
		}
		if !f.Since.IsZero() {
			since = f.Since.Format("2006-01-02")
			q.Set("since", since)
		}
		rs.AdminPage(w, r, http.StatusOK, "admin_audit", "Audit log", NewAuditView(events, f.Action, actor, since, q, next))
	}
}

// PageAdminAuditExport downloads the filtered log (up to 10,000 events) as CSV or JSON.
func PageAdminAuditExport(rs *kit.Responder, ad Deps, format string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		var buf bytes.Buffer
		if err := ad.Admin.ExportAudit(r.Context(), t, auditFilter(r), format, &buf); err != nil {
			rs.Error(w, r, err)
			return
		}
		w.Header().Set("Content-Disposition", `attachment; filename="`+fmt.Sprintf("audit-%s.%s", t.Slug, format)+`"`)
		ctype := "text/csv; charset=utf-8"
		if format == admin.FormatJSON {
			ctype = "application/json; charset=utf-8"
		}
		w.Header().Set("Content-Type", ctype)
		_, _ = w.Write(buf.Bytes())
	}
}

func PageAdminBranding(rs *kit.Responder, ad Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, ok := currentTenant(rs, ad, w, r)
		if !ok {
			return
		}
		rs.AdminPage(w, r, http.StatusOK, "admin_branding", "Branding", BrandingView{B: t.Policy.Branding, Saved: r.URL.Query().Get("saved") != ""})
	}
}

// PageAdminBrandingPost saves the branding (audited by the tenant service).
func PageAdminBrandingPost(rs *kit.Responder, ad Deps) http.HandlerFunc {
	branding := func(r *http.Request) tenant.Branding {
		return tenant.Branding{DisplayName: strings.TrimSpace(r.PostFormValue("display_name")),
			LogoURL: strings.TrimSpace(r.PostFormValue("logo_url")), PrimaryColor: strings.TrimSpace(r.PostFormValue("primary_color"))}
	}
	return func(w http.ResponseWriter, r *http.Request) {
		t, ok := currentTenant(rs, ad, w, r) // the base of the change: never a stale copy
		if !ok {
			return
		}
		pol := t.Policy
		pol.Branding = branding(r)
		_, err := ad.Tenants.UpdatePolicy(r.Context(), t.ID, pol, kit.Who(r))
		if err == nil {
			http.Redirect(w, r, "/admin/branding?saved=1", http.StatusSeeOther)
			return
		}
		v := BrandingView{B: pol.Branding}
		var fe *formError
		if errors.As(policyFieldError(err, pol), &fe) && v.setError(fe) {
			v.Error = notSaved
			rs.AdminPage(w, r, kit.StatusOf[apperr.Invalid], "admin_branding", "Branding", v)
			return
		}
		if msg, status, ok := rs.FormError(w, r, err); ok {
			v.Error = msg
			rs.AdminPage(w, r, status, "admin_branding", "Branding", v)
		}
	}
}

// notSaved heads a form whose fields carry errors.
const notSaved = "Not saved: correct the fields marked below."

func PageAdminResendVerification(rs *kit.Responder, accounts *account.Service, ad Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := userParam(rs, ad, w, r)
		if !ok {
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		if err := accounts.AdminResendVerification(r.Context(), t, u.ID); err != nil {
			rs.Error(w, r, err)
			return
		}
		http.Redirect(w, r, "/admin/users/"+u.ID.String(), http.StatusSeeOther)
	}
}

func PageAdminResetMFA(rs *kit.Responder, accounts *account.Service, ad Deps, steps *stepup.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := userParam(rs, ad, w, r)
		if !ok {
			return
		}
		p, _ := kit.PrincipalFrom(r.Context())
		if !kit.PageStepUp(rs, steps, w, r, p, tenant.ActionMFADisable, "/admin/users/"+u.ID.String()) {
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		if err := accounts.AdminResetMFA(r.Context(), t, u.ID, kit.Who(r)); err != nil {
			if msg, status, ok := rs.FormError(w, r, err); ok {
				PageAdminUserStatus(rs, ad, status, msg)(w, r)
			}
			return
		}
		http.Redirect(w, r, "/admin/users/"+u.ID.String(), http.StatusSeeOther)
	}
}

func PageAdminRoles(rs *kit.Responder, ad Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		roles, err := ad.Admin.Roles(r.Context(), t)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.AdminPage(w, r, http.StatusOK, "admin_roles", "Roles", RolesView{Roles: roles})
	}
}

func PageAdminDeleteUser(rs *kit.Responder, accounts *account.Service, ad Deps, steps *stepup.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := userParam(rs, ad, w, r)
		if !ok {
			return
		}
		// The confirmation first: a deletion is never one click away.
		confirm, immediate := strings.TrimSpace(r.PostFormValue("confirm_email")), r.PostFormValue("immediate") == "on"
		if !strings.EqualFold(confirm, u.Email) {
			msg := "Type the user's email address, " + u.Email + ", to confirm."
			if confirm == "" {
				msg = "Type the user's email address to confirm the deletion."
			}
			renderUser(rs, ad, w, r, kit.StatusOf[apperr.Invalid], u, UserView{DeleteConfirm: confirm, DeleteImmediate: immediate, DeleteError: msg})
			return
		}
		p, _ := kit.PrincipalFrom(r.Context())
		if !kit.PageStepUp(rs, steps, w, r, p, tenant.ActionUsersDelete, "/admin/users/"+u.ID.String()) {
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		grace := time.Duration(t.Policy.Deletion.GraceDays) * 24 * time.Hour
		if immediate {
			grace = 0
		}
		if _, err := accounts.RequestDeletion(r.Context(), t, u.ID, kit.Who(r), grace); err != nil {
			if msg, status, ok := rs.FormError(w, r, err); ok {
				renderUser(rs, ad, w, r, status, u, UserView{Notice: msg})
			}
			return
		}
		if grace > 0 {
			http.Redirect(w, r, "/admin/users/"+u.ID.String()+"?deleted=scheduled", http.StatusSeeOther)
			return
		}
		http.Redirect(w, r, "/admin/users?deleted=1", http.StatusSeeOther)
	}
}
