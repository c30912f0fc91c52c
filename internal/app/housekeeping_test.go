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

// TestTenantCounts: a gauge summed over tenants keeps each tenant's last count, adds the
// batch's, and forgets deleted tenants.
func TestTenantCounts(t *testing.T) {
	var c tenantCounts
	if _, ok := c.sum(); ok {
		t.Fatal("a sum before any count")
	}
	a, b, x := tenant.Tenant{ID: uuid.New()}, tenant.Tenant{ID: uuid.New()}, tenant.Tenant{ID: uuid.New()}
	c.update(map[uuid.UUID]int64{a.ID: 3, x.ID: 5}, []tenant.Tenant{a, b, x})
	c.update(map[uuid.UUID]int64{b.ID: 4}, []tenant.Tenant{a, b, x})
	if n, ok := c.sum(); !ok || n != 12 {
		t.Fatalf("sum %d, want 12", n)
	}
	c.update(map[uuid.UUID]int64{a.ID: 1}, []tenant.Tenant{a, b}) // x deleted
	if n, _ := c.sum(); n != 5 {
		t.Fatalf("sum %d after a recount and a deletion, want 5", n)
	}
}
