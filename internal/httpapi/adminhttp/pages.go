package adminhttp

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
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
		rs.AdminPage(w, r, http.StatusOK, "admin_users", "Users", UsersView{Users: page.Users, Q: f.Query, Next: next,
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
		list, err := ad.Sessions.List(r.Context(), session.Principal{TenantID: kit.TenantID(r), UserID: u.ID})
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.AdminPage(w, r, status, "admin_user", u.Email, UserView{U: u, Role: u.Role, Roles: authz.Roles,
			Sessions: list, Notice: notice})
	}
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

// policyForm is the policy page's view of a policy.
type policyForm struct {
	P       tenant.Policy
	Actions []ruleRow
	Methods []string
	Domains string
}

type ruleRow struct {
	Action  string
	Set     bool
	MaxAge  int
	Methods map[string]bool
}

func newPolicyForm(p tenant.Policy) policyForm {
	f := policyForm{P: p, Methods: tenant.StepUpMethods, Domains: strings.Join(p.Signup.AllowedDomains, ", ")}
	for _, a := range tenant.StepUpActions {
		row := ruleRow{Action: string(a), Methods: map[string]bool{}}
		for _, r := range p.StepUp.Rules {
			if r.Action == a {
				row.Set, row.MaxAge = true, r.MaxAgeSeconds
				for _, m := range r.Methods {
					row.Methods[m] = true
				}
			}
		}
		f.Actions = append(f.Actions, row)
	}
	return f
}

func PageAdminPolicy(rs *kit.Responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		rs.AdminPage(w, r, http.StatusOK, "admin_policy", "Policies", PolicyView{F: newPolicyForm(t.Policy), Saved: r.URL.Query().Get("saved") != ""})
	}
}

// policyFromForm reads the policy page's fields over the current policy.
func policyFromForm(r *http.Request, cur tenant.Policy) (tenant.Policy, error) {
	p := cur
	num := func(name string, dst *int) error {
		v := strings.TrimSpace(r.PostFormValue(name))
		n, err := strconv.Atoi(v)
		if err != nil {
			return apperr.New(apperr.Invalid, "invalid_policy", "Invalid policy: "+name+" must be a whole number.").WithDetails(map[string]any{"field": name})
		}
		*dst = n
		return nil
	}
	p.Verification.Mode = r.PostFormValue("verification.mode")
	for name, dst := range map[string]*int{
		"verification.grace_hours": &p.Verification.GraceHours, "sessions.idle_timeout_seconds": &p.Sessions.IdleTimeoutSeconds,
		"sessions.absolute_timeout_seconds": &p.Sessions.AbsoluteTimeoutSeconds, "sessions.max_per_user": &p.Sessions.MaxPerUser,
		"deletion.grace_days": &p.Deletion.GraceDays,
	} {
		if err := num(name, dst); err != nil {
			return p, err
		}
	}
	p.Sessions.NewDeviceNotice = r.PostFormValue("sessions.new_device_notice") == "on"
	p.Signup.Enabled = r.PostFormValue("signup.enabled") == "on"
	p.Signup.AllowedDomains = []string{}
	for _, d := range strings.FieldsFunc(r.PostFormValue("signup.allowed_domains"), func(c rune) bool { return c == ',' || c == ' ' || c == '\n' }) {
		p.Signup.AllowedDomains = append(p.Signup.AllowedDomains, strings.ToLower(d))
	}
	p.StepUp.Rules = []tenant.StepUpRule{}
	for _, a := range tenant.StepUpActions {
		if r.PostFormValue("rule."+string(a)) != "on" {
			continue
		}
		rule := tenant.StepUpRule{Action: a, Methods: []string{}}
		if err := num("rule."+string(a)+".max_age", &rule.MaxAgeSeconds); err != nil {
			return p, err
		}
		for _, m := range tenant.StepUpMethods {
			if r.PostFormValue("rule."+string(a)+"."+m) == "on" {
				rule.Methods = append(rule.Methods, m)
			}
		}
		p.StepUp.Rules = append(p.StepUp.Rules, rule)
	}
	return p, p.Validate()
}

func PageAdminPolicyPost(rs *kit.Responder, ad Deps, steps *stepup.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := kit.PrincipalFrom(r.Context())
		if !kit.PageStepUp(rs, steps, w, r, p, tenant.ActionPolicyUpdate, "/admin/policy") {
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		pol, err := policyFromForm(r, t.Policy)
		if err == nil {
			_, err = ad.Tenants.UpdatePolicy(r.Context(), t.ID, pol, kit.Who(r))
		}
		if err != nil {
			if msg, status, ok := rs.FormError(w, r, err); ok {
				rs.AdminPage(w, r, status, "admin_policy", "Policies", PolicyView{F: newPolicyForm(pol), Error: msg})
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

func PageAdminBranding(rs *kit.Responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		rs.AdminPage(w, r, http.StatusOK, "admin_branding", "Branding", BrandingView{B: t.Policy.Branding, Saved: r.URL.Query().Get("saved") != ""})
	}
}

// PageAdminBrandingPost saves the branding (audited by the tenant service).
func PageAdminBrandingPost(rs *kit.Responder, ad Deps) http.HandlerFunc {
	branding := func(r *http.Request) tenant.Branding {
		return tenant.Branding{DisplayName: strings.TrimSpace(r.PostFormValue("display_name")),
			LogoURL: strings.TrimSpace(r.PostFormValue("logo_url")), PrimaryColor: strings.TrimSpace(r.PostFormValue("primary_color"))}
	}
	return kit.FormHandler(rs, func(r *http.Request, t tenant.Tenant) (string, error) {
		pol := t.Policy
		pol.Branding = branding(r)
		_, err := ad.Tenants.UpdatePolicy(r.Context(), t.ID, pol, kit.Who(r))
		return "/admin/branding?saved=1", err
	}, func(w http.ResponseWriter, r *http.Request, status int, msg string) {
		rs.AdminPage(w, r, status, "admin_branding", "Branding", BrandingView{B: branding(r), Error: msg})
	})
}

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
		p, _ := kit.PrincipalFrom(r.Context())
		if !kit.PageStepUp(rs, steps, w, r, p, tenant.ActionUsersDelete, "/admin/users/"+u.ID.String()) {
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		grace := time.Duration(t.Policy.Deletion.GraceDays) * 24 * time.Hour
		if r.PostFormValue("immediate") == "on" {
			grace = 0
		}
		if _, err := accounts.RequestDeletion(r.Context(), t, u.ID, kit.Who(r), grace); err != nil {
			if msg, status, ok := rs.FormError(w, r, err); ok {
				PageAdminUserStatus(rs, ad, status, msg)(w, r)
			}
			return
		}
		http.Redirect(w, r, "/admin/users", http.StatusSeeOther)
	}
}
