// Package authz decides what a user may do in their tenant: casbin RBAC with domains
// (domain = tenant), built-in roles owner, admin and member, role bindings stored in the
// tenant's role_bindings table (read through a small casbin adapter over sqlc). Each
// process caches one enforcer per tenant and drops it when any node changes a binding
// (NOTIFY gatehouse_authz_changed); while the listener is down nothing is cached.
package authz

import (
	"bufio"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
	"github.com/casbin/casbin/v2/persist"
	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/events"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
)

//go:embed model.conf
var modelText string

//go:embed policy.csv
var policyText string

// Permission is something a role allows.
type Permission string

// The permissions.
const (
	UsersRead      Permission = "users.read"
	UsersManage    Permission = "users.manage"
	UsersDelete    Permission = "users.delete"
	SessionsRevoke Permission = "sessions.revoke"
	PolicyUpdate   Permission = "policy.update"
	SSOConfigure   Permission = "sso.configure"
	AuditRead      Permission = "audit.read"
	RolesAssign    Permission = "roles.assign"
	BrandingUpdate Permission = "branding.update"
	AppsManage     Permission = "apps.manage"
	// DirectoriesManage creates and removes SCIM directories and their tokens.
	DirectoriesManage Permission = "directories.manage"
	// WebhooksManage covers the webhook endpoints and the events pull API.
	WebhooksManage Permission = "webhooks.manage"
)

// Roles.
const (
	Owner  = "owner"
	Admin  = "admin"
	Member = "member"
)

// Roles lists the built-in roles.
var Roles = []string{Owner, Admin, Member}

// ChangedChannel carries the tenant id whose bindings changed.
const ChangedChannel = "gatehouse_authz_changed"

// Service answers permission questions.
type Service struct {
	store   *store.Store
	healthy func() bool

	mu         sync.Mutex
	enforcers  map[uuid.UUID]*casbin.SyncedEnforcer
	generation uint64
}

// NewService returns the authorisation service, registered on listener for changes.
func NewService(st *store.Store, listener *store.Listener) *Service {
	s := &Service{store: st, enforcers: map[uuid.UUID]*casbin.SyncedEnforcer{}}
	if listener != nil {
		s.healthy = listener.Healthy
		listener.Handle(ChangedChannel, s.drop, s.dropAll)
	}
	return s
}

func (s *Service) drop(payload string) {
	id, err := uuid.Parse(payload)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.generation++
	if err != nil {
		clear(s.enforcers)
		return
	}
	delete(s.enforcers, id)
}

// Changed drops this process's cached bindings of a tenant at once, after a commit that
// changed them (other processes learn it from the broadcast).
func (s *Service) Changed(tenantID uuid.UUID) { s.drop(tenantID.String()) }

func (s *Service) dropAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.generation++
	clear(s.enforcers)
}

func (s *Service) enforcer(ctx context.Context, tenantID uuid.UUID) (*casbin.SyncedEnforcer, error) {
	cache := s.healthy != nil && s.healthy()
	s.mu.Lock()
	e, ok := s.enforcers[tenantID]
	gen := s.generation
	s.mu.Unlock()
	if ok && cache {
		return e, nil
	}
	m, err := model.NewModelFromString(modelText)
	if err != nil {
		return nil, fmt.Errorf("casbin model: %w", err)
	}
	e, err = casbin.NewSyncedEnforcer(m, &adapter{ctx: ctx, store: s.store, tenantID: tenantID})
	if err != nil {
		return nil, fmt.Errorf("casbin enforcer: %w", err)
	}
	if cache {
		s.mu.Lock()
		if s.generation == gen {
			s.enforcers[tenantID] = e
		}
		s.mu.Unlock()
	}
	return e, nil
}

// Can reports whether userID may do perm in the tenant.
func (s *Service) Can(ctx context.Context, tenantID, userID uuid.UUID, perm Permission) (bool, error) {
	e, err := s.enforcer(ctx, tenantID)
	if err != nil {
		return false, err
	}
	return e.Enforce(userID.String(), tenantID.String(), string(perm))
}

