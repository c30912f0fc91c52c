package oidcop

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
)

func testEntry(tenantID uuid.UUID, until time.Time) tokenEntry {
	uid, sid := uuid.New(), uuid.New()
	return tokenEntry{tenantID: tenantID, until: until, user: &userClaims{id: uid},
		tok: sqlcgen.GetActiveTokenRow{ID: uuid.New(), AppID: uuid.New(), UserID: &uid, SessionID: &sid}}
}

// TestCacheRules: the invalidation rules of the token and app cache, one by one.
func TestCacheRules(t *testing.T) {
	var healthy atomic.Bool
	healthy.Store(true)
	c := newCache(CacheConfig{Size: 100, TTL: time.Minute}, healthy.Load)
	now := time.Now()
	tenant := uuid.New()
	put := func(e tokenEntry) {
		t.Helper()
		_, _, epoch := c.token(tenant, e.tok.ID, now)
		c.putToken(e, epoch, now)
		if _, ok, _ := c.token(tenant, e.tok.ID, now); !ok {
			t.Fatal("an entry just stored is not served")
		}
	}
	has := func(e tokenEntry) bool { _, ok, _ := c.token(tenant, e.tok.ID, now); return ok }

	// Another tenant never sees the entry; it is not served at or after its deadline.
	e := testEntry(tenant, now.Add(time.Second))
	put(e)
	if _, ok, _ := c.token(uuid.New(), e.tok.ID, now); ok {
		t.Fatal("served to another tenant")
	}
	if _, ok, _ := c.token(tenant, e.tok.ID, now.Add(time.Second)); ok {
		t.Fatal("served at its deadline")
	}
	// No longer than ttl, even when the token lives longer.
	long := testEntry(tenant, now.Add(time.Hour))
	put(long)
	if _, ok, _ := c.token(tenant, long.tok.ID, now.Add(time.Minute)); ok {
		t.Fatal("served after the cache's ttl")
	}

	// A read that raced an invalidation is not stored.
	racing := testEntry(tenant, now.Add(time.Hour))
	_, _, epoch := c.token(tenant, racing.tok.ID, now)
	c.drop(notifyToken + uuid.NewString())
	c.putToken(racing, epoch, now)
	if has(racing) {
		t.Fatal("stored an entry read before an invalidation")
	}

	// Each payload drops what it names, and only that.
	a, b := testEntry(tenant, now.Add(time.Hour)), testEntry(tenant, now.Add(time.Hour))
	put(a)
	put(b)
	c.bindVerified(tenant, [32]byte{1}, a.tok.ID, "sub")
	if id, sub, ok := c.verifiedToken(tenant, [32]byte{1}, now); !ok || id != a.tok.ID || sub != "sub" {
		t.Fatal("a verified token string is not recognised")
	}
	if _, _, ok := c.verifiedToken(uuid.New(), [32]byte{1}, now); ok {
		t.Fatal("a verified token string is recognised on another tenant")
	}
	c.drop(notifySession + a.tok.SessionID.String())
	if has(a) || !has(b) {
		t.Fatal("sid: dropped the wrong entries")
	}
	if _, _, ok := c.verifiedToken(tenant, [32]byte{1}, now); ok {
		t.Fatal("the hash of a dropped token is still recognised")
	}
	put(a)
	c.dropSessionPayload("user:" + a.tok.UserID.String())
	if has(a) || !has(b) {
		t.Fatal("user: dropped the wrong entries")
	}
	c.dropSessionPayload("00ff") // a session token hash: nothing of ours
	if !has(b) {
		t.Fatal("a session token hash dropped a token")
	}
	put(a)
	c.drop(notifyApp + a.tok.AppID.String())
	if has(a) || !has(b) {
		t.Fatal("app: dropped the wrong entries")
	}
	c.drop("garbage")
	if has(b) {
		t.Fatal("an unreadable payload left entries")
	}

	// Apps: a clean entry is not downgraded, and app: drops it.
	app := sqlcgen.App{ID: uuid.New(), ClientID: "client"}
	_, _, epoch = c.app(tenant, "client", now)
	c.putApp(tenant, app, true, epoch, now)
	c.putApp(tenant, app, false, c.currentEpoch(), now)
	if got, ok, _ := c.app(tenant, "client", now); !ok || !got.clean {
		t.Fatal("a clean app entry was downgraded")
	}
	if _, ok := c.appByID(tenant, app.ID, now); !ok {
		t.Fatal("an app is not found by id")
	}
	c.drop(notifyApp + app.ID.String())
	if _, ok, _ := c.app(tenant, "client", now); ok {
		t.Fatal("app: left the app")
	}

	// While the listener is down nothing is served or stored.
	put(a)
	healthy.Store(false)
	if has(a) {
		t.Fatal("served while the listener is down")
	}
	c.putToken(b, c.currentEpoch(), now)
	healthy.Store(true)
	if has(b) {
		t.Fatal("stored while the listener was down")
	}

	// Bounded: a full cache drops some entries to make room.
	small := newCache(CacheConfig{Size: 10, TTL: time.Minute}, healthy.Load)
	for range 25 {
		small.putToken(testEntry(tenant, now.Add(time.Hour)), small.currentEpoch(), now)
	}
	if n, _ := small.sizes(); n > 10 {
		t.Fatalf("%d entries in a cache of 10", n)
	}
}
