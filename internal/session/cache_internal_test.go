package session

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/google/uuid"
)

func TestCacheIndexStaysConsistent(t *testing.T) {
	c := newCache(20, time.Minute, func() bool { return true })
	now := time.Now()
	users := []uuid.UUID{uuid.New(), uuid.New()}
	var keys [][32]byte
	for i := range 50 { // more than max: evictions happen
		var k [32]byte
		k[0], k[1] = byte(i), byte(i>>8)
		keys = append(keys, k)
		c.put(k, uuid.Nil, Principal{UserID: users[i%2]}, now.Add(time.Hour), c.epoch, now)
	}
	count := 0
	for _, m := range c.byUser {
		count += len(m)
	}
	if count != len(c.entries) {
		t.Fatalf("index holds %d keys, cache %d entries", count, len(c.entries))
	}
	c.invalidateUser(users[0])
	for k, e := range c.entries {
		if e.p.UserID == users[0] {
			t.Fatalf("entry %x of the invalidated user survived", k[:2])
		}
	}
	c.invalidate([][]byte{keys[49][:]})
	if _, ok := c.entries[keys[49]]; ok {
		t.Fatal("invalidated key survived")
	}
	c.clear()
	if len(c.byUser) != 0 || len(c.entries) != 0 {
		t.Fatal("clear left entries")
	}
}

// BenchmarkCacheMemory reports the heap each cached session takes (the principal with a
// typical user agent, email and name, the map entry and the per-user index):
//
//	go test ./internal/session -run '^$' -bench CacheMemory -benchtime 1x
func BenchmarkCacheMemory(b *testing.B) {
	const n = 100_000
	now := time.Now()
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	c := newCache(n+1, time.Minute, func() bool { return true })
	tid := uuid.New()
	for i := range n {
		var key [32]byte
		binary.BigEndian.PutUint64(key[:], uint64(i)+1)
		uid := uuid.New()
		p := Principal{TenantID: tid, UserID: uid, Email: fmt.Sprintf("user%06d@example.com", i), Name: "Firstname Lastname",
			Status: "active", UserCreatedAt: now, Session: Session{ID: uuid.New(), UserID: uid, CreatedAt: now, LastActiveAt: now,
				ExpiresAt: now.Add(time.Hour), AuthTime: now, Methods: []string{"password"}, AAL: "aal1",
				UserAgent: "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
				Device:    "Desktop", Browser: "Chrome", OS: "macOS"}}
		c.put(key, tid, p, now.Add(time.Hour), c.epoch, now)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if c.size() != n {
		b.Fatalf("cached %d", c.size())
	}
	b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "bytes/session")
	runtime.KeepAlive(c)
}
