// Package config reads Gatehouse's configuration from the environment (names fixed by the
// operating contract in docs/configuration.md). Flags of the commands override it.
// Invalid values stop start-up with one line naming the variable.
package config

import (
	"crypto/x509"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Config is the server configuration.
type Config struct {
	DatabaseURL      string         // DATABASE_URL: the application role (gatehouse_app)
	AdminDatabaseURL string         // GATEHOUSE_ADMIN_DATABASE_URL: migrations; falls back to DatabaseURL
	Addr             string         // GATEHOUSE_ADDR, default :8080
	BaseDomain       string         // GATEHOUSE_BASE_DOMAIN, default localhost
	PublicScheme     string         // GATEHOUSE_PUBLIC_SCHEME: https (default) or http
	OperatorToken    string         // GATEHOUSE_OPERATOR_TOKEN: bearer token of /api/v1/platform
	MetricsAddr      string         // GATEHOUSE_METRICS_ADDR: separate /metrics listener, off when empty
	PprofAddr        string         // GATEHOUSE_PPROF_ADDR: loopback-only net/http/pprof listener, off when empty
	TrustedProxies   []netip.Prefix // GATEHOUSE_TRUSTED_PROXIES: CIDRs whose X-Forwarded-* are believed
	Mail             string         // GATEHOUSE_MAIL
	MailFrom         string         // GATEHOUSE_MAIL_FROM
	SecretKey        string         // GATEHOUSE_SECRET_KEY (base64 keys, comma-separated)
	DBMaxConns       int32          // GATEHOUSE_DB_MAX_CONNS, default 10
	DBExecMode       string         // GATEHOUSE_DB_EXEC_MODE, default cache_statement
	LogFormat        string         // GATEHOUSE_LOG_FORMAT: json (default) or text
	LogLevel         string         // GATEHOUSE_LOG_LEVEL: debug, info (default), warn, error
	TenantCacheTTL   time.Duration  // GATEHOUSE_TENANT_CACHE_TTL, default 30s
	ShutdownTimeout  time.Duration  // GATEHOUSE_SHUTDOWN_TIMEOUT, default 20s
	PublicPort       int            // GATEHOUSE_PUBLIC_PORT: port in links (0: the scheme's default)
	SessionCacheSize int            // GATEHOUSE_SESSION_CACHE_SIZE: cached session checks per process (0: off), default 100000
	Argon2MemoryKiB  uint32         // GATEHOUSE_ARGON2_MEMORY_KIB, default 19456 (OWASP)
	Argon2Iterations uint32         // GATEHOUSE_ARGON2_ITERATIONS, default 2
	Argon2Threads    uint8          // GATEHOUSE_ARGON2_PARALLELISM, default 1
	DNSServer        string         // GATEHOUSE_DNS_SERVER: host:port for domain verification lookups (default: system resolver)
	MetadataRefresh  time.Duration  // GATEHOUSE_SSO_METADATA_REFRESH: how often metadata URLs are re-fetched, default 6h
	// GATEHOUSE_OUTBOUND_ALLOW_PRIVATE: URLs a tenant or operator typed may be http and
	// reach loopback/private addresses (default off; gatehouse dev turns it on).
	OutboundAllowPrivate bool

	// GATEHOUSE_LISTEN_DATABASE_URL: a direct (or session-pooled) connection for LISTEN;
	// empty means DATABASE_URL. It stays empty when unset: whether it was given decides
	// River's mode (app.newJobs).
	ListenDatabaseURL string

	// Set by code, not by the environment.
	DevMailDir    string        // dev only: the captured mail shown at /_dev/mail
	MailRetryBase time.Duration // first retry delay of a failed mail (default 10s)
	// WebhookRetryUnit scales the webhook retry schedule (webhooks.Schedule; default a second).
	WebhookRetryUnit time.Duration
	JobPollInterval  time.Duration    // how often idle job workers poll (default 1s)
	ResponseFloor    time.Duration    // least duration of signup/resend/forgot (default 250ms)
	OutboundRootCAs  *x509.CertPool   // tests serving TLS on loopback: roots for the outbound client (nil: system)
	Now              func() time.Time // the clock (nil: time.Now); tests inject one
}

// Vars lists every variable with its meaning, for `--help`.
var Vars = [][2]string{
	{"DATABASE_URL", "PostgreSQL connection of the application role (gatehouse_app)"},
	{"GATEHOUSE_ADMIN_DATABASE_URL", "owner or superuser connection for migrations (default: DATABASE_URL)"},
	{"GATEHOUSE_LISTEN_DATABASE_URL", "direct or session-mode connection for LISTEN/NOTIFY (default: DATABASE_URL); required for cache invalidation when DATABASE_URL goes through PgBouncer in transaction mode"},
	{"GATEHOUSE_ADDR", "listen address (default :8080)"},
	{"GATEHOUSE_BASE_DOMAIN", "tenants are {slug}.{base} (default localhost)"},
	{"GATEHOUSE_PUBLIC_SCHEME", "https (default) or http, for links and SAML URLs"},
	{"GATEHOUSE_OPERATOR_TOKEN", "bearer token for /api/v1/platform on the base host"},
	{"GATEHOUSE_METRICS_ADDR", "separate listener for Prometheus /metrics (off when empty)"},
	{"GATEHOUSE_PPROF_ADDR", "loopback address (127.0.0.1:PORT) of a Go pprof listener for profiling (off when empty; refused on other addresses)"},
	{"GATEHOUSE_TRUSTED_PROXIES", "comma-separated CIDRs whose X-Forwarded-* headers are believed"},
	{"GATEHOUSE_MAIL", "ses, smtp://user:pass@host:port, dir:/path or log"},
	{"GATEHOUSE_MAIL_FROM", "default sender address"},
	{"GATEHOUSE_SECRET_KEY", "base64 32-byte keys for secrets at rest, comma-separated, first encrypts"},
	{"GATEHOUSE_DNS_SERVER", "host:port of the DNS server for SSO domain verification (default: system resolver)"},
	{"GATEHOUSE_SSO_METADATA_REFRESH", "how often IdP metadata URLs are re-fetched (default 6h)"},
	{"GATEHOUSE_OUTBOUND_ALLOW_PRIVATE", "true: URLs tenants type (metadata, webhooks, OIDC issuers, logout URIs) may be http and private addresses (default false; dev: true)"},
	{"GATEHOUSE_DB_MAX_CONNS", "pool size per process (default 10)"},
	{"GATEHOUSE_DB_EXEC_MODE", "pgx exec mode: cache_statement (default), cache_describe, describe_exec, exec, simple_protocol"},
	{"GATEHOUSE_LOG_FORMAT", "json (default) or text"},
	{"GATEHOUSE_LOG_LEVEL", "debug, info (default), warn or error"},
	{"GATEHOUSE_TENANT_CACHE_TTL", "how long a resolved tenant is cached (default 30s, 0 disables)"},
	{"GATEHOUSE_SHUTDOWN_TIMEOUT", "how long in-flight requests may take after SIGTERM (default 20s)"},
	{"GATEHOUSE_PUBLIC_PORT", "port in links sent by email, when not the scheme's default"},
	{"GATEHOUSE_SESSION_CACHE_SIZE", "validated sessions cached per process (default 100000, 0 disables)"},
	{"GATEHOUSE_ARGON2_MEMORY_KIB", "argon2id memory in KiB (default 19456, OWASP)"},
	{"GATEHOUSE_ARGON2_ITERATIONS", "argon2id iterations (default 2)"},
	{"GATEHOUSE_ARGON2_PARALLELISM", "argon2id parallelism (default 1)"},
	{"AWS_REGION, AWS_ENDPOINT_URL_SESV2, AWS_*", "SES (GATEHOUSE_MAIL=ses): the AWS SDK's standard configuration chain"},
	{"OTEL_*", "OpenTelemetry: OTLP exporters are on when OTEL_EXPORTER_OTLP_ENDPOINT (or a signal's endpoint) is set"},
}

// Load reads the environment through getenv.
func Load(getenv func(string) string) (Config, error) {
	c := Config{
		DatabaseURL:      getenv("DATABASE_URL"),
		AdminDatabaseURL: getenv("GATEHOUSE_ADMIN_DATABASE_URL"),
		Addr:             or(getenv("GATEHOUSE_ADDR"), ":8080"),
		BaseDomain:       strings.ToLower(strings.TrimSuffix(or(getenv("GATEHOUSE_BASE_DOMAIN"), "localhost"), ".")),
		PublicScheme:     or(getenv("GATEHOUSE_PUBLIC_SCHEME"), "https"),
		OperatorToken:    getenv("GATEHOUSE_OPERATOR_TOKEN"),
		MetricsAddr:      getenv("GATEHOUSE_METRICS_ADDR"),
		Mail:             or(getenv("GATEHOUSE_MAIL"), "log"),
		MailFrom:         getenv("GATEHOUSE_MAIL_FROM"),
		SecretKey:        getenv("GATEHOUSE_SECRET_KEY"),
		DBExecMode:       getenv("GATEHOUSE_DB_EXEC_MODE"),
		LogFormat:        or(getenv("GATEHOUSE_LOG_FORMAT"), "json"),
		LogLevel:         or(getenv("GATEHOUSE_LOG_LEVEL"), "info"),
		DBMaxConns:       10,
	}
	if c.AdminDatabaseURL == "" {
		c.AdminDatabaseURL = c.DatabaseURL
	}
	c.ListenDatabaseURL = strings.TrimSpace(getenv("GATEHOUSE_LISTEN_DATABASE_URL"))
	if c.ListenDatabaseURL != "" {
		// The value may hold a password: the message does not repeat it.
		if _, err := pgconn.ParseConfig(c.ListenDatabaseURL); err != nil {
			return c, fmt.Errorf("GATEHOUSE_LISTEN_DATABASE_URL: not a valid PostgreSQL connection string (postgres://user@host:5432/db)")
		}
	}
	if c.PublicScheme != "https" && c.PublicScheme != "http" {
		return c, fmt.Errorf("GATEHOUSE_PUBLIC_SCHEME: must be https or http, not %q", c.PublicScheme)
	}
	if c.BaseDomain == "" || strings.ContainsAny(c.BaseDomain, "/:@ ") {
		return c, fmt.Errorf("GATEHOUSE_BASE_DOMAIN: %q is not a domain name", c.BaseDomain)
	}
	if c.LogFormat != "json" && c.LogFormat != "text" {
		return c, fmt.Errorf("GATEHOUSE_LOG_FORMAT: must be json or text, not %q", c.LogFormat)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return c, fmt.Errorf("GATEHOUSE_LOG_LEVEL: must be debug, info, warn or error, not %q", c.LogLevel)
	}
	if t := c.OperatorToken; t != "" && len(t) < 32 {
		return c, fmt.Errorf("GATEHOUSE_OPERATOR_TOKEN: must be at least 32 characters (use: openssl rand -hex 32)")
	}
	var err error
	if c.PprofAddr, err = loopbackAddr(getenv, "GATEHOUSE_PPROF_ADDR"); err != nil {
		return c, err
	}
	if c.TrustedProxies, err = ParsePrefixes(getenv("GATEHOUSE_TRUSTED_PROXIES")); err != nil {
		return c, fmt.Errorf("GATEHOUSE_TRUSTED_PROXIES: %w", err)
	}
	if v := getenv("GATEHOUSE_DB_MAX_CONNS"); v != "" {
		n, err := strconv.ParseInt(v, 10, 32)
		if err != nil || n < 1 || n > 1000 {
			return c, fmt.Errorf("GATEHOUSE_DB_MAX_CONNS: must be a number from 1 to 1000, not %q", v)
		}
		c.DBMaxConns = int32(n)
	}
	if c.TenantCacheTTL, err = duration(getenv, "GATEHOUSE_TENANT_CACHE_TTL", 30*time.Second); err != nil {
		return c, err
	}
	if c.ShutdownTimeout, err = duration(getenv, "GATEHOUSE_SHUTDOWN_TIMEOUT", 20*time.Second); err != nil {
		return c, err
	}
	port, err := number(getenv, "GATEHOUSE_PUBLIC_PORT", 0, 0, 65535)
	if err != nil {
		return c, err
	}
	c.PublicPort = port
	c.DNSServer = strings.TrimSpace(getenv("GATEHOUSE_DNS_SERVER"))
	switch v := strings.ToLower(strings.TrimSpace(getenv("GATEHOUSE_OUTBOUND_ALLOW_PRIVATE"))); v {
	case "", "false", "0", "no", "off":
	case "true", "1", "yes", "on":
		c.OutboundAllowPrivate = true
	default:
		return c, fmt.Errorf("GATEHOUSE_OUTBOUND_ALLOW_PRIVATE: must be true or false, not %q", v)
	}
	if c.MetadataRefresh, err = duration(getenv, "GATEHOUSE_SSO_METADATA_REFRESH", 6*time.Hour); err != nil {
		return c, err
	}
	if c.SessionCacheSize, err = number(getenv, "GATEHOUSE_SESSION_CACHE_SIZE", 100000, 0, 10000000); err != nil {
		return c, err
	}
	mem, err := number(getenv, "GATEHOUSE_ARGON2_MEMORY_KIB", 19*1024, 8*1024, 4*1024*1024)
	if err != nil {
		return c, err
	}
	iter, err := number(getenv, "GATEHOUSE_ARGON2_ITERATIONS", 2, 1, 100)
	if err != nil {
		return c, err
	}
	par, err := number(getenv, "GATEHOUSE_ARGON2_PARALLELISM", 1, 1, 64)
	if err != nil {
		return c, err
	}
	c.Argon2MemoryKiB, c.Argon2Iterations, c.Argon2Threads = uint32(mem), uint32(iter), uint8(par)
	if c.MailFrom == "" {
		c.MailFrom = "no-reply@" + c.BaseDomain
	}
	if a, err := mail.ParseAddress(c.MailFrom); err != nil || a.Address == "" {
		return c, fmt.Errorf("GATEHOUSE_MAIL_FROM: %q is not an email address", c.MailFrom)
	}
	c.MailRetryBase, c.JobPollInterval, c.ResponseFloor = 10*time.Second, time.Second, 250*time.Millisecond
	return c, nil
}

// ParsePrefixes reads comma-separated CIDRs or single addresses.
func ParsePrefixes(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("%q is not an address or CIDR", f)
			}
			out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR", f)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

func duration(getenv func(string) string, name string, def time.Duration) (time.Duration, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s: must be a duration such as 30s, not %q", name, v)
	}
	return d, nil
}

func number(getenv func(string) string, name string, def, lo, hi int) (int, error) {
	v := getenv(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s: must be a number from %d to %d, not %q", name, lo, hi, v)
	}
	return n, nil
}

// loopbackAddr reads a host:port whose host is a loopback address ("" when unset): the
// profiling listener must never be reachable from outside the machine.
func loopbackAddr(getenv func(string) string, name string) (string, error) {
	v := strings.TrimSpace(getenv(name))
	if v == "" {
		return "", nil
	}
	host, port, err := net.SplitHostPort(v)
	if err != nil || port == "" {
		return "", fmt.Errorf("%s: must be host:port on a loopback address (127.0.0.1:6060), not %q", name, v)
	}
	if a, err := netip.ParseAddr(host); err != nil || !a.Unmap().IsLoopback() {
		return "", fmt.Errorf("%s: only a loopback address (127.0.0.1 or ::1) is allowed, not %q", name, host)
	}
	return v, nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
