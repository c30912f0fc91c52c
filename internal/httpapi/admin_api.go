package httpapi

import (
	"github.com/gatehouse-id/gatehouse/internal/sso"
	"net/http"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

var errForbidden = apperr.New(apperr.Forbidden, "forbidden", "You do not have permission to do this.")

// requirePermission gates admin routes: 401 without a session, 403 without the permission
// in this tenant. (A session of another tenant never authenticates on this host.)
func requirePermission(rs *responder, az *authz.Service, perm authz.Permission) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := PrincipalFrom(r.Context())
			if !ok {
				rs.Error(w, r, session.ErrUnauthenticated)
				return
			}
			allowed, err := az.Can(r.Context(), p.TenantID, p.UserID, perm)
			if err != nil {
				rs.Error(w, r, err)
				return
			}
			if !allowed {
				rs.Error(w, r, errForbidden)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

// adminDeps is what the admin routes use.
type adminDeps struct {
	store    *store.Store
	tenants  *tenant.Service
	sessions *session.Service
	authz    *authz.Service
	sso      *sso.Service
}

func who(r *http.Request) audit.Who {
	p, _ := PrincipalFrom(r.Context())
	return audit.By(r.Context(), p.UserID, p.Email)
}

func handleAdminGetPolicy(rs *responder) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := TenantFrom(r.Context())
		rs.JSON(w, http.StatusOK, t.Policy)
	}
}

func handleAdminPutPolicy(rs *responder, d adminDeps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := TenantFrom(r.Context())
		var raw jsonRaw
		if err := decodeJSON(r, &raw); err != nil {
			rs.Error(w, r, err)
			return
		}
		p, err := tenant.ParsePolicy(raw, true)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		updated, err := d.tenants.UpdatePolicy(r.Context(), t.ID, p, func(q *sqlcgen.Queries) error {
			return audit.Record(r.Context(), q, who(r), audit.Event{Action: audit.PolicyUpdated, Details: map[string]any{"policy": p}})
		})
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, updated.Policy)
	}
}

type adminUser struct {
	ID              uuid.UUID  `json:"id"`
	Email           string     `json:"email"`
	Name            string     `json:"name"`
	EmailVerified   bool       `json:"email_verified"`
	EmailVerifiedAt *time.Time `json:"email_verified_at"`
	Status          string     `json:"status"`
	Roles           []string   `json:"roles"`
	MFA             bool       `json:"mfa"`
	SSO             []string   `json:"sso"` // slugs of the SSO connections the user signs in with
	CreatedAt       time.Time  `json:"created_at"`
	LastLoginAt     *time.Time `json:"last_login_at"`
}

func handleAdminListUsers(rs *responder, d adminDeps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := TenantFrom(r.Context())
		limit := 50
		if v := r.URL.Query().Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 200 {
				rs.Error(w, r, apperr.New(apperr.Invalid, "invalid_request", "limit is a number from 1 to 200."))
				return
			}
			limit = n
		}
		params := sqlcgen.ListUsersParams{PageSize: int32(limit + 1)}
		if q := r.URL.Query().Get("q"); q != "" {
			if len(q) > 254 {
				rs.Error(w, r, apperr.New(apperr.Invalid, "invalid_request", "The search is too long."))
				return
			}
			params.Q = &q
		}
		if err := userFilters(r, &params); err != nil {
			rs.Error(w, r, err)
			return
		}
		if c := r.URL.Query().Get("cursor"); c != "" {
			at, id, err := audit.DecodeCursor(c)
			if err != nil {
				rs.Error(w, r, err)
				return
			}
			params.BeforeAt, params.BeforeID = &at, &id
		}
		var out []adminUser
		next := ""
		err := d.store.InTenant(r.Context(), t.ID, func(q *sqlcgen.Queries) error {
			rows, err := q.ListUsers(r.Context(), params)
			if err != nil {
				return err
			}
			out = make([]adminUser, 0, len(rows))
			for i, u := range rows {
				if i == limit {
					next = audit.EncodeCursor(rows[i-1].CreatedAt, rows[i-1].ID)
					break
				}
				out = append(out, adminUser{ID: u.ID, Email: u.Email, Name: u.Name, EmailVerified: u.EmailVerifiedAt != nil,
					EmailVerifiedAt: u.EmailVerifiedAt, Status: u.Status, Roles: u.Roles, MFA: u.Mfa, SSO: u.Sso, CreatedAt: u.CreatedAt, LastLoginAt: u.LastLoginAt})
			}
			return nil
		}, store.ReadOnly(), store.Idempotent())
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, map[string]any{"users": out, "next_cursor": next})
	}
}

