package emailaddr

import (
	"strings"
	"testing"
)

func TestNormalize(t *testing.T) {
	ok := map[string]string{
		"  Alice@Example.COM ":     "Alice@example.com",
		"bob+tag@sub.example.org":  "bob+tag@sub.example.org",
		"user@bücher.example":      "user@xn--bcher-kva.example",
		"user@EXAMPLE.com.":        "user@example.com",
		"o'brien@example.ie":       "o'brien@example.ie",
		"first.last@example.co.uk": "first.last@example.co.uk",
	}
	for in, want := range ok {
		got, err := Normalize(in)
		if err != nil || got != want {
			t.Errorf("Normalize(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := []string{
		"", "plain", "@example.com", "user@", "user@localhost", "a b@example.com",
		"user@@example.com", "Name <user@example.com>", "user@exa mple.com",
		"user@example.com\r\nBcc: x@y.z", strings.Repeat("a", 65) + "@example.com",
		"u@" + strings.Repeat("d", 250) + ".com", "user@exam_ple.com", "\xff@example.com",
		"user@-example.com",
	}
	for _, in := range bad {
		if got, err := Normalize(in); err == nil {
			t.Errorf("Normalize(%q) = %q, want invalid_email", in, got)
		}
	}
}

func TestDomain(t *testing.T) {
	if d := Domain("a@b.example"); d != "b.example" {
		t.Fatal(d)
	}
}
