// Package migrate creates Gatehouse's database roles and applies the embedded migrations
// (db/migrations) with golang-migrate. Migrations run as gatehouse_owner, so the owner role
// owns every table; gatehouse_app only receives DML grants.
package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"

	"github.com/golang-migrate/migrate/v4"
	pgxmigrate "github.com/golang-migrate/migrate/v4/database/pgx/v5"
	"github.com/golang-migrate/migrate/v4/source/iofs"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/gatehouse-id/gatehouse/db"
)

// Role names, fixed by the operating contract.
const (
	OwnerRole = "gatehouse_owner"
	AppRole   = "gatehouse_app"
)

// EnsureRoles creates gatehouse_owner (NOLOGIN, owns the schema) and gatehouse_app (LOGIN,
// DML only, no BYPASSRLS) when missing, and grants what each needs on the current database.
// adminURL must be a superuser or a role with CREATEROLE that may grant on schema public.
func EnsureRoles(ctx context.Context, adminURL string) error {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return fmt.Errorf("connect as admin: %w", err)
	}
	defer conn.Close(ctx)

	var me string
	var super bool
	if err := conn.QueryRow(ctx, "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&me, &super); err != nil {
		return fmt.Errorf("read admin role: %w", err)
	}
	if me == AppRole {
		return fmt.Errorf("migrations must not run as %s: set GATEHOUSE_ADMIN_DATABASE_URL to an owner or superuser connection", AppRole)
	}
	if me == OwnerRole {
		return nil // roles exist; the owner cannot create them and needs no grants
	}
	create := []string{
		"CREATE ROLE " + OwnerRole + " NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE",
		"CREATE ROLE " + AppRole + " LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT",
	}
	for _, stmt := range create {
		if _, err := conn.Exec(ctx, stmt); err != nil && !alreadyExists(err) {
			return fmt.Errorf("%s: %w", stmt, err)
		}
	}
	grants := []string{
		"GRANT USAGE, CREATE ON SCHEMA public TO " + OwnerRole,
		"GRANT USAGE ON SCHEMA public TO " + AppRole,
	}
	if !super {
		grants = append(grants, "GRANT "+OwnerRole+" TO "+pgx.Identifier{me}.Sanitize())
	}
	for _, stmt := range grants {
		if _, err := conn.Exec(ctx, stmt); err != nil && !alreadyExists(err) {
			return fmt.Errorf("%s: %w", stmt, err)
		}
	}
	return nil
}

// alreadyExists is true for the errors of a role created concurrently by another process
// (duplicate_object, or the unique index of pg_authid when both raced past the check).
func alreadyExists(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "42710" || pe.Code == "23505" || pe.Code == "XX000" && pe.Message == "tuple concurrently updated")
}

// Migrator applies migrations as gatehouse_owner.
type Migrator struct {
	m  *migrate.Migrate
	db *sql.DB
}

// Open prepares a migrator on adminURL. Close it when done.
func Open(adminURL string) (*Migrator, error) {
	cc, err := pgx.ParseConfig(adminURL)
	if err != nil {
		return nil, fmt.Errorf("parse admin database url: %w", err)
	}
	// Every object the migrations create is owned by gatehouse_owner, not by whoever runs them.
	cc.RuntimeParams["role"] = OwnerRole
	cc.RuntimeParams["application_name"] = "gatehouse-migrate"
	sqlDB := stdlib.OpenDB(*cc)
	drv, err := pgxmigrate.WithInstance(sqlDB, &pgxmigrate.Config{})
	if err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("migration driver: %w", err)
	}
	src, err := iofs.New(db.Migrations, "migrations")
	if err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("migration source: %w", err)
	}
	m, err := migrate.NewWithInstance("iofs", src, "pgx5", drv)
	if err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return &Migrator{m: m, db: sqlDB}, nil
}

// Close releases the connection.
func (mg *Migrator) Close() error {
	srcErr, dbErr := mg.m.Close()
	return errors.Join(srcErr, dbErr)
}

// Up applies every pending migration. It is a no-op when the schema is current.
func (mg *Migrator) Up() error {
	if err := mg.m.Up(); err != nil && !errors.Is(err, migrate.ErrNoChange) {
		return fmt.Errorf("migrate up: %w", err)
	}
	return nil
}

// Down reverts steps migrations, or all of them when steps <= 0.
func (mg *Migrator) Down(steps int) error {
	var err error
	if steps <= 0 {
		err = mg.m.Down()
	} else {
		err = mg.m.Steps(-steps)
	}
	if err != nil && !errors.Is(err, migrate.ErrNoChange) && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("migrate down: %w", err)
	}
	return nil
}

// Version reports the applied version (0 when none) and whether a migration failed midway.
func (mg *Migrator) Version() (uint, bool, error) {
	v, dirty, err := mg.m.Version()
	if errors.Is(err, migrate.ErrNilVersion) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("migrate version: %w", err)
	}
	return v, dirty, nil
}

// Up creates the roles and applies every pending migration, then River's job-queue
// migrations: what `gatehouse migrate up` does.
func Up(ctx context.Context, adminURL string) error {
	if err := EnsureRoles(ctx, adminURL); err != nil {
		return err
	}
	mg, err := Open(adminURL)
	if err != nil {
		return err
	}
	defer mg.Close()
	if err := mg.Up(); err != nil {
		return err
	}
	return riverMigrate(ctx, adminURL, true)
}

// DownAll reverts every migration, River's job tables included: all data is gone.
func DownAll(ctx context.Context, adminURL string) error {
	mg, err := Open(adminURL)
	if err != nil {
		return err
	}
	defer mg.Close()
	if err := mg.Down(0); err != nil {
		return err
	}
	return riverMigrate(ctx, adminURL, false)
}

var fileVersion = regexp.MustCompile(`^(\d+)_.*\.up\.sql$`)

// Latest is the highest migration version embedded in the binary.
func Latest() uint {
	entries, _ := fs.ReadDir(db.Migrations, "migrations")
	var latest uint64
	for _, e := range entries {
		if m := fileVersion.FindStringSubmatch(e.Name()); m != nil {
			if v, err := strconv.ParseUint(m[1], 10, 64); err == nil && v > latest {
				latest = v
			}
		}
	}
	return uint(latest)
}