var errUserNotFound = apperr.New(apperr.NotFound, "not_found", "There is no such user.")

// userParam reads {id} and checks the user exists in this tenant (404 otherwise, also for
// ids of other tenants).
func userParam(rs *responder, d adminDeps, w http.ResponseWriter, r *http.Request) (sqlcgen.User, bool) {
	t, _ := TenantFrom(r.Context())
	id, err := uuid.Parse(chi.URLParam(r, "id"))
	if err != nil {
		rs.Error(w, r, errUserNotFound)
		return sqlcgen.User{}, false
	}
	var u sqlcgen.User
	err = d.store.InTenant(r.Context(), t.ID, func(q *sqlcgen.Queries) error {
		var err error
		u, err = q.GetUserByID(r.Context(), id)
		if store.IsNotFound(err) {
			return errUserNotFound
		}
		return err
	}, store.ReadOnly(), store.Idempotent())
	if err != nil {
		rs.Error(w, r, err)
		return sqlcgen.User{}, false
	}
	return u, true
}

func handleAdminGetUser(rs *responder, d adminDeps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := userParam(rs, d, w, r)
		if !ok {
			return
		}
		roles, err := d.authz.UserRoles(r.Context(), u.TenantID, u.ID)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, map[string]any{"user": adminUser{ID: u.ID, Email: u.Email, Name: u.Name, EmailVerified: u.EmailVerifiedAt != nil,
			EmailVerifiedAt: u.EmailVerifiedAt, Status: u.Status, Roles: roles, CreatedAt: u.CreatedAt, LastLoginAt: u.LastLoginAt}})
	}
}

func handleAdminUserSessions(rs *responder, d adminDeps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := userParam(rs, d, w, r)
		if !ok {
			return
		}
		list, err := d.sessions.List(r.Context(), session.Principal{TenantID: u.TenantID, UserID: u.ID})
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, map[string]any{"sessions": list})
	}
}

func handleAdminRevokeUserSessions(rs *responder, d adminDeps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := userParam(rs, d, w, r)
		if !ok {
			return
		}
		n, err := d.sessions.RevokeAllOf(r.Context(), u.TenantID, u.ID, "admin", who(r))
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, map[string]int{"revoked": n})
	}
}

func handleAdminSetRoles(rs *responder, d adminDeps) http.HandlerFunc {
	type request struct {
		Roles []string `json:"roles"`
	}
	return func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := decodeJSON(r, &req); err != nil {
			rs.Error(w, r, err)
			return
		}
		u, ok := userParam(rs, d, w, r)
		if !ok {
			return
		}
		p, _ := PrincipalFrom(r.Context())
		isOwner, err := d.authz.IsOwner(r.Context(), p.TenantID, p.UserID)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		if req.Roles == nil {
			req.Roles = []string{}
		}
		err = d.store.InTenant(r.Context(), u.TenantID, func(q *sqlcgen.Queries) error {
			if err := authz.SetRoles(r.Context(), q, u.ID, req.Roles, isOwner); err != nil {
				return err
			}
			return audit.Record(r.Context(), q, who(r), audit.Event{Action: audit.RoleAssigned, SubjectID: u.ID, SubjectLabel: u.Email,
				Details: map[string]any{"roles": req.Roles}})
		})
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, map[string]any{"roles": req.Roles})
	}
}

