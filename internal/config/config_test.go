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
	if c.Addr != ":8080" || c.BaseDomain != "localhost" || c.PublicScheme != "https" || c.TenantCacheTTL != 30*time.Second || c.LogFormat != "json" {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestLoadRejects(t *testing.T) {
	tests := map[string]string{
		"GATEHOUSE_PUBLIC_SCHEME":    "ftp",
		"GATEHOUSE_BASE_DOMAIN":      "https://example.com",
		"GATEHOUSE_LOG_FORMAT":       "xml",
		"GATEHOUSE_LOG_LEVEL":        "loud",
		"GATEHOUSE_OPERATOR_TOKEN":   "short",
		"GATEHOUSE_TRUSTED_PROXIES":  "10.0.0.0/8,not-a-cidr",
		"GATEHOUSE_DB_MAX_CONNS":     "0",
		"GATEHOUSE_TENANT_CACHE_TTL": "soon",
		"GATEHOUSE_SHUTDOWN_TIMEOUT": "-5s",
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
