package httpapi

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"github.com/gatehouse-id/gatehouse/internal/sso"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/stepup"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/web"
)

// The admin portal: server-rendered pages at /admin on the tenant host, the same services
// and permissions as the admin JSON API.

// adminPage guards a portal page: sign-in first, then the permission (403 page otherwise).
func adminPage(rs *responder, pages *web.Renderer, ad adminDeps, perm authz.Permission) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := PrincipalFrom(r.Context())
			if !ok {
				http.Redirect(w, r, "/login?return_to="+url.QueryEscape(r.URL.Path), http.StatusSeeOther)
				return
			}
			allowed, err := ad.authz.Can(r.Context(), p.TenantID, p.UserID, perm)
			if err != nil {
				rs.Error(w, r, err)
				return
			}
			if !allowed {
				renderPage(rs, pages, w, r, http.StatusForbidden, "error", "Not allowed",
					pageData{"Heading": "Not allowed", "Message": "The administration portal is for this organisation's administrators.", "Code": "forbidden"})
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func renderAdmin(rs *responder, pages *web.Renderer, w http.ResponseWriter, r *http.Request, status int, page, title string, d pageData) {
	if d == nil {
		d = pageData{}
	}
	d["Admin"] = true
	renderPage(rs, pages, w, r, status, page, title, d)
}

func pageAdminOverview(rs *responder, pages *web.Renderer, ad adminDeps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := TenantFrom(r.Context())
		var counts sqlcgen.CountUsersByStateRow
		err := ad.store.InTenant(r.Context(), t.ID, func(q *sqlcgen.Queries) error {
			var err error
			counts, err = q.CountUsersByState(r.Context())
			return err
		}, store.ReadOnly(), store.Idempotent())
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		logins, _, err := audit.List(r.Context(), ad.store, t.ID, audit.Filter{Action: audit.SessionLogin, Limit: 10})
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		conns, err := ad.sso.List(r.Context(), t)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		var warnings []sso.Connection
		for _, c := range conns {
			if c.CertWarning != "" || c.MetadataError != nil {
				warnings = append(warnings, c)
			}
		}
		renderAdmin(rs, pages, w, r, http.StatusOK, "admin_overview", "Administration", pageData{"Counts": counts, "Logins": logins, "SSOWarnings": warnings})
	}
}

func pageAdminUsers(rs *responder, pages *web.Renderer, ad adminDeps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := TenantFrom(r.Context())
		params := sqlcgen.ListUsersParams{PageSize: 101}
		q := strings.TrimSpace(r.URL.Query().Get("q"))
		if q != "" && len(q) <= 254 {
			params.Q = &q
		}
		if err := userFilters(r, &params); err != nil {
			rs.Error(w, r, err)
			return
		}
		var users []sqlcgen.ListUsersRow
		err := ad.store.InTenant(r.Context(), t.ID, func(qq *sqlcgen.Queries) error {
			var err error
			users, err = qq.ListUsers(r.Context(), params)
			return err
		}, store.ReadOnly(), store.Idempotent())
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		more := len(users) > 100
		if more {
			users = users[:100]
		}
		renderAdmin(rs, pages, w, r, http.StatusOK, "admin_users", "Users", pageData{"Users": users, "Q": q, "More": more,
			"Status": r.URL.Query().Get("status"), "Verified": r.URL.Query().Get("verified"), "MFA": r.URL.Query().Get("mfa"), "SSO": r.URL.Query().Get("sso")})
	}
}

func pageAdminUser(rs *responder, pages *web.Renderer, ad adminDeps, notice string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := userParam(rs, ad, w, r)
		if !ok {
			return
		}
		roles, err := ad.authz.UserRoles(r.Context(), u.TenantID, u.ID)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		list, err := ad.sessions.List(r.Context(), session.Principal{TenantID: u.TenantID, UserID: u.ID})
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		role := ""
		if len(roles) > 0 {
			role = roles[0]
		}
		renderAdmin(rs, pages, w, r, http.StatusOK, "admin_user", u.Email, pageData{"U": u, "Role": role, "Roles": authz.Roles,
			"Sessions": list, "Notice": notice})
	}
}

