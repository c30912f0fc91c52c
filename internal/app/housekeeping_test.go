package app

import (
	"testing"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// TestRotatingBatch: housekeeping visits every tenant, a bounded number per minute, in
// turn and wrapping around.
func TestRotatingBatch(t *testing.T) {
	all := make([]tenant.Tenant, 5)
	for i := range all {
		all[i].ID = uuid.New()
	}
	seen := map[uuid.UUID]int{}
	next := 0
	for range 5 { // 5 rounds of 2 over 5 tenants: every tenant twice
		var b []tenant.Tenant
		b, next = rotatingBatch(all, next, 2)
		if len(b) != 2 {
			t.Fatalf("batch of %d, want 2", len(b))
		}
		for _, x := range b {
			seen[x.ID]++
		}
	}
	for i, x := range all {
		if seen[x.ID] != 2 {
			t.Fatalf("tenant %d visited %d times in 5 rounds, want 2: %v", i, seen[x.ID], seen)
		}
	}
	if b, n := rotatingBatch(all[:2], 7, 200); len(b) != 2 || n != 0 {
		t.Fatalf("fewer tenants than a batch: %d tenants, next %d", len(b), n)
	}
}
