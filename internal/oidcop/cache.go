package oidcop

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
)

// RevokedChannel carries what every node's OpenID Provider cache must drop: "sid:<session
// id>" (a Gatehouse session ended), "jti:<token id>" (an access token was revoked),
// "app:<app id>" (an app changed, was deleted, or a wrong secret was counted against it),
// or "all". The notifications are sent in the transaction of the change, so they reach
// every node (this one included) when it commits.
const RevokedChannel = "gatehouse_oidc_revoked"

// Payload prefixes of RevokedChannel.
const (
	notifySession = "sid:"
	notifyToken   = "jti:"
	notifyApp     = "app:"
	notifyAll     = "all"
)

// CacheConfig sizes the per-node cache of verified access tokens and apps (0 entries: no
// cache, every request reads the database).
type CacheConfig struct {
	Size int           // entries of each kind
	TTL  time.Duration // the longest an entry is trusted
}

// cache holds, per node, what userinfo, introspection and the token endpoint would
// otherwise read in a tenant transaction on every request: access tokens that were found
// active (with their user's claims), keyed by the token id (jti) the library took from a
// JWT it verified, and apps keyed by client id. An access token entry is trusted until
// the earliest of the token's expiry, its session's absolute and idle deadlines as read,
// and ttl after it was stored. Every change that could make an entry wrong notifies
// RevokedChannel (or, for users and roles, the session and authz channels) in its own
// transaction, and every node drops the entry when it commits; while the listener is
// disconnected nothing is served from the cache, and every reconnect empties it. A read
// that races an invalidation is not stored (epoch), as in the session cache.
type cache struct {
	mu      sync.RWMutex
	epoch   uint64
	max     int
	ttl     time.Duration
	healthy func() bool

	tokens    map[uuid.UUID]tokenEntry
	bySession map[uuid.UUID]map[uuid.UUID]struct{}
	byUser    map[uuid.UUID]map[uuid.UUID]struct{}
	byApp     map[uuid.UUID]map[uuid.UUID]struct{}

	apps    map[appKey]appEntry
	appKeys map[uuid.UUID]appKey // app id → its key

	// verified maps the SHA-256 of an access token string the library verified (signature,
	// issuer, expiry) to its cached entry: the same string again needs no verification.
	verified map[[32]byte]verifiedRef
}

type verifiedRef struct {
	jti     uuid.UUID
	subject string
}

type appKey struct {
	tenantID uuid.UUID
	clientID string
}

// tokenEntry is an active access token with what its answers carry.
type tokenEntry struct {
	tenantID uuid.UUID
	tok      sqlcgen.GetActiveTokenRow
	user     *userClaims // nil: a client_credentials token
	until    time.Time
	hash     *[32]byte // of the JWT, once bound (bindVerified)
	// The encoded answers, once served (they depend on nothing else: the tenant's slug is
	// in them, and a tenant change empties the cache).
	userinfoBody, introspectionBody []byte
}

// userClaims is the user part of userinfo, introspection and the ID token.
type userClaims struct {
	id            uuid.UUID
	email, name   string
	emailVerified bool
	roles         []string
}

// appEntry is an app; clean says the credential limiter had nothing counted against it
// when it was stored (a right secret may then skip the limiter until an invalidation).
type appEntry struct {
	app   sqlcgen.App
	clean bool
	until time.Time
}

func newCache(cfg CacheConfig, healthy func() bool) *cache {
	return &cache{max: cfg.Size, ttl: cfg.TTL, healthy: healthy,
		tokens: map[uuid.UUID]tokenEntry{}, bySession: map[uuid.UUID]map[uuid.UUID]struct{}{},
		byUser: map[uuid.UUID]map[uuid.UUID]struct{}{}, byApp: map[uuid.UUID]map[uuid.UUID]struct{}{},
		apps: map[appKey]appEntry{}, appKeys: map[uuid.UUID]appKey{}, verified: map[[32]byte]verifiedRef{}}
}

// usable: a cache exists and the listener has proven itself.
func (c *cache) usable() bool { return c != nil && c.healthy() }

