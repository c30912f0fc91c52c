package tenant

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
)

// HostKind says what a request's host names.
type HostKind int

const (
	HostUnknown HostKind = iota // not under the base domain, or not a valid tenant label
	HostBase                    // the base domain itself: operator API and landing page
	HostTenant                  // {slug}.{base}
)

// ParseHost classifies host (as in a Host header: any case, optional port, optional
// trailing dot) against baseDomain. Only the single label directly under the base domain
// names a tenant; deeper names are unknown.
func ParseHost(host, baseDomain string) (HostKind, string) {
	h := strings.ToLower(strings.TrimSpace(host))
	if !strings.Contains(h, ":") {
		// No port (and no IPv6 literal): nothing to split. SplitHostPort would build an
		// error for this, the usual Host on port 443, on every request.
	} else if hp, _, err := net.SplitHostPort(h); err == nil {
		h = hp
	} else if strings.HasPrefix(h, "[") && strings.HasSuffix(h, "]") {
		h = h[1 : len(h)-1]
	}
	h = strings.TrimSuffix(h, ".")
	base := strings.TrimSuffix(strings.ToLower(baseDomain), ".")
	if h == "" || base == "" {
		return HostUnknown, ""
	}
	if h == base {
		return HostBase, ""
	}
	label, ok := strings.CutSuffix(h, base)
	if ok {
		label, ok = strings.CutSuffix(label, ".") // the base domain as a whole label
	}
	if !ok || strings.Contains(label, ".") || ValidateSlug(label) != nil {
		return HostUnknown, ""
	}
	return HostTenant, label
}

// Resolver finds the active tenant for a slug, with a small cache. Entries live at most
// ttl, are dropped on every node when a tenant changes (NOTIFY on ChangedChannel), and the
// cache is bypassed entirely while the notification listener is down.
type Resolver struct {
	store   *store.Store
	ttl     time.Duration
	now     func() time.Time
	healthy func() bool // nil: no listener, cache disabled

	mu       sync.RWMutex
	epoch    uint64            // bumped by InvalidateAll
	versions map[string]uint64 // bumped per slug by Invalidate
	entries  map[string]cacheEntry
}

// stamp identifies the cache state a lookup started from: it stores its answer only if
// neither everything nor its slug was invalidated meanwhile (changes to other tenants do
// not stop it).
type stamp struct{ epoch, version uint64 }

type cacheEntry struct {
	tenant  Tenant
	found   bool
	expires time.Time
}

const maxCacheEntries = 10000

// NewResolver returns a resolver. With listener nil the cache is off (every lookup reads the
// database); otherwise the resolver registers itself on the listener.
func NewResolver(st *store.Store, ttl time.Duration, now func() time.Time, listener *store.Listener) *Resolver {
	r := &Resolver{store: st, ttl: ttl, now: now, entries: map[string]cacheEntry{}, versions: map[string]uint64{}}
	if listener != nil && ttl > 0 {
		r.healthy = listener.Healthy
		listener.Handle(ChangedChannel, r.Invalidate, r.InvalidateAll)
	}
	return r
}

// Lookup returns the active tenant with slug, or ErrNotFound for unknown and suspended
// tenants alike.
func (r *Resolver) Lookup(ctx context.Context, slug string) (Tenant, error) {
	useCache := r.healthy != nil && r.healthy()
	var st stamp
	if useCache {
		r.mu.RLock()
		e, ok := r.entries[slug]
		st = stamp{r.epoch, r.versions[slug]}
		r.mu.RUnlock()
		if ok && r.now().Before(e.expires) {
			if !e.found {
				return Tenant{}, ErrNotFound
			}
			return e.tenant, nil
		}
	}
	var t Tenant
	found := false
	err := r.store.InPlatform(ctx, func(q *sqlcgen.Queries) error {
		row, err := q.GetTenantBySlug(ctx, slug)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("resolve tenant: %w", err)
		}
		t, found = fromRow(row), row.Status == StatusActive
		return nil
	}, store.ReadOnly(), store.Idempotent())
	if err != nil {
		return Tenant{}, err
	}
	if useCache {
		r.mu.Lock()
		if (stamp{r.epoch, r.versions[slug]}) == st && r.healthy() {
			if len(r.entries) >= maxCacheEntries {
				clear(r.entries)
			}
			r.entries[slug] = cacheEntry{tenant: t, found: found, expires: r.now().Add(r.ttl)}
		}
		r.mu.Unlock()
	}
	if !found {
		return Tenant{}, ErrNotFound
	}
	return t, nil
}

// Invalidate drops slug from the cache.
func (r *Resolver) Invalidate(slug string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.versions) >= maxCacheEntries {
		// Forgetting versions is only safe together with everything they guard.
		clear(r.versions)
		clear(r.entries)
		r.epoch++
	}
	r.versions[slug]++
	delete(r.entries, slug)
}

// InvalidateAll empties the cache.
func (r *Resolver) InvalidateAll() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.epoch++
	clear(r.entries)
	clear(r.versions)
}
