package adminhttp

import (
	"errors"
	"net/http"
	"strconv"
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
	"github.com/gatehouse-id/gatehouse/internal/sso"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// NewDeps gathers what the admin routes use; every service is required.
func NewDeps(adm *admin.Service, tenants *tenant.Service, sessions *session.Service, az *authz.Service, ssoSvc *sso.Service) (Deps, error) {
	if adm == nil || tenants == nil || sessions == nil || az == nil || ssoSvc == nil {
		return Deps{}, errors.New("adminhttp: admin, tenants, sessions, authz and sso are required")
	}
	return Deps{Admin: adm, Tenants: tenants, Sessions: sessions, Authz: az, SSO: ssoSvc}, nil
}

// Deps is what the admin routes use (built by NewDeps).
type Deps struct {
	Admin    *admin.Service
	Tenants  *tenant.Service
	Sessions *session.Service
	Authz    *authz.Service
	SSO      *sso.Service
}

func HandleAdminGetPolicy(rs *kit.Responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		rs.JSON(w, http.StatusOK, t.Policy)
	}
}

func HandleAdminPutPolicy(rs *kit.Responder, d Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		var raw kit.JSONRaw
		if err := kit.DecodeJSON(r, &raw); err != nil {
			rs.Error(w, r, err)
			return
		}
		p, err := tenant.ParsePolicy(raw, true)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		updated, err := d.Tenants.UpdatePolicy(r.Context(), t.ID, p, kit.Who(r))
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, updated.Policy)
	}
}

// userFilter reads the directory's query parameters: q, status, verified, mfa, sso (true
// or false), cursor and limit.
func userFilter(r *http.Request) (admin.Filter, error) {
	q := r.URL.Query()
	f := admin.Filter{Query: q.Get("q"), Status: q.Get("status"), Cursor: q.Get("cursor")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > admin.MaxPageSize {
			return f, apperr.New(apperr.Invalid, "invalid_request", "limit is a number from 1 to 200.")
		}
		f.Limit = n
	}
	for name, dst := range map[string]**bool{"verified": &f.Verified, "mfa": &f.WithMFA, "sso": &f.WithSSO} {
		switch q.Get(name) {
		case "":
		case "true", "yes":
			b := true
			*dst = &b
		case "false", "no":
			b := false
			*dst = &b
		default:
			return f, apperr.New(apperr.Invalid, "invalid_request", name+" is true or false.")
		}
	}
	return f, f.Validate()
}

func HandleAdminListUsers(rs *kit.Responder, d Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		f, err := userFilter(r)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		page, err := d.Admin.ListUsers(r.Context(), t, f)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, page)
	}
}

// userParam reads {id} and loads that user of this tenant (404 otherwise, also for ids of
// other tenants).
func userParam(rs *kit.Responder, d Deps, w http.ResponseWriter, r *http.Request) (admin.User, bool) {
	t, _ := kit.TenantFrom(r.Context())
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		rs.Error(w, r, admin.ErrUserNotFound)
		return admin.User{}, false
	}
	u, err := d.Admin.User(r.Context(), t, id)
	if err != nil {
		rs.Error(w, r, err)
		return admin.User{}, false
	}
	return u, true
}

func HandleAdminGetUser(rs *kit.Responder, d Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := userParam(rs, d, w, r)
		if !ok {
			return
		}
		rs.JSON(w, http.StatusOK, map[string]any{"user": u})
	}
}

func HandleAdminUserSessions(rs *kit.Responder, d Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := userParam(rs, d, w, r)
		if !ok {
			return
		}
		list, err := d.Sessions.List(r.Context(), session.Principal{TenantID: kit.TenantID(r), UserID: u.ID})
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, map[string]any{"sessions": list})
	}
}

func HandleAdminRevokeUserSessions(rs *kit.Responder, d Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := userParam(rs, d, w, r)
		if !ok {
			return
		}
		n, err := d.Sessions.RevokeAllOf(r.Context(), kit.TenantID(r), u.ID, "admin", kit.Who(r))
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, map[string]int{"revoked": n})
	}
}

