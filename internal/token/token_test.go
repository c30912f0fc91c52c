package token

import (
	"bytes"
	"testing"
)

func TestNewAndParse(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		tok, hash := New()
		if len(tok) != 43 || len(hash) != 32 || seen[tok] {
			t.Fatalf("token %q (hash %d bytes, repeated %v)", tok, len(hash), seen[tok])
		}
		seen[tok] = true
		h, err := Parse(tok)
		if err != nil || !bytes.Equal(h, hash) {
			t.Fatalf("parse: %v", err)
		}
	}
	for _, bad := range []string{"", "short", string(make([]byte, 43)), "!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
}
