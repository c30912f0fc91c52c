package telemetry

import (
	"sync"

	"github.com/google/uuid"
)

// PerTenant keeps one value per tenant for gauges that sum over every tenant: the
// application role cannot count across tenants under row-level security, so housekeeping
// recounts a batch of tenants at a time and the gauge adds up the last value of each.
type PerTenant[V any] struct {
	mu   sync.Mutex
	vals map[uuid.UUID]V
}

// Update stores the batch's values and forgets tenants not in current (deleted ones).
func (p *PerTenant[V]) Update(batch map[uuid.UUID]V, current []uuid.UUID) {
	keep := make(map[uuid.UUID]bool, len(current))
	for _, id := range current {
		keep[id] = true
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.vals == nil {
		p.vals = map[uuid.UUID]V{}
	}
	for id, v := range batch {
		p.vals[id] = v
	}
	for id := range p.vals {
		if !keep[id] {
			delete(p.vals, id)
		}
	}
}

// Each calls f with every tenant's last value; it reports false (and calls nothing)
// before the first Update.
func (p *PerTenant[V]) Each(f func(V)) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, v := range p.vals {
		f(v)
	}
	return p.vals != nil
}
