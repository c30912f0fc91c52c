package argon2

import (
	"bytes"
	"math/rand/v2"
	"testing"

	xargon2 "golang.org/x/crypto/argon2"
)

// TestMatchesXCrypto: the same keys as golang.org/x/crypto/argon2.IDKey, for fresh
// memory, reused memory (smaller and larger hashes in turn, so a reused buffer holds the
// previous hash's blocks) and several lanes.
func TestMatchesXCrypto(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var m Memory
	cases := []struct {
		time, memory uint32
		threads      uint8
	}{{1, 64, 1}, {2, 19 * 1024, 1}, {3, 256, 2}, {2, 1024, 4}, {1, 8, 1}, {2, 19 * 1024, 1}, {2, 4096, 1}}
	for i, c := range cases {
		pw, salt := make([]byte, 1+r.IntN(40)), make([]byte, 16)
		for j := range pw {
			pw[j] = byte(r.Uint32())
		}
		for j := range salt {
			salt[j] = byte(r.Uint32())
		}
		want := xargon2.IDKey(pw, salt, c.time, c.memory, c.threads, 32)
		if got := IDKey(&m, pw, salt, c.time, c.memory, c.threads, 32); !bytes.Equal(got, want) {
			t.Errorf("case %d %+v, reused memory: %x, want %x", i, c, got, want)
		}
		if got := IDKey(nil, pw, salt, c.time, c.memory, c.threads, 32); !bytes.Equal(got, want) {
			t.Errorf("case %d %+v, fresh memory: %x, want %x", i, c, got, want)
		}
	}
}

// TestReusesMemory: a second hash of the same size allocates no working memory.
func TestReusesMemory(t *testing.T) {
	var m Memory
	pw, salt := []byte("correct horse"), make([]byte, 16)
	IDKey(&m, pw, salt, 1, 1024, 1, 32)
	allocs := testing.AllocsPerRun(5, func() { IDKey(&m, pw, salt, 1, 1024, 1, 32) })
	first := &m.blocks[0]
	IDKey(&m, pw, salt, 1, 1024, 1, 32)
	if &m.blocks[0] != first {
		t.Fatal("the memory was not reused")
	}
	if allocs > 20 {
		t.Fatalf("%v allocations per hash", allocs)
	}
}
