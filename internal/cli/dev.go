package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/app"
	"github.com/gatehouse-id/gatehouse/internal/config"
	"github.com/gatehouse-id/gatehouse/internal/migrate"
	"github.com/gatehouse-id/gatehouse/internal/pgserver"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// Demo tenant seeded by dev.
const (
	demoSlug       = "acme"
	demoName       = "Acme"
	demoAdminEmail = "admin@acme.example"
)

func runDev(ctx context.Context, args []string, env Env) error {
	fs := newFlags("dev", env)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	dataDir := fs.String("data-dir", ".gatehouse", "directory for the private PostgreSQL and captured mail")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	devEnv := func(k string) string {
		if v := env.Getenv(k); v != "" {
			return v
		}
		return map[string]string{
			"GATEHOUSE_PUBLIC_SCHEME": "http",
			"GATEHOUSE_LOG_FORMAT":    "text",
			"GATEHOUSE_MAIL":          "dir:" + filepath.Join(*dataDir, "mail"),
		}[k]
	}
	cfg, err := config.Load(devEnv)
	if err != nil {
		return err
	}
	cfg.Addr = *addr
	logger := newLogger(cfg, env.Stderr)
	if err := os.MkdirAll(*dataDir, 0o755); err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}

	if cfg.DatabaseURL == "" {
		logger.Info("starting private PostgreSQL", "dir", filepath.Join(*dataDir, "pg"))
		pg, err := pgserver.Start(ctx, filepath.Join(*dataDir, "pg"), pgserver.Options{Durable: true})
		if err != nil {
			return err
		}
		if pg.Started {
			defer func() {
				logger.Info("stopping private PostgreSQL")
				if err := pg.Stop(context.WithoutCancel(ctx)); err != nil {
					logger.Error("stop private PostgreSQL", "err", err)
				}
			}()
		}
		if err := ensureDatabase(ctx, pg.URL("postgres", "postgres"), "gatehouse"); err != nil {
			return err
		}
		cfg.AdminDatabaseURL = pg.URL("postgres", "gatehouse")
		cfg.DatabaseURL = pg.URL(migrate.AppRole, "gatehouse")
	}
	if err := migrate.Up(ctx, cfg.AdminDatabaseURL); err != nil {
		return err
	}
	a, err := app.New(ctx, cfg, logger, devEnv)
	if err != nil {
		return err
	}
	if err := seedDemo(ctx, a.Tenants); err != nil {
		a.Close()
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		a.Close()
		return fmt.Errorf("--addr: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	fmt.Fprintf(env.Stdout, `
Gatehouse dev is running.
  Demo tenant:   http://%s.%s:%d/
  Operator host: http://%s:%d/
  Health:        http://%s.%s:%d/healthz
  CLI database:  DATABASE_URL='%s'
Press Ctrl-C to stop.
`, demoSlug, cfg.BaseDomain, port, cfg.BaseDomain, port, demoSlug, cfg.BaseDomain, port, cfg.DatabaseURL)
	return a.Serve(ctx, ln)
}

// seedDemo creates the demo tenant once; later runs leave it (and any changes) alone.
func seedDemo(ctx context.Context, tenants *tenant.Service) error {
	if _, err := tenants.Get(ctx, demoSlug); err == nil {
		return nil
	} else if !tenant.IsNotFound(err) {
		return err
	}
	_, err := tenants.Create(ctx, tenant.CreateInput{Slug: demoSlug, Name: demoName, AdminEmail: demoAdminEmail})
	if errors.Is(err, tenant.ErrSlugTaken) {
		return nil // another dev process seeded it first
	}
	return err
}

// ensureDatabase creates database name when it does not exist.
func ensureDatabase(ctx context.Context, serverURL, name string) error {
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return fmt.Errorf("connect to private PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	if err != nil && !strings.Contains(err.Error(), "already exists") {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}
