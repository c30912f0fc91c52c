package sso

import (
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
)

// ConnectionChangedChannel carries every change of an sso_connections row, sent by the
// row's trigger (migration 000025) in the changing transaction: "tenant_id/id/slug".
const ConnectionChangedChannel = "gatehouse_sso_connection_changed"

// connCacheTTL bounds how long an ACS trusts a cached connection without a notification.
const connCacheTTL = time.Minute

const maxConnCacheEntries = 10000

// connCache keeps, per (tenant, slug), the SAML connection row an ACS needs and its
// material (parsed metadata, opened SP keys, crewjam ServiceProviders), so that a sign-in
// neither reads the row nor builds any of it. Entries are dropped on every node by the
// row trigger's NOTIFY; the cache is used only while the listener has proven that
// notifications reach it (otherwise every ACS reads the row, as without a cache).
type connCache struct {
	healthy func() bool // nil: the cache is off
	now     func() time.Time

	mu       sync.Mutex
	epoch    uint64             // bumped by clear
	versions map[connKey]uint64 // bumped per key by drop
	entries  map[connKey]connEntry
}

type connKey struct {
	tenantID uuid.UUID
	slug     string
}

type connEntry struct {
	conn    sqlcgen.SSOConnection
	m       *material
	expires time.Time
}

// connStamp is the cache state a look-up started from: a row read afterwards is stored
// only if no invalidation of its key (or of everything) happened in between.
type connStamp struct{ epoch, version uint64 }

func newConnCache(listener *store.Listener, now func() time.Time) *connCache {
	c := &connCache{now: now, versions: map[connKey]uint64{}, entries: map[connKey]connEntry{}}
	if listener != nil {
		c.healthy = listener.Healthy
		listener.Handle(ConnectionChangedChannel, c.dropPayload, c.clear)
	}
	return c
}

func (c *connCache) on() bool { return c.healthy != nil && c.healthy() }

// get returns the cached entry of (tenant, slug), if any, and the stamp to store a fresh
// one under.
func (c *connCache) get(tenantID uuid.UUID, slug string) (*connEntry, connStamp) {
	if !c.on() {
		return nil, connStamp{}
	}
	k := connKey{tenantID, slug}
	c.mu.Lock()
	defer c.mu.Unlock()
	st := connStamp{c.epoch, c.versions[k]}
	e, ok := c.entries[k]
	if !ok || !c.now().Before(e.expires) {
		return nil, st
	}
	return &e, st
}

// put stores a row read after get returned st, unless its key was invalidated since.
func (c *connCache) put(tenantID uuid.UUID, st connStamp, conn sqlcgen.SSOConnection, m *material) {
	if !c.on() {
		return
	}
	k := connKey{tenantID, conn.Slug}
	c.mu.Lock()
	defer c.mu.Unlock()
	if (connStamp{c.epoch, c.versions[k]}) != st || !c.healthy() {
		return
	}
	if len(c.entries) >= maxConnCacheEntries {
		clear(c.entries)
	}
	c.entries[k] = connEntry{conn: conn, m: m, expires: c.now().Add(connCacheTTL)}
}

// drop forgets (tenant, slug).
func (c *connCache) drop(tenantID uuid.UUID, slug string) {
	k := connKey{tenantID, slug}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.versions) >= maxConnCacheEntries {
		// Forgetting versions is only safe together with everything they guard.
		clear(c.versions)
		clear(c.entries)
		c.epoch++
	}
	c.versions[k]++
	delete(c.entries, k)
}

// dropID forgets every entry of connection id on this node (the writer's own node does
// not wait for the notification).
func (c *connCache) dropID(id uuid.UUID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, e := range c.entries {
		if e.conn.ID == id {
			c.versions[k]++
			delete(c.entries, k)
		}
	}
}

// dropPayload handles a notification "tenant_id/id/slug"; one it cannot read drops
// everything.
func (c *connCache) dropPayload(payload string) {
	parts := strings.SplitN(payload, "/", 3)
	var tid uuid.UUID
	var err error
	if len(parts) == 3 {
		tid, err = uuid.Parse(parts[0])
	}
	if len(parts) != 3 || err != nil {
		c.clear()
		return
	}
	c.drop(tid, parts[2])
}

// clear forgets everything (the listener reconnected: notifications may have been lost).
func (c *connCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	clear(c.entries)
	clear(c.versions)
}
