package store

import (
	"context"
	"fmt"
)

// CheckAppRole refuses a connection whose role would defeat row-level security: a
// superuser, a role with BYPASSRLS, or a role that owns (or may act as the owner of)
// tables in the schema. `serve` and `dev` call it at start.
func (s *Store) CheckAppRole(ctx context.Context) error {
	var role string
	var super, bypass bool
	var owned int
	err := s.pool.QueryRow(ctx, `
		SELECT r.rolname, r.rolsuper, r.rolbypassrls,
		       (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
		           AND pg_has_role(current_user, c.relowner, 'MEMBER'))
		  FROM pg_roles r WHERE r.rolname = current_user`).Scan(&role, &super, &bypass, &owned)
	if err != nil {
		return fmt.Errorf("check database role: %w", err)
	}
	switch {
	case super:
		return fmt.Errorf("refusing to serve as PostgreSQL role %q: it is a superuser, and superusers bypass row-level security; set DATABASE_URL to the gatehouse_app role", role)
	case bypass:
		return fmt.Errorf("refusing to serve as PostgreSQL role %q: it has BYPASSRLS; set DATABASE_URL to the gatehouse_app role", role)
	case owned > 0:
		return fmt.Errorf("refusing to serve as PostgreSQL role %q: it owns (or is a member of the owner of) %d tables and could turn row-level security off; set DATABASE_URL to the gatehouse_app role", role, owned)
	}
	return nil
}

// SchemaVersion reads golang-migrate's version row (readable by gatehouse_app).
func (s *Store) SchemaVersion(ctx context.Context) (version int64, dirty bool, err error) {
	err = s.pool.QueryRow(ctx, "SELECT version, dirty FROM schema_migrations LIMIT 1").Scan(&version, &dirty)
	if err != nil {
		return 0, false, fmt.Errorf("read schema version: %w", err)
	}
	return version, dirty, nil
}
