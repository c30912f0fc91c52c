package store_test

import (
	"context"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
)

// The webhooks' tables (migration 000018), added to the isolation fixtures.
func init() {
	for name, f := range map[string]func(ctx context.Context, tx pgx.Tx, tenantID uuid.UUID) error{
		"webhook_endpoints": func(ctx context.Context, tx pgx.Tx, tid uuid.UUID) error {
			_, err := tx.Exec(ctx, `INSERT INTO webhook_endpoints (tenant_id, url, secret_key_id, secret_sealed) VALUES ($1, 'https://hooks.example/in', 'k', '\x00')`, tid)
			return err
		},
		"webhook_deliveries": func(ctx context.Context, tx pgx.Tx, tid uuid.UUID) error {
			var ev uuid.UUID
			if err := tx.QueryRow(ctx, `INSERT INTO events (tenant_id, type, data) VALUES ($1, 'user.updated', '{}') RETURNING id`, tid).Scan(&ev); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, `INSERT INTO webhook_deliveries (tenant_id, event_id, endpoint_id, state) VALUES ($1, $2, gen_random_uuid(), 'delivered')`, tid, ev)
			return err
		},
	} {
		fixtures[name] = f
	}
}