// currentEpoch is what to pass to a put after a miss (0 without a usable cache).
func (c *cache) currentEpoch() uint64 {
	if !c.usable() {
		return 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.epoch
}

// token returns a fresh entry of the tenant, and the epoch for put on a miss.
func (c *cache) token(tenantID, id uuid.UUID, now time.Time) (tokenEntry, bool, uint64) {
	if !c.usable() {
		return tokenEntry{}, false, 0
	}
	c.mu.RLock()
	e, ok := c.tokens[id]
	epoch := c.epoch
	c.mu.RUnlock()
	if !ok || e.tenantID != tenantID || !now.Before(e.until) {
		return tokenEntry{}, false, epoch
	}
	return e, true, epoch
}

// putToken stores an entry unless an invalidation happened since epoch was read, the
// listener is down, or the entry would already be stale.
func (c *cache) putToken(e tokenEntry, epoch uint64, now time.Time) {
	if c == nil {
		return
	}
	e.until = earliest(e.until, now.Add(c.ttl))
	if !now.Before(e.until) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != epoch || !c.healthy() {
		return
	}
	if len(c.tokens) >= c.max {
		// Drop a random tenth (map order is random): bounded memory, no bookkeeping on reads.
		n := max(c.max/10, 1)
		for k := range c.tokens {
			if n <= 0 {
				break
			}
			c.removeToken(k)
			n--
		}
	}
	id := e.tok.ID
	c.removeToken(id)
	c.tokens[id] = e
	if e.tok.SessionID != nil {
		index(c.bySession, *e.tok.SessionID, id)
	}
	if e.tok.UserID != nil {
		index(c.byUser, *e.tok.UserID, id)
	}
	index(c.byApp, e.tok.AppID, id)
}

func index(m map[uuid.UUID]map[uuid.UUID]struct{}, k, id uuid.UUID) {
	s := m[k]
	if s == nil {
		s = map[uuid.UUID]struct{}{}
		m[k] = s
	}
	s[id] = struct{}{}
}

func unindex(m map[uuid.UUID]map[uuid.UUID]struct{}, k, id uuid.UUID) {
	if s := m[k]; s != nil {
		delete(s, id)
		if len(s) == 0 {
			delete(m, k)
		}
	}
}

// removeToken deletes one entry and its index entries; the caller holds the write lock.
func (c *cache) removeToken(id uuid.UUID) {
	e, ok := c.tokens[id]
	if !ok {
		return
	}
	delete(c.tokens, id)
	if e.hash != nil {
		delete(c.verified, *e.hash)
	}
	if e.tok.SessionID != nil {
		unindex(c.bySession, *e.tok.SessionID, id)
	}
	if e.tok.UserID != nil {
		unindex(c.byUser, *e.tok.UserID, id)
	}
	unindex(c.byApp, e.tok.AppID, id)
}

// removeIndexed drops every token listed under k in m; the caller holds the write lock.
func (c *cache) removeIndexed(m map[uuid.UUID]map[uuid.UUID]struct{}, k uuid.UUID) {
	for id := range m[k] {
		c.removeToken(id)
	}
	delete(m, k)
}

// bindVerified records that the access token string of hash verified as token id with
// subject, once its entry is cached (the library calls storage with the id and subject
// only after verifying the string).
func (c *cache) bindVerified(tenantID uuid.UUID, hash [32]byte, id uuid.UUID, subject string) {
	if !c.usable() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.tokens[id]
	if !ok || e.tenantID != tenantID || e.hash != nil {
		return
	}
	e.hash = &hash
	c.tokens[id] = e
	c.verified[hash] = verifiedRef{jti: id, subject: subject}
}

// verifiedToken returns the token id and subject of an access token string verified
// before, while its entry is fresh.
func (c *cache) verifiedToken(tenantID uuid.UUID, hash [32]byte, now time.Time) (uuid.UUID, string, bool) {
	if !c.usable() {
		return uuid.Nil, "", false
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	ref, ok := c.verified[hash]
	if !ok {
		return uuid.Nil, "", false
	}
	e, ok := c.tokens[ref.jti]
	if !ok || e.tenantID != tenantID || !now.Before(e.until) {
		return uuid.Nil, "", false
	}
	return ref.jti, ref.subject, true
}

// body returns the encoded userinfo (introspection false) or introspection answer of a
// fresh entry, nil when not stored yet.
func (c *cache) body(tenantID, id uuid.UUID, introspection bool, now time.Time) []byte {
	if !c.usable() {
		return nil
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	e, ok := c.tokens[id]
	if !ok || e.tenantID != tenantID || !now.Before(e.until) {
		return nil
	}
	if introspection {
		return e.introspectionBody
	}
	return e.userinfoBody
}

// setBody stores an encoded answer on the entry, if it is still the one epoch saw.
func (c *cache) setBody(tenantID, id uuid.UUID, introspection bool, b []byte, epoch uint64) {
	if !c.usable() {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.tokens[id]
	if !ok || e.tenantID != tenantID || c.epoch != epoch {
		return
	}
	if introspection {
		e.introspectionBody = b
	} else {
		e.userinfoBody = b
	}
	c.tokens[id] = e
}

// app returns a fresh app of the tenant by client id, and the epoch for putApp on a miss.
func (c *cache) app(tenantID uuid.UUID, clientID string, now time.Time) (appEntry, bool, uint64) {
	if !c.usable() {
		return appEntry{}, false, 0
	}
	c.mu.RLock()
	e, ok := c.apps[appKey{tenantID, clientID}]
	epoch := c.epoch
	c.mu.RUnlock()
	if !ok || !now.Before(e.until) {
		return appEntry{}, false, epoch
	}
	return e, true, epoch
}

// appByID returns a fresh app of the tenant by its id.
func (c *cache) appByID(tenantID, id uuid.UUID, now time.Time) (sqlcgen.App, bool) {
	if !c.usable() {
		return sqlcgen.App{}, false
	}
	c.mu.RLock()
	k, ok := c.appKeys[id]
	e, found := c.apps[k]
	c.mu.RUnlock()
	if !ok || !found || k.tenantID != tenantID || e.app.ID != id || !now.Before(e.until) {
		return sqlcgen.App{}, false
	}
	return e.app, true
}

// putApp stores an app (clean: nothing counted against it by the limiter), under the same
// rules as putToken. A clean entry is not downgraded by a lookup that did not check.
func (c *cache) putApp(tenantID uuid.UUID, app sqlcgen.App, clean bool, epoch uint64, now time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.epoch != epoch || !c.healthy() {
		return
	}
	k := appKey{tenantID, app.ClientID}
	if old, ok := c.apps[k]; ok && old.clean && !clean && now.Before(old.until) {
		return
	}
	if len(c.apps) >= c.max {
		n := max(c.max/10, 1)
		for k := range c.apps {
			if n <= 0 {
				break
			}
			c.removeApp(c.apps[k].app.ID)
			n--
		}
	}
	c.apps[k] = appEntry{app: app, clean: clean, until: now.Add(c.ttl)}
	c.appKeys[app.ID] = k
}

// removeApp drops an app and every token of it; the caller holds the write lock.
func (c *cache) removeApp(id uuid.UUID) {
	if k, ok := c.appKeys[id]; ok {
		delete(c.apps, k)
		delete(c.appKeys, id)
	}
	c.removeIndexed(c.byApp, id)
}

// drop applies one RevokedChannel payload (an unreadable one empties the cache rather
// than risk a stale entry).
func (c *cache) drop(payload string) {
	if c == nil {
		return
	}
	kind, rest, _ := strings.Cut(payload, ":")
	id, err := uuid.Parse(rest)
	kind += ":"
	if err != nil || (kind != notifySession && kind != notifyToken && kind != notifyApp) {
		c.clear() // "all", or unreadable
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	switch kind {
	case notifySession:
		c.removeIndexed(c.bySession, id)
	case notifyToken:
		c.removeToken(id)
	case notifyApp:
		c.removeApp(id)
	}
}

// dropSessionPayload handles the session channel: "user:<id>" (the user's email, name,
// status or verification changed, or the user was deleted) drops the user's tokens; a
// session token hash needs nothing here (every session end also sends "sid:").
func (c *cache) dropSessionPayload(payload string) {
	if c == nil {
		return
	}
	rest, ok := strings.CutPrefix(payload, "user:")
	if !ok {
		return
	}
	uid, err := uuid.Parse(rest)
	if err != nil {
		c.clear()
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	c.removeIndexed(c.byUser, uid)
}

// dropToken drops one token on this node (after a revocation here commits).
func (c *cache) dropToken(id uuid.UUID) { c.drop(notifyToken + id.String()) }

// dropApp drops one app on this node (after a change here commits).
func (c *cache) dropApp(id uuid.UUID) { c.drop(notifyApp + id.String()) }

func (c *cache) clear() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	clear(c.tokens)
	clear(c.bySession)
	clear(c.byUser)
	clear(c.byApp)
	clear(c.apps)
	clear(c.appKeys)
	clear(c.verified)
}

// sizes is for tests and metrics: cached access tokens and apps.
func (c *cache) sizes() (tokens, apps int) {
	if c == nil {
		return 0, 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.tokens), len(c.apps)
}

func earliest(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// notifyRevoked tells every node's cache, when the caller's transaction commits, what to
// drop.
func notifyRevoked(ctx context.Context, q *sqlcgen.Queries, payloads ...string) error {
	if len(payloads) == 0 {
		return nil
	}
	return q.NotifyOIDCRevoked(ctx, payloads)
}

// tokenPayloads are the RevokedChannel payloads of revoked tokens.
func tokenPayloads(ids []uuid.UUID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = notifyToken + id.String()
	}
	return out
}

// dropTokens drops revoked tokens on this node, after their revocation committed (or
// failed: dropping is always safe).
func (s *Service) dropTokens(ids []uuid.UUID) {
	for _, id := range ids {
		s.cache.dropToken(id)
	}
}

// appChanged, inside the transaction that changed or deleted an app, tells every node to
// drop it (and its tokens) when the change commits. The caller drops it here after commit.
func (s *Service) appChanged(ctx context.Context, q *sqlcgen.Queries, id uuid.UUID) error {
	if err := notifyRevoked(ctx, q, notifyApp+id.String()); err != nil {
		return fmt.Errorf("notify the app caches: %w", err)
	}
	return nil
}