// UserRoles returns the user's roles in the tenant.
func (s *Service) UserRoles(ctx context.Context, tenantID, userID uuid.UUID) ([]string, error) {
	e, err := s.enforcer(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	roles := e.GetRolesForUserInDomain(userID.String(), tenantID.String())
	slices.Sort(roles)
	return roles, nil
}

// IsOwner reports whether the user holds the owner role in the tenant.
func (s *Service) IsOwner(ctx context.Context, tenantID, userID uuid.UUID) (bool, error) {
	roles, err := s.UserRoles(ctx, tenantID, userID)
	return slices.Contains(roles, Owner), err
}

// PermissionsOf lists what a built-in role allows ("*" means everything).
func PermissionsOf(role string) []string {
	var out []string
	for _, line := range strings.Split(policyText, "\n") {
		f := splitCSV(line)
		if len(f) == 4 && f[0] == "p" && f[1] == role {
			out = append(out, f[3])
		}
	}
	if len(out) == 0 {
		out = []string{}
	}
	return out
}

// Errors of role changes and of deleting owners.
var (
	ErrUnknownRole      = apperr.New(apperr.Invalid, "invalid_role", "Roles are owner, admin and member.")
	ErrLastOwner        = apperr.New(apperr.Conflict, "last_owner", "A tenant keeps at least one owner: make someone else owner first.")
	ErrOwnerOnly        = apperr.New(apperr.Forbidden, "owner_required", "Only an owner can grant or take away the owner role.")
	ErrOwnerDeleteOnly  = apperr.New(apperr.Forbidden, "owner_required", "Only an owner can delete an owner's account.")
	ErrLastOwnerDeletes = apperr.New(apperr.Conflict, "last_owner", "You are this tenant's only owner: make someone else owner before deleting your account.")
)

// SetRoles replaces a user's roles inside the caller's tenant transaction, refusing to
// leave the tenant without an owner, and tells every node. actorIsOwner says whether the
// caller may touch the owner role.
func SetRoles(ctx context.Context, q *sqlcgen.Queries, userID uuid.UUID, roles []string, actorIsOwner bool) error {
	for _, r := range roles {
		if !slices.Contains(Roles, r) {
			return ErrUnknownRole
		}
	}
	cur, err := q.GetUserRoles(ctx, userID)
	if err != nil {
		return err
	}
	if (slices.Contains(cur, Owner) != slices.Contains(roles, Owner)) && !actorIsOwner {
		return ErrOwnerOnly
	}
	if slices.Contains(cur, Owner) && !slices.Contains(roles, Owner) {
		if n, err := otherActiveOwners(ctx, q, userID); err != nil {
			return err
		} else if n == 0 {
			return ErrLastOwner
		}
	}
	if err := q.RemoveUserRoles(ctx, userID); err != nil {
		return err
	}
	for _, r := range roles {
		if _, err := q.AddRoleBinding(ctx, sqlcgen.AddRoleBindingParams{UserID: userID, Role: r}); err != nil {
			return err
		}
	}
	for _, r := range cur {
		if !slices.Contains(roles, r) {
			if err := events.EmitRole(ctx, q, events.RoleRevoked, userID, r); err != nil {
				return err
			}
		}
	}
	for _, r := range roles {
		if !slices.Contains(cur, r) {
			if err := events.EmitRole(ctx, q, events.RoleGranted, userID, r); err != nil {
				return err
			}
		}
	}
	return q.NotifyAuthzChanged(ctx)
}

// CheckDeletion is called inside the transaction that schedules (or performs) the
// deletion of userID's account on behalf of actorID (the user themselves, an
// administrator, or uuid.Nil for the operator and the system). Deleting an owner needs an
// owner (or the operator), and the tenant keeps at least one owner whose account is not
// itself scheduled for deletion. Errors: owner_required, last_owner.
func CheckDeletion(ctx context.Context, q *sqlcgen.Queries, userID, actorID uuid.UUID) error {
	roles, err := q.GetUserRoles(ctx, userID)
	if err != nil {
		return err
	}
	if !slices.Contains(roles, Owner) {
		return nil
	}
	if actorID != uuid.Nil && actorID != userID {
		actorRoles, err := q.GetUserRoles(ctx, actorID)
		if err != nil {
			return err
		}
		if !slices.Contains(actorRoles, Owner) {
			return ErrOwnerDeleteOnly
		}
	}
	n, err := otherActiveOwners(ctx, q, userID)
	if err != nil {
		return err
	}
	if n == 0 {
		if actorID == userID {
			return ErrLastOwnerDeletes
		}
		return ErrLastOwner
	}
	return nil
}

// otherActiveOwners counts the owners other than userID whose accounts stay, locking them
// for the rest of the transaction.
func otherActiveOwners(ctx context.Context, q *sqlcgen.Queries, userID uuid.UUID) (int, error) {
	ids, err := q.LockActiveOwners(ctx)
	if err != nil {
		return 0, fmt.Errorf("lock owners: %w", err)
	}
	n := 0
	for _, id := range ids {
		if id != userID {
			n++
		}
	}
	return n, nil
}

// Grant adds one role inside the caller's transaction (tenant bootstrap, invitations).
func Grant(ctx context.Context, q *sqlcgen.Queries, userID uuid.UUID, role string) error {
	if !slices.Contains(Roles, role) {
		return ErrUnknownRole
	}
	n, err := q.AddRoleBinding(ctx, sqlcgen.AddRoleBindingParams{UserID: userID, Role: role})
	if err != nil {
		return err
	}
	if n > 0 {
		if err := events.EmitRole(ctx, q, events.RoleGranted, userID, role); err != nil {
			return err
		}
	}
	return q.NotifyAuthzChanged(ctx)
}

// adapter loads the built-in permissions and the tenant's bindings. Bindings change only
// through SetRoles and Grant, so the write methods refuse.
type adapter struct {
	ctx      context.Context
	store    *store.Store
	tenantID uuid.UUID
}

var errReadOnly = errors.New("authz: role bindings change through authz.SetRoles")

func (a *adapter) LoadPolicy(m model.Model) error {
	sc := bufio.NewScanner(strings.NewReader(policyText))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := persist.LoadPolicyArray(splitCSV(line), m); err != nil {
			return err
		}
	}
	return a.store.InTenant(a.ctx, a.tenantID, func(q *sqlcgen.Queries) error {
		rows, err := q.ListRoleBindings(a.ctx)
		if err != nil {
			return err
		}
		for _, r := range rows {
			if err := persist.LoadPolicyArray([]string{"g", r.UserID.String(), r.Role, a.tenantID.String()}, m); err != nil {
				return err
			}
		}
		return nil
	}, store.ReadOnly(), store.Idempotent())
}

func splitCSV(line string) []string {
	parts := strings.Split(line, ",")
	for i := range parts {
		parts[i] = strings.TrimSpace(parts[i])
	}
	return parts
}

func (a *adapter) SavePolicy(model.Model) error                              { return errReadOnly }
func (a *adapter) AddPolicy(string, string, []string) error                  { return errReadOnly }
func (a *adapter) RemovePolicy(string, string, []string) error               { return errReadOnly }
func (a *adapter) RemoveFilteredPolicy(string, string, int, ...string) error { return errReadOnly }
