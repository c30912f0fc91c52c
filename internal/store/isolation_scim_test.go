package store_test

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// The SCIM directories' tables (migrations 000019, 000024), added to the isolation fixtures.
func init() {
	for name, f := range map[string]func(ctx context.Context, tx pgx.Tx, tenantID uuid.UUID) error{
		"directories":      withDirectory(`SELECT $1::uuid, $2::uuid`),
		"directory_tokens": withDirectory(`INSERT INTO directory_tokens (tenant_id, directory_id, token_hash, hint) VALUES ($1, $2, sha256(gen_random_uuid()::text::bytea), 'x')`),
		"directory_users": withDirectory(`WITH u AS (INSERT INTO users (tenant_id, email) VALUES ($1, gen_random_uuid()::text || '@example.com') RETURNING id, email)
		INSERT INTO directory_users (tenant_id, user_id, directory_id, user_name) SELECT $1, u.id, $2, u.email FROM u`),
		"directory_user_emails": withDirectory(`WITH u AS (INSERT INTO users (tenant_id, email) VALUES ($1, gen_random_uuid()::text || '@example.com') RETURNING id, email),
		du AS (INSERT INTO directory_users (tenant_id, user_id, directory_id, user_name) SELECT $1, u.id, $2, u.email FROM u RETURNING user_id, user_name)
		INSERT INTO directory_user_emails (tenant_id, user_id, value_key) SELECT $1, du.user_id, du.user_name FROM du`),
		"directory_groups": withDirectory(`INSERT INTO directory_groups (tenant_id, directory_id, display_name) VALUES ($1, $2, 'Engineering')`),
		"directory_group_members": withDirectory(`WITH g AS (INSERT INTO directory_groups (tenant_id, directory_id, display_name) VALUES ($1, $2, 'Sales') RETURNING id),
		u AS (INSERT INTO users (tenant_id, email) VALUES ($1, gen_random_uuid()::text || '@example.com') RETURNING id)
		INSERT INTO directory_group_members (tenant_id, group_id, user_id) SELECT $1, g.id, u.id FROM g, u`),
		"directory_requests": withDirectory(`INSERT INTO directory_requests (tenant_id, directory_id, method, path, status, latency_ms) VALUES ($1, $2, 'GET', '/Users', 200, 3)`),
	} {
		fixtures[name] = f
	}
}

// withDirectory makes a fixture that inserts a SCIM directory, then runs sql with ($1 tenant, $2 directory).
func withDirectory(sql string) func(context.Context, pgx.Tx, uuid.UUID) error {
	return func(ctx context.Context, tx pgx.Tx, tid uuid.UUID) error {
		var did uuid.UUID
		if err := tx.QueryRow(ctx, `INSERT INTO directories (tenant_id, name) VALUES ($1, 'Okta') RETURNING id`, tid).Scan(&did); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, sql, tid, did)
		return err
	}
}
