// Package admin is the tenant administrator's side of Gatehouse: the user directory, role
// assignment, the overview, the roles page and the audit log with its export. Every
// operation is one method that owns its transaction; the HTTP layer only decodes, calls
// and encodes (the JSON API and the portal pages call the same methods).
package admin

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// Service runs the administration operations of a tenant.
type Service struct {
	store *store.Store
	authz *authz.Service
}

// NewService returns the admin service. Every dependency is required.
func NewService(st *store.Store, az *authz.Service) (*Service, error) {
	if st == nil || az == nil {
		return nil, errors.New("admin: store and authz are required")
	}
	return &Service{store: st, authz: az}, nil
}

// ErrUserNotFound answers an id that is not a user of this tenant (ids of other tenants
// included).
var ErrUserNotFound = apperr.New(apperr.NotFound, "not_found", "There is no such user.")

// User is a user as the directory shows it.
type User struct {
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
	// Role is the user's first role, for the portal's one-role select ("" for none).
	Role string `json:"-"`
}

func userFromListRow(u sqlcgen.ListUsersRow) User {
	return User{ID: u.ID, Email: u.Email, Name: u.Name, EmailVerified: u.EmailVerifiedAt != nil, EmailVerifiedAt: u.EmailVerifiedAt,
		Status: u.Status, Roles: nonNil(u.Roles), MFA: u.MFA, SSO: nonNil(u.SSO), CreatedAt: u.CreatedAt, LastLoginAt: u.LastLoginAt}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// User returns one user of the tenant with roles. Errors: not_found.
func (s *Service) User(ctx context.Context, t tenant.Tenant, id uuid.UUID) (User, error) {
	var u User
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		row, err := q.GetUserByID(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return ErrUserNotFound
		}
		if err != nil {
			return fmt.Errorf("get user: %w", err)
		}
		roles, err := q.GetUserRoles(ctx, id)
		if err != nil {
			return fmt.Errorf("user roles: %w", err)
		}
		u = User{ID: row.ID, Email: row.Email, Name: row.Name, EmailVerified: row.EmailVerifiedAt != nil, EmailVerifiedAt: row.EmailVerifiedAt,
			Status: row.Status, Roles: nonNil(roles), SSO: []string{}, CreatedAt: row.CreatedAt, LastLoginAt: row.LastLoginAt}
		if len(roles) > 0 {
			u.Role = roles[0]
		}
		return nil
	}, store.ReadOnly(), store.Idempotent())
	return u, err
}

// SetRoles replaces a user's roles on behalf of actor and records the assignment in the
// audit log, in one transaction. Only owners grant or take away the owner role, and the
// tenant keeps an owner. roles must not be nil ([] removes every role).
// Errors: not_found, invalid_request, invalid_role, owner_required, last_owner.
func (s *Service) SetRoles(ctx context.Context, t tenant.Tenant, actor audit.Who, userID uuid.UUID, roles []string) error {
	if roles == nil {
		return apperr.New(apperr.Invalid, "invalid_request", "roles is required: a list of roles ([] for none).")
	}
	return s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		u, err := q.GetUserByID(ctx, userID)
		if errors.Is(err, store.ErrNotFound) {
			return ErrUserNotFound
		}
		if err != nil {
			return fmt.Errorf("get user: %w", err)
		}
		actorRoles, err := q.GetUserRoles(ctx, actor.ActorID)
		if err != nil {
			return fmt.Errorf("actor roles: %w", err)
		}
		if err := authz.SetRoles(ctx, q, u.ID, roles, hasRole(actorRoles, authz.Owner)); err != nil {
			return err
		}
		return audit.Record(ctx, q, actor, audit.Event{Action: audit.RoleAssigned, SubjectID: u.ID, SubjectLabel: u.Email,
			Details: map[string]any{"roles": roles}})
	})
}

// IsOwner reports whether userID holds the owner role (invitations of owners need one).
func (s *Service) IsOwner(ctx context.Context, t tenant.Tenant, userID uuid.UUID) (bool, error) {
	return s.authz.IsOwner(ctx, t.ID, userID)
}

func hasRole(roles []string, role string) bool {
	for _, r := range roles {
		if r == role {
			return true
		}
	}
	return false
}
