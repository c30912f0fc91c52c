package session

import (
	"encoding/hex"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
)

// cache holds validated sessions keyed by token hash. An entry is trusted until the
// earliest of the session's own deadline (idle or absolute, moved onto the local clock)
// and ttl after it was stored; revocations anywhere remove it through the listener; while
// the listener is disconnected the cache is not used at all.
type cache struct {
	mu      sync.RWMutex
	entries map[[32]byte]cacheEntry
	byUser  map[uuid.UUID]map[[32]byte]struct{} // index for user-level invalidation
	epoch   uint64
	max     int
	ttl     time.Duration
	healthy func() bool
}

type cacheEntry struct {
	tenantID uuid.UUID
	p        Principal
	until    time.Time
}

func newCache(max int, ttl time.Duration, healthy func() bool) *cache {
	return &cache{entries: make(map[[32]byte]cacheEntry), byUser: make(map[uuid.UUID]map[[32]byte]struct{}), max: max, ttl: ttl, healthy: healthy}
}

// get returns a fresh entry, and the epoch to pass to put on a miss.
func (c *cache) get(key [32]byte, tenantID uuid.UUID, now time.Time) (Principal, bool, uint64) {
	if !c.healthy() {
		return Principal{}, false, 0
	}
	c.mu.RLock()
	e, ok := c.entries[key]
	epoch := c.epoch
	c.mu.RUnlock()
	if !ok || e.tenantID != tenantID || !now.Before(e.until) {
		return Principal{}, false, epoch
	}
	return e.p, true, epoch
}

// put stores an entry unless an invalidation happened since get (epoch), the listener is
// down, or the entry would already be stale.
func (c *cache) put(key [32]byte, tenantID uuid.UUID, p Principal, deadline time.Time, epoch uint64, now time.Time) {
	until := earliest(deadline, now.Add(c.ttl))
	if !now.Before(until) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != epoch || !c.healthy() {
		return
	}
	if len(c.entries) >= c.max {
		// Drop a random tenth (map order is random): bounded memory, no bookkeeping on reads.
		n := c.max / 10
		for k := range c.entries {
			if n <= 0 {
				break
			}
			c.remove(k)
			n--
		}
	}
	c.entries[key] = cacheEntry{tenantID: tenantID, p: p, until: until}
	keys := c.byUser[p.UserID]
	if keys == nil {
		keys = map[[32]byte]struct{}{}
		c.byUser[p.UserID] = keys
	}
	keys[key] = struct{}{}
}

// remove deletes one entry and its index entry; the caller holds the write lock.
func (c *cache) remove(k [32]byte) {
	e, ok := c.entries[k]
	if !ok {
		return
	}
	delete(c.entries, k)
	if keys := c.byUser[e.p.UserID]; keys != nil {
		delete(keys, k)
		if len(keys) == 0 {
			delete(c.byUser, e.p.UserID)
		}
	}
}

func (c *cache) invalidate(hashes [][]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	for _, h := range hashes {
		if len(h) == 32 {
			c.remove([32]byte(h))
		}
	}
}

// invalidateUser drops every cached session of a user (its email, name, status or
// verification changed, or it was deleted), through the per-user index: a tenant purge
// sends one notification per user, which must not each scan the whole cache.
func (c *cache) invalidateUser(userID uuid.UUID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	for k := range c.byUser[userID] {
		delete(c.entries, k)
	}
	delete(c.byUser, userID)
}

// invalidateHex handles a broadcast payload: the hex SHA-256 of a revoked token, or
// "user:<uuid>" for a changed user.
func (c *cache) invalidateHex(payload string) {
	if id, ok := strings.CutPrefix(payload, "user:"); ok {
		if uid, err := uuid.Parse(id); err == nil {
			c.invalidateUser(uid)
			return
		}
	}
	h, err := hex.DecodeString(payload)
	if err != nil || len(h) != 32 {
		c.clear() // unreadable: drop everything rather than risk a stale entry
		return
	}
	c.invalidate([][]byte{h})
}

func (c *cache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	clear(c.entries)
	clear(c.byUser)
}

// size is for tests and metrics.
func (c *cache) size() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.entries)
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
