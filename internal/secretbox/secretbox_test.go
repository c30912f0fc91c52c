package secretbox

import (
	"bytes"
	"testing"
)

func TestSealOpenRotate(t *testing.T) {
	k1, k2 := NewKey(), NewKey()
	old, err := New(k1)
	if err != nil {
		t.Fatal(err)
	}
	id, ct, err := old.Seal([]byte("totp secret"), []byte("tenant/user"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(ct, []byte("totp secret")) {
		t.Fatal("plaintext visible in ciphertext")
	}
	rotated, _ := New(k2 + "," + k1) // new key seals, old still opens
	if pt, err := rotated.Open(id, ct, []byte("tenant/user")); err != nil || string(pt) != "totp secret" {
		t.Fatalf("open after rotation: %q %v", pt, err)
	}
	if id2, _, _ := rotated.Seal([]byte("x"), nil); id2 == id {
		t.Fatal("the first key must seal")
	}
	if _, err := rotated.Open(id, ct, []byte("other/user")); err == nil {
		t.Fatal("opened with the wrong associated data")
	}
	ct[len(ct)-1] ^= 1
	if _, err := rotated.Open(id, ct, []byte("tenant/user")); err == nil {
		t.Fatal("tampered ciphertext opened")
	}
	only2, _ := New(k2)
	if _, err := only2.Open(id, ct, nil); err == nil {
		t.Fatal("opened without its key")
	}
	empty, _ := New("")
	if _, _, err := empty.Seal([]byte("x"), nil); err != ErrNoKey {
		t.Fatalf("seal without key: %v", err)
	}
	for _, bad := range []string{"short", "!!!", "YWJj"} {
		if _, err := New(bad); err == nil {
			t.Errorf("New(%q) accepted", bad)
		}
	}
}