func pageAdminUserRole(rs *responder, pages *web.Renderer, ad adminDeps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := userParam(rs, ad, w, r)
		if !ok {
			return
		}
		p, _ := PrincipalFrom(r.Context())
		isOwner, err := ad.authz.IsOwner(r.Context(), p.TenantID, p.UserID)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		roles := []string{}
		if role := r.PostFormValue("role"); role != "" {
			roles = append(roles, role)
		}
		err = ad.store.InTenant(r.Context(), u.TenantID, func(q *sqlcgen.Queries) error {
			if err := authz.SetRoles(r.Context(), q, u.ID, roles, isOwner); err != nil {
				return err
			}
			return audit.Record(r.Context(), q, who(r), audit.Event{Action: audit.RoleAssigned, SubjectID: u.ID, SubjectLabel: u.Email,
				Details: map[string]any{"roles": roles}})
		})
		if err != nil {
			if msg, _, ok := formError(rs, w, r, err); ok {
				pageAdminUser(rs, pages, ad, msg)(w, r)
			}
			return
		}
		http.Redirect(w, r, "/admin/users/"+u.ID.String(), http.StatusSeeOther)
	}
}

func pageAdminRevokeSessions(rs *responder, ad adminDeps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := userParam(rs, ad, w, r)
		if !ok {
			return
		}
		if _, err := ad.sessions.RevokeAllOf(r.Context(), u.TenantID, u.ID, "admin", who(r)); err != nil {
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

func pageAdminPolicy(rs *responder, pages *web.Renderer) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := TenantFrom(r.Context())
		renderAdmin(rs, pages, w, r, http.StatusOK, "admin_policy", "Policies", pageData{"F": newPolicyForm(t.Policy), "Saved": r.URL.Query().Get("saved") != ""})
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

func pageAdminPolicyPost(rs *responder, pages *web.Renderer, ad adminDeps, steps *stepup.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		p, _ := PrincipalFrom(r.Context())
		if !pageStepUp(rs, steps, w, r, p, tenant.ActionPolicyUpdate, "/admin/policy") {
			return
		}
		t, _ := TenantFrom(r.Context())
		pol, err := policyFromForm(r, t.Policy)
		if err == nil {
			_, err = ad.tenants.UpdatePolicy(r.Context(), t.ID, pol, func(q *sqlcgen.Queries) error {
				return audit.Record(r.Context(), q, who(r), audit.Event{Action: audit.PolicyUpdated, Details: map[string]any{"policy": pol}})
			})
		}
		if err != nil {
			if msg, status, ok := formError(rs, w, r, err); ok {
				renderAdmin(rs, pages, w, r, status, "admin_policy", "Policies", pageData{"F": newPolicyForm(pol), "Error": msg})
			}
			return
		}
		http.Redirect(w, r, "/admin/policy?saved=1", http.StatusSeeOther)
	}
}

func pageAdminInvitations(rs *responder, pages *web.Renderer, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		renderInvitations(rs, pages, accounts, w, r, http.StatusOK, "", "")
	}
}

func renderInvitations(rs *responder, pages *web.Renderer, accounts *account.Service, w http.ResponseWriter, r *http.Request, status int, notice, errMsg string) {
	t, _ := TenantFrom(r.Context())
	list, err := accounts.Invitations(r.Context(), t)
	if err != nil {
		rs.Error(w, r, err)
		return
	}
	renderAdmin(rs, pages, w, r, status, "admin_invitations", "Invitations", pageData{"Invitations": list, "Roles": authz.Roles, "Notice": notice, "Error": errMsg})
}

func pageAdminInvite(rs *responder, pages *web.Renderer, accounts *account.Service, ad adminDeps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := TenantFrom(r.Context())
		p, _ := PrincipalFrom(r.Context())
		isOwner, err := ad.authz.IsOwner(r.Context(), p.TenantID, p.UserID)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		email := r.PostFormValue("email")
		if _, err := accounts.Invite(r.Context(), t, p, email, r.PostFormValue("role"), isOwner); err != nil {
			if msg, status, ok := formError(rs, w, r, err); ok {
				renderInvitations(rs, pages, accounts, w, r, status, "", msg)
			}
			return
		}
		renderInvitations(rs, pages, accounts, w, r, http.StatusOK, "Invitation sent to "+strings.TrimSpace(email)+".", "")
	}
}