func handleAdminAudit(rs *responder, d adminDeps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := TenantFrom(r.Context())
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
		events, next, err := audit.List(r.Context(), d.store, t.ID, f)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, map[string]any{"events": events, "next_cursor": next})
	}
}

func handleAdminListInvitations(rs *responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		t, _ := TenantFrom(r.Context())
		list, err := accounts.Invitations(r.Context(), t)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusOK, map[string]any{"invitations": list})
	}
}

func handleAdminInvite(rs *responder, accounts *account.Service, d adminDeps) http.HandlerFunc {
	type request struct {
		Email string `json:"email"`
		Role  string `json:"role"`
	}
	return func(w http.ResponseWriter, r *http.Request) {
		var req request
		if err := decodeJSON(r, &req); err != nil {
			rs.Error(w, r, err)
			return
		}
		p, _ := PrincipalFrom(r.Context())
		t, _ := TenantFrom(r.Context())
		isOwner, err := d.authz.IsOwner(r.Context(), p.TenantID, p.UserID)
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

func handleAdminRevokeInvitation(rs *responder, accounts *account.Service) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := uuid.Parse(chi.URLParam(r, "id"))
		if err != nil {
			rs.Error(w, r, apperr.New(apperr.NotFound, "not_found", "There is no such open invitation."))
			return
		}
		p, _ := PrincipalFrom(r.Context())
		t, _ := TenantFrom(r.Context())
		if err := accounts.RevokeInvitation(r.Context(), t, p, id); err != nil {
			rs.Error(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func handleAdminResendVerification(rs *responder, accounts *account.Service, d adminDeps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := userParam(rs, d, w, r)
		if !ok {
			return
		}
		t, _ := TenantFrom(r.Context())
		if err := accounts.AdminResendVerification(r.Context(), t, u.ID); err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusAccepted, statusBody{Status: "accepted"})
	}
}

func handleAdminResetMFA(rs *responder, accounts *account.Service, d adminDeps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := userParam(rs, d, w, r)
		if !ok {
			return
		}
		t, _ := TenantFrom(r.Context())
		if err := accounts.AdminResetMFA(r.Context(), t, u.ID, who(r)); err != nil {
			rs.Error(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// userFilters reads status, verified and mfa (true/false) from the query.
func userFilters(r *http.Request, p *sqlcgen.ListUsersParams) error {
	q := r.URL.Query()
	if v := q.Get("status"); v != "" {
		if v != "active" && v != "disabled" && v != "pending_deletion" {
			return apperr.New(apperr.Invalid, "invalid_request", "status is active, disabled or pending_deletion.")
		}
		p.Status = &v
	}
	for name, dst := range map[string]**bool{"verified": &p.Verified, "mfa": &p.WithMfa, "sso": &p.WithSso} {
		switch q.Get(name) {
		case "":
		case "true", "yes":
			b := true
			*dst = &b
		case "false", "no":
			b := false
			*dst = &b
		default:
			return apperr.New(apperr.Invalid, "invalid_request", name+" is true or false.")
		}
	}
	return nil
}

// handleAdminDeleteUser schedules a user's deletion with the tenant's grace period, or
// purges at once with ?immediate=true; the user is told by mail when there is a grace period.
func handleAdminDeleteUser(rs *responder, accounts *account.Service, d adminDeps) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, ok := userParam(rs, d, w, r)
		if !ok {
			return
		}
		t, _ := TenantFrom(r.Context())
		grace := time.Duration(t.Policy.Deletion.GraceDays) * 24 * time.Hour
		if r.URL.Query().Get("immediate") == "true" {
			grace = 0
		}
		del, err := accounts.RequestDeletion(r.Context(), t, u.ID, who(r), grace)
		if err != nil {
			rs.Error(w, r, err)
			return
		}
		rs.JSON(w, http.StatusAccepted, del)
	}
}
