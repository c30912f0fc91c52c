package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/gatehouse-id/gatehouse/internal/config"
	"github.com/gatehouse-id/gatehouse/internal/migrate"
)

func runMigrate(ctx context.Context, args []string, env Env) error {
	fs := newFlags("migrate", env)
	all := fs.Bool("all", false, "down: revert every migration (drops all data)")
	steps := fs.Int("steps", 1, "down: how many migrations to revert")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: gatehouse migrate up|down|version", errUsage)
	}
	cfg, err := config.Load(env.Getenv)
	if err != nil {
		return err
	}
	if cfg.AdminDatabaseURL == "" {
		return errors.New("GATEHOUSE_ADMIN_DATABASE_URL (or DATABASE_URL): not set")
	}
	switch pos[0] {
	case "up":
		if err := migrate.Up(ctx, cfg.AdminDatabaseURL); err != nil {
			return err
		}
	case "down":
		if *all {
			if err := migrate.DownAll(ctx, cfg.AdminDatabaseURL); err != nil {
				return err
			}
			break
		}
		mg, err := migrate.Open(cfg.AdminDatabaseURL)
		if err != nil {
			return err
		}
		defer mg.Close()
		if err := mg.Down(*steps); err != nil {
			return err
		}
	case "version":
	default:
		return fmt.Errorf("%w: gatehouse migrate up|down|version", errUsage)
	}
	mg, err := migrate.Open(cfg.AdminDatabaseURL)
	if err != nil {
		return err
	}
	defer mg.Close()
	v, dirty, err := mg.Version()
	if err != nil {
		return err
	}
	fmt.Fprintf(env.Stdout, "schema version %d (binary has %d)", v, migrate.Latest())
	if dirty {
		fmt.Fprint(env.Stdout, ", DIRTY: a migration failed midway")
	}
	fmt.Fprintln(env.Stdout)
	return nil
}