func pageAdminRevokeInvitation(rs *responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := TenantFrom(r.Context())
		p, _ := PrincipalFrom(r.Context())
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

func pageAdminAudit(rs *responder, pages *web.Renderer, ad adminDeps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := TenantFrom(r.Context())
		f := auditFilter(r)
		events, next, err := audit.List(r.Context(), ad.store, t.ID, f)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
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
		renderAdmin(rs, pages, w, r, http.StatusOK, "admin_audit", "Audit log", pageData{"Events": events, "Next": next,
			"Action": f.Action, "Actor": actor, "Since": since, "Query": q.Encode()})
	}
}

// pageAdminAuditExport downloads the filtered log (up to 10,000 events) as CSV or JSON.
func pageAdminAuditExport(rs *responder, ad adminDeps, format string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := TenantFrom(r.Context())
		f := auditFilter(r)
		f.Limit = 500
		var all []audit.View
		for len(all) < 10000 {
			page, next, err := audit.List(r.Context(), ad.store, t.ID, f)
			if err != nil {
				rs.Error(w, r, err)
				return
			}
			all = append(all, page...)
			if next == "" {
				break
			}
			f.Cursor = next
		}
		name := fmt.Sprintf("audit-%s.%s", t.Slug, format)
		w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
		if format == "json" {
			rs.JSON(w, http.StatusOK, map[string]any{"events": all})
			return
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		cw := csv.NewWriter(w)
		_ = cw.Write([]string{"id", "created_at", "action", "actor_id", "actor", "subject_id", "subject", "ip", "user_agent", "request_id", "details"})
		for _, e := range all {
			_ = cw.Write([]string{e.ID.String(), e.CreatedAt.UTC().Format("2006-01-02T15:04:05.000000Z07:00"), e.Action, idText(e.Actor.ID),
				csvSafe(e.Actor.Label), idText(e.Subject.ID), csvSafe(e.Subject.Label), e.IP, csvSafe(e.UserAgent), e.RequestID, csvSafe(compact(e.Details))})
		}
		cw.Flush()
	}
}

func idText(id *uuid.UUID) string {
	if id == nil {
		return ""
	}
	return id.String()
}

// csvSafe defuses spreadsheet formula injection in values that users control.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func compact(raw json.RawMessage) string { return string(raw) }

func pageInvite(rs *responder, pages *web.Renderer, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := TenantFrom(r.Context())
		tok := r.URL.Query().Get("token")
		inv, err := accounts.InvitationFor(r.Context(), t, tok)
		if err != nil {
			if msg, status, ok := formError(rs, w, r, err); ok {
				renderPage(rs, pages, w, r, status, "invite", "Join "+t.DisplayName(), pageData{"Error": msg, "Failed": true})
			}
			return
		}
		renderPage(rs, pages, w, r, http.StatusOK, "invite", "Join "+t.DisplayName(), pageData{"Token": tok, "Inv": inv})
	}
}

func pageInvitePost(rs *responder, pages *web.Renderer, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := TenantFrom(r.Context())
		tok := r.PostFormValue("token")
		res, err := accounts.AcceptInvitation(r.Context(), t, tok, r.PostFormValue("name"), r.PostFormValue("password"), metaOf(r))
		if err != nil {
			if msg, status, ok := formError(rs, w, r, err); ok {
				inv, _ := accounts.InvitationFor(r.Context(), t, tok)
				renderPage(rs, pages, w, r, status, "invite", "Join "+t.DisplayName(), pageData{"Error": msg, "Token": tok, "Inv": inv, "Failed": inv.Email == ""})
			}
			return
		}
		setSessionCookie(w, res.Session.Token, res.Session.Session.ExpiresAt)
		http.Redirect(w, r, "/account", http.StatusSeeOther)
	}
}

// handleBrandCSS serves the tenant's colour as a stylesheet (the pages' CSP allows no
// inline styles). The colour was validated as #rrggbb when it was saved.
func handleBrandCSS() http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := TenantFrom(r.Context())
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=300")
		if c := t.Policy.Branding.PrimaryColor; c != "" {
			fmt.Fprintf(w, ":root { --primary: %s; }\n", c)
		}
	}
}

func pageAdminBranding(rs *responder, pages *web.Renderer) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := TenantFrom(r.Context())
		renderAdmin(rs, pages, w, r, http.StatusOK, "admin_branding", "Branding", pageData{"B": t.Policy.Branding, "Saved": r.URL.Query().Get("saved") != ""})
	}
}

