package admin

import (
	"context"
	"fmt"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// Counts are the overview's numbers.
type Counts struct {
	Users           int64 `json:"users"`
	Verified        int64 `json:"verified"`
	PendingDeletion int64 `json:"pending_deletion"`
	MFA             int64 `json:"mfa"`
	ActiveSessions  int64 `json:"active_sessions"`
}

// Overview is the portal's first page: the counts and the latest sign-ins.
type Overview struct {
	Counts Counts
	Logins []audit.View
}

// Overview returns the tenant's counts and its ten latest sign-ins.
func (s *Service) Overview(ctx context.Context, t tenant.Tenant) (Overview, error) {
	var o Overview
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		c, err := q.CountUsersByState(ctx)
		if err != nil {
			return fmt.Errorf("count users: %w", err)
		}
		o.Counts = Counts{Users: c.Users, Verified: c.Verified, PendingDeletion: c.PendingDeletion, MFA: c.MFA, ActiveSessions: c.ActiveSessions}
		return nil
	}, store.ReadOnly(), store.Idempotent())
	if err != nil {
		return Overview{}, err
	}
	if o.Logins, _, err = audit.List(ctx, s.store, t.ID, audit.Filter{Action: audit.SessionLogin, Limit: 10}); err != nil {
		return Overview{}, err
	}
	return o, nil
}

// Role is one role on the roles page: what it may do and who holds it.
type Role struct {
	Name        string
	Permissions []string
	Members     []string
}

// Roles lists every role with its permissions and every member (one grouped query, no
// cap: the page used to load the first 1000 users only).
func (s *Service) Roles(ctx context.Context, t tenant.Tenant) ([]Role, error) {
	var rows []sqlcgen.ListRoleMembersRow
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		var err error
		rows, err = q.ListRoleMembers(ctx)
		if err != nil {
			return fmt.Errorf("role members: %w", err)
		}
		return nil
	}, store.ReadOnly(), store.Idempotent())
	if err != nil {
		return nil, err
	}
	out := make([]Role, 0, len(authz.Roles))
	for _, name := range authz.Roles {
		r := Role{Name: name, Permissions: authz.PermissionsOf(name), Members: []string{}}
		for _, m := range rows {
			if m.Role == name {
				r.Members = append(r.Members, m.Email)
			}
		}
		out = append(out, r)
	}
	return out, nil
}
