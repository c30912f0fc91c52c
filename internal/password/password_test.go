package password

import (
	"context"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
)

func TestHashVerify(t *testing.T) {
	ctx := context.Background()
	h := NewHasher(OWASP)
	enc, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(enc, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("encoding %s", enc)
	}
	if again, _ := h.Hash(ctx, "correct horse battery staple"); again == enc {
		t.Fatal("two hashes of one password are equal: the salt is not random")
	}
	if ok, rehash, err := h.Verify(ctx, "correct horse battery staple", enc); !ok || rehash || err != nil {
		t.Fatalf("verify: %v %v %v", ok, rehash, err)
	}
	if ok, _, _ := h.Verify(ctx, "correct horse battery stapl", enc); ok {
		t.Fatal("wrong password accepted")
	}
	// No account: the dummy hash is checked and never matches, even its own password.
	if ok, _, err := h.Verify(ctx, "gatehouse-dummy-password", ""); ok || err != nil {
		t.Fatalf("dummy: %v %v", ok, err)
	}
	stronger := NewHasher(Params{MemoryKiB: 32 * 1024, Iterations: 3, Parallelism: 1, SaltLen: 16, KeyLen: 32})
	if ok, rehash, _ := stronger.Verify(ctx, "correct horse battery staple", enc); !ok || !rehash {
		t.Fatalf("a hash with older parameters must verify and ask for a rehash: %v %v", ok, rehash)
	}
	for _, bad := range []string{"$argon2i$v=19$m=1,t=1,p=1$AA$AA", "$argon2id$v=18$m=1,t=1,p=1$AA$AA", "garbage", "$argon2id$v=19$m=x$AA$AA"} {
		if _, _, err := h.Verify(ctx, "x", bad); err == nil {
			t.Errorf("malformed hash %q accepted", bad)
		}
	}
}

func TestCheck(t *testing.T) {
	good := []string{"purple monkey dishwasher", "ünïcödé 密码 ist wunderbar", "Tr0ub4dor&3-but-longer-xq", strings.Repeat("é", 256)}
	for _, pw := range good {
		if err := Check(pw, "alice@example.com"); err != nil {
			t.Errorf("Check(%q) = %v", pw, err)
		}
	}
	bad := map[string]string{
		"short":                            "too_short",
		"password":                         "too_common",
		"12345678":                         "too_common",
		"iloveyou1":                        "too_common",
		"alice@example.com":                "too_common",
		strings.Repeat("a", 257):           "too_long",
		"\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8": "invalid_utf8",
	}
	for pw, reason := range bad {
		err := Check(pw, "alice@example.com")
		e := apperr.From(err)
		if e.Code != "weak_password" || e.Details["reason"] != reason {
			t.Errorf("Check(%.20q) = %v (%v), want weak_password/%s", pw, err, e.Details, reason)
		}
	}
}

// BenchmarkArgon2id is the bare cost of one hash at OWASP parameters: the reference the
// login and signup benchmarks are compared with.
func BenchmarkArgon2id(b *testing.B) {
	h := NewHasher(OWASP)
	ctx := context.Background()
	for b.Loop() {
		if _, err := h.Hash(ctx, "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
}
