package migrate_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse-id/gatehouse/internal/migrate"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

type schemaState struct {
	Tables  map[string]string // table -> owner
	Version uint
}

func state(t *testing.T, d *testutil.DB) schemaState {
	t.Helper()
	ctx := context.Background()
	rows, err := d.Admin.Query(ctx, `SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	s := schemaState{Tables: map[string]string{}}
	for rows.Next() {
		var n, o string
		if err := rows.Scan(&n, &o); err != nil {
			t.Fatal(err)
		}
		s.Tables[n] = o
	}
	mg, err := migrate.Open(d.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer mg.Close()
	v, dirty, err := mg.Version()
	if err != nil || dirty {
		t.Fatalf("version: %v dirty=%v", err, dirty)
	}
	s.Version = v
	return s
}

// TestUpDownUp: migrations apply, revert completely, and apply again to the same schema;
// running up twice is a no-op.
func TestUpDownUp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.EmptyDB(t)

	if err := migrate.Up(ctx, d.AdminURL); err != nil {
		t.Fatal(err)
	}
	first := state(t, d)
	if first.Version != migrate.Latest() || migrate.Latest() == 0 {
		t.Fatalf("version %d, latest %d", first.Version, migrate.Latest())
	}
	for tbl, owner := range first.Tables {
		if owner != migrate.OwnerRole {
			t.Errorf("table %s owned by %s, want %s", tbl, owner, migrate.OwnerRole)
		}
	}
	if err := migrate.Up(ctx, d.AdminURL); err != nil {
		t.Fatalf("second up: %v", err)
	}

	if err := migrate.DownAll(ctx, d.AdminURL); err != nil {
		t.Fatal(err)
	}
	down := state(t, d)
	if d := cmp.Diff(map[string]string{"schema_migrations": migrate.OwnerRole}, down.Tables); d != "" || down.Version != 0 {
		t.Fatalf("after down, version %d, tables (-want +got):\n%s", down.Version, d)
	}

	if err := migrate.Up(ctx, d.AdminURL); err != nil {
		t.Fatalf("up after down: %v", err)
	}
	if d := cmp.Diff(first, state(t, d)); d != "" {
		t.Fatalf("up -> down -> up differs (-first +again):\n%s", d)
	}
}

// TestStepwiseDown: each down migration reverts exactly one step.
func TestStepwiseDown(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.EmptyDB(t)
	if err := migrate.Up(ctx, d.AdminURL); err != nil {
		t.Fatal(err)
	}
	mg, err := migrate.Open(d.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer mg.Close()
	for v := migrate.Latest(); v > 0; {
		if err := mg.Down(1); err != nil {
			t.Fatalf("down from %d: %v", v, err)
		}
		got, _, err := mg.Version()
		if err != nil || got >= v {
			t.Fatalf("down from %d reached %d (%v)", v, got, err)
		}
		v = got
	}
}

func TestRolesRefuseAppRole(t *testing.T) {
	t.Parallel()
	d := testutil.PackageDB(t)
	err := migrate.EnsureRoles(context.Background(), d.AppURL)
	if err == nil || !strings.Contains(err.Error(), "gatehouse_app") {
		t.Fatalf("migrating as gatehouse_app: %v", err)
	}
}
