package tenant

import "testing"

func TestParseHost(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, host, base string
		kind             HostKind
		slug             string
	}{
		{"tenant", "acme.localhost", "localhost", HostTenant, "acme"},
		{"tenant with port", "acme.localhost:8080", "localhost", HostTenant, "acme"},
		{"upper case", "ACME.LocalHost:8080", "localhost", HostTenant, "acme"},
		{"trailing dot", "acme.example.com.", "example.com", HostTenant, "acme"},
		{"base domain case", "acme.example.com", "Example.COM", HostTenant, "acme"},
		{"base host", "localhost:8080", "localhost", HostBase, ""},
		{"base host trailing dot", "example.com.", "example.com", HostBase, ""},
		{"two labels deep", "x.acme.localhost", "localhost", HostUnknown, ""},
		{"other domain", "acme.evil.com", "localhost", HostUnknown, ""},
		{"suffix trick", "acmelocalhost", "localhost", HostUnknown, ""},
		{"suffix trick 2", "acme.notlocalhost", "localhost", HostUnknown, ""},
		{"ip address", "127.0.0.1:8080", "localhost", HostUnknown, ""},
		{"ipv6", "[::1]:8080", "localhost", HostUnknown, ""},
		{"empty", "", "localhost", HostUnknown, ""},
		{"invalid label", "ac_me.localhost", "localhost", HostUnknown, ""},
		{"leading hyphen", "-acme.localhost", "localhost", HostUnknown, ""},
		{"reserved label", "www.localhost", "localhost", HostUnknown, ""},
		{"empty label", ".localhost", "localhost", HostUnknown, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kind, slug := ParseHost(tt.host, tt.base)
			if kind != tt.kind || slug != tt.slug {
				t.Fatalf("ParseHost(%q, %q) = %v, %q; want %v, %q", tt.host, tt.base, kind, slug, tt.kind, tt.slug)
			}
		})
	}
}

func TestValidateSlug(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"a", "acme", "acme-corp", "a1", "123"} {
		if err := ValidateSlug(ok); err != nil {
			t.Errorf("ValidateSlug(%q) = %v", ok, err)
		}
	}
	long := ""
	for range 64 {
		long += "a"
	}
	for _, bad := range []string{"", "Acme", "acme-", "-acme", "ac me", "ac.me", "admin", "www", long, "açme"} {
		if err := ValidateSlug(bad); err == nil {
			t.Errorf("ValidateSlug(%q) accepted", bad)
		}
	}
}
