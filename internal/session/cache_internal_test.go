package session

import (
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
