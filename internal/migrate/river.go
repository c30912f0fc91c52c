package migrate

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
)

// riverMigrate applies (up) or removes (down) River's job-queue tables at the version this
// binary was built with, as gatehouse_owner; gatehouse_app gets DML through the default
// privileges like every other table.
func riverMigrate(ctx context.Context, adminURL string, up bool) error {
	pc, err := pgxpool.ParseConfig(adminURL)
	if err != nil {
		return fmt.Errorf("parse admin database url: %w", err)
	}
	pc.ConnConfig.RuntimeParams["role"] = OwnerRole
	pc.ConnConfig.RuntimeParams["application_name"] = "gatehouse-migrate"
	pc.MaxConns = 2
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer pool.Close()
	m, err := rivermigrate.New(riverpgxv5.New(pool), nil)
	if err != nil {
		return fmt.Errorf("river migrator: %w", err)
	}
	dir, opts := rivermigrate.DirectionUp, &rivermigrate.MigrateOpts{}
	if !up {
		dir, opts = rivermigrate.DirectionDown, &rivermigrate.MigrateOpts{TargetVersion: -1}
	}
	if _, err := m.Migrate(ctx, dir, opts); err != nil {
		return fmt.Errorf("river migrate: %w", err)
	}
	return nil
}
