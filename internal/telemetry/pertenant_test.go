package telemetry_test

import (
	"testing"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/telemetry"
)

// TestPerTenant: a sum over tenants keeps each tenant's last value, takes the batch's, and
// forgets deleted tenants.
func TestPerTenant(t *testing.T) {
	var p telemetry.PerTenant[int64]
	sum := func() (int64, bool) {
		var n int64
		ok := p.Each(func(v int64) { n += v })
		return n, ok
	}
	if _, ok := sum(); ok {
		t.Fatal("a sum before any update")
	}
	a, b, x := uuid.New(), uuid.New(), uuid.New()
	p.Update(map[uuid.UUID]int64{a: 3, x: 5}, []uuid.UUID{a, b, x})
	p.Update(map[uuid.UUID]int64{b: 4}, []uuid.UUID{a, b, x})
	if n, ok := sum(); !ok || n != 12 {
		t.Fatalf("sum %d, want 12", n)
	}
	p.Update(map[uuid.UUID]int64{a: 1}, []uuid.UUID{a, b}) // x deleted
	if n, _ := sum(); n != 5 {
		t.Fatalf("sum %d after a recount and a deletion, want 5", n)
	}
}
