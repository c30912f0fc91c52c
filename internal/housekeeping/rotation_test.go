package housekeeping_test

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/housekeeping"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestNextBatch: the rotation visits every tenant in turn, a bounded number per run,
// wrapping around; it continues after a tenant that was deleted meanwhile.
func TestNextBatch(t *testing.T) {
	all := make([]tenant.Tenant, 5)
	for i := range all {
		all[i].ID = uuid.New()
	}
	sorted := sortedIDs(all)
	seen := map[uuid.UUID]int{}
	var after *uuid.UUID
	var order []uuid.UUID
	for range 5 { // 5 rounds of 2 over 5 tenants: every tenant twice, in id order
		var b []tenant.Tenant
		b, after = housekeeping.NextBatch(all, after, 2)
		if len(b) != 2 || after == nil || *after != b[1].ID {
			t.Fatalf("batch of %d continuing after %v, want 2 continuing after its last", len(b), after)
		}
		for _, x := range b {
			seen[x.ID]++
			order = append(order, x.ID)
		}
	}
	for i, id := range sorted {
		if seen[id] != 2 {
			t.Fatalf("tenant %d visited %d times in 5 rounds, want 2: %v", i, seen[id], seen)
		}
	}
	if diff := cmp.Diff(append(slices.Clone(sorted), sorted...), order); diff != "" {
		t.Fatalf("visiting order (-id order twice, +got):\n%s", diff)
	}

	// The tenant the rotation stopped after is gone: it goes on with the next one.
	gone := sorted[2]
	rest := slices.DeleteFunc(slices.Clone(all), func(x tenant.Tenant) bool { return x.ID == gone })
	if b, _ := housekeeping.NextBatch(rest, &gone, 2); b[0].ID != sorted[3] || b[1].ID != sorted[4] {
		t.Fatalf("after a deleted tenant: %v, want the two that followed it", ids(b))
	}
	// No more tenants than a batch: all of them, and the position starts over.
	if b, next := housekeeping.NextBatch(all[:2], &gone, 200); len(b) != 2 || next != nil {
		t.Fatalf("fewer tenants than a batch: %d tenants, next %v", len(b), next)
	}
}

// TestRotationResumesFromStoredPosition: the rotation job advances through all tenants in
// batches across runs, wrapping around, and a new process (a restart, another leader)
// continues from the position stored in the database instead of the first tenant. The
// batch each run visited is read from its effect: the sweep deletes the tenant's expired
// rate-limit rows.
func TestRotationResumesFromStoredPosition(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.FreshDB(t) // no other tenants, no other job queue
	a := newApp(t, d, nil)
	for range 5 {
		testutil.NewTenant(t, d, "rot")
	}
	all, err := a.Tenants.List(ctx)
	if err != nil || len(all) != 5 {
		t.Fatalf("%d tenants (%v), want 5", len(all), err)
	}
	s := sortedIDs(all)
	kind := housekeeping.RotationArgs{}.Kind()
	runs := 0
	run := func(n *node) []uuid.UUID {
		t.Helper()
		if _, err := d.Admin.Exec(ctx, `INSERT INTO rate_limits (tenant_id, key, window_start, count, expires_at)
			SELECT id, 'housekeeping-test', '2000-01-01', 1, now() - interval '1 hour' FROM tenants
			ON CONFLICT DO NOTHING`); err != nil {
			t.Fatal(err)
		}
		if _, err := n.client.Insert(ctx, housekeeping.RotationArgs{}, nil); err != nil {
			t.Fatal(err)
		}
		runs++
		waitCompleted(t, d, kind, runs)
		var swept []uuid.UUID
		rows, err := d.Admin.Query(ctx, `SELECT id FROM tenants t WHERE NOT EXISTS (
			SELECT 1 FROM rate_limits r WHERE r.tenant_id = t.id AND r.key = 'housekeeping-test')`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		for rows.Next() {
			var id uuid.UUID
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			swept = append(swept, id)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return sortIDs(swept)
	}
	position := func() uuid.UUID {
		t.Helper()
		var id *uuid.UUID
		if err := d.Admin.QueryRow(ctx, `SELECT last_tenant_id FROM housekeeping_rotation`).Scan(&id); err != nil || id == nil {
			t.Fatalf("stored position %v (%v)", id, err)
		}
		return *id
	}

	first := startNode(t, d, "first", nil, workers(t, a, 2), nil)
	var visited []uuid.UUID
	for i, want := range [][]uuid.UUID{{s[0], s[1]}, {s[2], s[3]}, {s[0], s[4]}} {
		got := run(first)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("run %d swept (-want +got):\n%s", i+1, diff)
		}
		visited = append(visited, got...)
	}
	if diff := cmp.Diff(s, sortIDs(slices.Compact(sortIDs(visited)))); diff != "" {
		t.Fatalf("three runs did not visit every tenant (-want +got):\n%s", diff)
	}
	if p := position(); p != s[0] {
		t.Fatalf("stored position %s, want the last tenant of the third batch %s", p, s[0])
	}

	// A restart: new workers in a new client continue after the stored position.
	first.stop(t)
	second := startNode(t, d, "second", nil, workers(t, a, 2), nil)
	if diff := cmp.Diff([]uuid.UUID{s[1], s[2]}, run(second)); diff != "" {
		t.Fatalf("after a restart the rotation swept (-want: where it stopped +got):\n%s", diff)
	}
	if p := position(); p != s[2] {
		t.Fatalf("stored position %s, want %s", p, s[2])
	}
}

func sortedIDs(ts []tenant.Tenant) []uuid.UUID { return sortIDs(ids(ts)) }

func ids(ts []tenant.Tenant) []uuid.UUID {
	out := make([]uuid.UUID, len(ts))
	for i, x := range ts {
		out[i] = x.ID
	}
	return out
}

func sortIDs(ids []uuid.UUID) []uuid.UUID {
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return bytes.Compare(a[:], b[:]) })
	return ids
}