// HandleAdminSetRoles replaces a user's roles (owner rules and the audit event in the
// admin service).
func HandleAdminSetRoles(rs *kit.Responder, d Deps) http.HandlerFunc {
	type request struct {
		Roles []string `json:"roles"`
	}
	type response struct {
		Roles []string `json:"roles"`
	}
	return kit.JSONHandler(rs, http.StatusOK, func(r *http.Request, t tenant.Tenant, req request) (response, error) {
		id, err := uuid.Parse(chi.URLParam(r, "id"))
		if err != nil {
			return response{}, admin.ErrUserNotFound
		}
		return response{Roles: req.Roles}, d.Admin.SetRoles(r.Context(), t, kit.Who(r), id, req.Roles)
	})
}

func HandleAdminAudit(rs *kit.Responder, d Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		f := audit.Filter{Action: r.URL.Query().Get("action"), Cursor: r.URL.Query().Get("cursor")}
		if a := r.URL.Query().Get("actor"); a != "" {
			id, err := uuid.Parse(a)
			if err != nil {
				rs.Error(w, r, apperr.New(apperr.Invalid, "invalid_request", "actor is a user id."))
				return
			}
			f.Actor = id
		}
		if s := r.URL.Query().Get("since"); s != "" {
			ts, err := time.Parse(time.RFC3339, s)
			if err != nil {
				rs.Error(w, r, apperr.New(apperr.Invalid, "invalid_request", "since is an RFC 3339 time."))
				return
			}
			f.Since = ts
		}
		page, err := d.Admin.Audit(r.Context(), t, f)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, page)
	}
}

func HandleAdminListInvitations(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := kit.TenantFrom(r.Context())
		list, err := accounts.Invitations(r.Context(), t)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, map[string]any{"invitations": list})
	}
}

func HandleAdminInvite(rs *kit.Responder, accounts *account.Service, d Deps) http.HandlerFunc {
	type request struct {
		Email string `json:"email"`
		Role  string `json:"role"`
	}
	return func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := kit.DecodeJSON(r, &req); err != nil {
			rs.Error(w, r, err)
			return
		}
		p, _ := kit.PrincipalFrom(r.Context())
		t, _ := kit.TenantFrom(r.Context())
		isOwner, err := d.Admin.IsOwner(r.Context(), t, p.UserID)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		inv, err := accounts.Invite(r.Context(), t, p, req.Email, req.Role, isOwner)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusCreated, map[string]any{"invitation": inv})
	}
}

func HandleAdminRevokeInvitation(rs *kit.Responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := uuid.Parse(chi.URLParam(r, "id"))
		if err != nil {
			rs.Error(w, r, apperr.New(apperr.NotFound, "not_found", "There is no such open invitation."))
			return
		}
		p, _ := kit.PrincipalFrom(r.Context())
		t, _ := kit.TenantFrom(r.Context())
		if err := accounts.RevokeInvitation(r.Context(), t, p, id); err != nil {
			rs.Error(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func HandleAdminResendVerification(rs *kit.Responder, accounts *account.Service, d Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := userParam(rs, d, w, r)
		if !ok {
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		if err := accounts.AdminResendVerification(r.Context(), t, u.ID); err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusAccepted, kit.Status{Status: "accepted"})
	}
}

func HandleAdminResetMFA(rs *kit.Responder, accounts *account.Service, d Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := userParam(rs, d, w, r)
		if !ok {
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		if err := accounts.AdminResetMFA(r.Context(), t, u.ID, kit.Who(r)); err != nil {
			rs.Error(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// HandleAdminDeleteUser schedules a user's deletion with the tenant's grace period, or
// purges at once with ?immediate=true; the user is told by mail when there is a grace period.
func HandleAdminDeleteUser(rs *kit.Responder, accounts *account.Service, d Deps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := userParam(rs, d, w, r)
		if !ok {
			return
		}
		t, _ := kit.TenantFrom(r.Context())
		grace := time.Duration(t.Policy.Deletion.GraceDays) * 24 * time.Hour
		if r.URL.Query().Get("immediate") == "true" {
			grace = 0
		}
		del, err := accounts.RequestDeletion(r.Context(), t, u.ID, kit.Who(r), grace)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusAccepted, del)
	}
}
