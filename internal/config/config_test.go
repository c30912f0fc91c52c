package config

import (
	"strings"
	"testing"
	"time"
)

func TestLoadDefaults(t *testing.T) {
	c, err := Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if c.OutboundAllowPrivate {
		t.Fatal("the outbound switch is on by default")
	}
	if on, _ := Load(func(k string) string { return map[string]string{"GATEHOUSE_OUTBOUND_ALLOW_PRIVATE": "true"}[k] }); !on.OutboundAllowPrivate {
		t.Fatal("GATEHOUSE_OUTBOUND_ALLOW_PRIVATE=true did not turn the switch on")
	}
	if c.Addr != ":8080" || c.BaseDomain != "localhost" || c.PublicScheme != "https" || c.TenantCacheTTL != 30*time.Second || c.LogFormat != "json" {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestLoadRejects(t *testing.T) {
	tests := map[string]string{
		"GATEHOUSE_PUBLIC_SCHEME":          "ftp",
		"GATEHOUSE_BASE_DOMAIN":            "https://example.com",
		"GATEHOUSE_LOG_FORMAT":             "xml",
		"GATEHOUSE_LOG_LEVEL":              "loud",
		"GATEHOUSE_OPERATOR_TOKEN":         "short",
		"GATEHOUSE_TRUSTED_PROXIES":        "10.0.0.0/8,not-a-cidr",
		"GATEHOUSE_DB_MAX_CONNS":           "0",
		"GATEHOUSE_TENANT_CACHE_TTL":       "soon",
		"GATEHOUSE_SHUTDOWN_TIMEOUT":       "-5s",
		"GATEHOUSE_LISTEN_DATABASE_URL":    "listen here please",
		"GATEHOUSE_OUTBOUND_ALLOW_PRIVATE": "maybe",
	}
	for name, value := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := Load(func(k string) string {
				if k == name {
					return value
				}
				return ""
			})
			if err == nil || !strings.HasPrefix(err.Error(), name+":") {
				t.Fatalf("%s=%q: err = %v, want one naming the variable", name, value, err)
			}
		})
	}
}

// TestListenDatabaseURL: unset it stays empty (the listener then uses DATABASE_URL, and
// whether it was given decides River's mode); a connection string is taken as given; an
// invalid one stops start-up without repeating the password it may hold.
func TestListenDatabaseURL(t *testing.T) {
	env := map[string]string{"DATABASE_URL": "postgres://gatehouse_app@pgbouncer:6432/gatehouse"}
	get := func(k string) string { return env[k] }
	c, err := Load(get)
	if err != nil || c.ListenDatabaseURL != "" {
		t.Fatalf("unset: %q %v", c.ListenDatabaseURL, err)
	}
	env["GATEHOUSE_LISTEN_DATABASE_URL"] = " postgres://gatehouse_app@db:5432/gatehouse "
	if c, err = Load(get); err != nil || c.ListenDatabaseURL != "postgres://gatehouse_app@db:5432/gatehouse" {
		t.Fatalf("set: %q %v", c.ListenDatabaseURL, err)
	}
	env["GATEHOUSE_LISTEN_DATABASE_URL"] = "postgres://gatehouse_app:s3cret-pass@db:port/gatehouse"
	_, err = Load(get)
	if err == nil || !strings.HasPrefix(err.Error(), "GATEHOUSE_LISTEN_DATABASE_URL:") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("invalid: %v", err)
	}
	found := false
	for _, v := range Vars {
		found = found || v[0] == "GATEHOUSE_LISTEN_DATABASE_URL"
	}
	if !found {
		t.Fatal("GATEHOUSE_LISTEN_DATABASE_URL is missing from the help text")
	}
}

func TestParsePrefixes(t *testing.T) {
	ps, err := ParsePrefixes(" 10.0.0.0/8, 192.168.1.7 ,::1,")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.168.1.7/32", "::1/128"}
	if len(ps) != len(want) {
		t.Fatalf("got %v", ps)
	}
	for i, p := range ps {
		if p.String() != want[i] {
			t.Errorf("prefix %d = %s, want %s", i, p, want[i])
		}
	}
}

func TestPprofAddrLoopbackOnly(t *testing.T) {
	for v, ok := range map[string]bool{"": true, "127.0.0.1:6060": true, "[::1]:6060": true, "0.0.0.0:6060": false,
		":6060": false, "10.1.2.3:6060": false, "localhost:6060": false, "127.0.0.1": false} {
		c, err := Load(func(k string) string {
			if k == "GATEHOUSE_PPROF_ADDR" {
				return v
			}
			return ""
		})
		if (err == nil) != ok || ok && c.PprofAddr != v {
			t.Errorf("%q: %q %v", v, c.PprofAddr, err)
		}
	}
}