func pageAdminBrandingPost(rs *responder, pages *web.Renderer, ad adminDeps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := TenantFrom(r.Context())
		pol := t.Policy
		pol.Branding = tenant.Branding{DisplayName: strings.TrimSpace(r.PostFormValue("display_name")),
			LogoURL: strings.TrimSpace(r.PostFormValue("logo_url")), PrimaryColor: strings.TrimSpace(r.PostFormValue("primary_color"))}
		_, err := ad.tenants.UpdatePolicy(r.Context(), t.ID, pol, func(q *sqlcgen.Queries) error {
			return audit.Record(r.Context(), q, who(r), audit.Event{Action: audit.BrandingUpdated, Details: map[string]any{"branding": pol.Branding}})
		})
		if err != nil {
			if msg, status, ok := formError(rs, w, r, err); ok {
				renderAdmin(rs, pages, w, r, status, "admin_branding", "Branding", pageData{"B": pol.Branding, "Error": msg})
			}
			return
		}
		http.Redirect(w, r, "/admin/branding?saved=1", http.StatusSeeOther)
	}
}

func pageAdminResendVerification(rs *responder, pages *web.Renderer, accounts *account.Service, ad adminDeps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := userParam(rs, ad, w, r)
		if !ok {
			return
		}
		t, _ := TenantFrom(r.Context())
		if err := accounts.AdminResendVerification(r.Context(), t, u.ID); err != nil {
			rs.Error(w, r, err)
			return
		}
		http.Redirect(w, r, "/admin/users/"+u.ID.String(), http.StatusSeeOther)
	}
}

func pageAdminResetMFA(rs *responder, pages *web.Renderer, accounts *account.Service, ad adminDeps, steps *stepup.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := userParam(rs, ad, w, r)
		if !ok {
			return
		}
		p, _ := PrincipalFrom(r.Context())
		if !pageStepUp(rs, steps, w, r, p, tenant.ActionMFADisable, "/admin/users/"+u.ID.String()) {
			return
		}
		t, _ := TenantFrom(r.Context())
		if err := accounts.AdminResetMFA(r.Context(), t, u.ID, who(r)); err != nil {
			if msg, _, ok := formError(rs, w, r, err); ok {
				pageAdminUser(rs, pages, ad, msg)(w, r)
			}
			return
		}
		http.Redirect(w, r, "/admin/users/"+u.ID.String(), http.StatusSeeOther)
	}
}

// roleView is one role on the roles page.
type roleView struct {
	Name        string
	Permissions []string
	Members     []string
}

func pageAdminRoles(rs *responder, pages *web.Renderer, ad adminDeps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := TenantFrom(r.Context())
		var bindings []sqlcgen.ListUsersRow
		err := ad.store.InTenant(r.Context(), t.ID, func(q *sqlcgen.Queries) error {
			var err error
			bindings, err = q.ListUsers(r.Context(), sqlcgen.ListUsersParams{PageSize: 1000})
			return err
		}, store.ReadOnly(), store.Idempotent())
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		var views []roleView
		for _, role := range authz.Roles {
			v := roleView{Name: role, Permissions: authz.PermissionsOf(role)}
			for _, u := range bindings {
				for _, ur := range u.Roles {
					if ur == role {
						v.Members = append(v.Members, u.Email)
					}
				}
			}
			views = append(views, v)
		}
		renderAdmin(rs, pages, w, r, http.StatusOK, "admin_roles", "Roles", pageData{"Roles": views})
	}
}

func pageAdminDeleteUser(rs *responder, pages *web.Renderer, accounts *account.Service, ad adminDeps, steps *stepup.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := userParam(rs, ad, w, r)
		if !ok {
			return
		}
		p, _ := PrincipalFrom(r.Context())
		if !pageStepUp(rs, steps, w, r, p, tenant.ActionUsersDelete, "/admin/users/"+u.ID.String()) {
			return
		}
		t, _ := TenantFrom(r.Context())
		grace := time.Duration(t.Policy.Deletion.GraceDays) * 24 * time.Hour
		if r.PostFormValue("immediate") == "on" {
			grace = 0
		}
		if _, err := accounts.RequestDeletion(r.Context(), t, u.ID, who(r), grace); err != nil {
			if msg, _, ok := formError(rs, w, r, err); ok {
				pageAdminUser(rs, pages, ad, msg)(w, r)
			}
			return
		}
		http.Redirect(w, r, "/admin/users", http.StatusSeeOther)
	}
}
