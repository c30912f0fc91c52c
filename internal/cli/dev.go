package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/app"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/config"
	"github.com/gatehouse-id/gatehouse/internal/devapp"
	"github.com/gatehouse-id/gatehouse/internal/domainverify"
	"github.com/gatehouse-id/gatehouse/internal/migrate"
	"github.com/gatehouse-id/gatehouse/internal/oidcop"
	"github.com/gatehouse-id/gatehouse/internal/pgserver"
	"github.com/gatehouse-id/gatehouse/internal/secretbox"
	"github.com/gatehouse-id/gatehouse/internal/sso/devidp"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// Demo tenant seeded by dev.
const (
	demoSlug       = "acme"
	demoName       = "Acme"
	demoAdminEmail = "admin@acme.example"
	// The demo user's password is printed at start: it exists only in dev databases.
	demoUserEmail     = "user@acme.example"
	demoUserPassword  = "demo-correct-horse-battery"
	demoAdminPassword = "demo-admin-staple-lantern"
)

func runDev(ctx context.Context, args []string, env Env) error {
	fs := newFlags("dev", env)
	addr := fs.String("addr", "127.0.0.1:8080", "listen address")
	dataDir := fs.String("data-dir", ".gatehouse", "directory for the private PostgreSQL and captured mail")
	idpAddr := fs.String("idp-addr", "127.0.0.1:8081", "listen address of the dev SAML IdP (empty: none)")
	oidcIdPAddr := fs.String("oidc-idp-addr", "127.0.0.1:8083", "listen address of the dev OpenID Provider (empty or off: none)")
	appAddr := fs.String("app-addr", "127.0.0.1:8082", "listen address of the demo OpenID Connect app (empty or off: none)")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if err := os.MkdirAll(*dataDir, 0o755); err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	secretKey, err := devSecretKey(*dataDir)
	if err != nil {
		return err
	}
	devEnv := func(k string) string {
		if v := env.Getenv(k); v != "" {
			return v
		}
		return map[string]string{
			"GATEHOUSE_PUBLIC_SCHEME": "http",
			"GATEHOUSE_LOG_FORMAT":    "text",
			"GATEHOUSE_MAIL":          "dir:" + filepath.Join(*dataDir, "mail"),
			"GATEHOUSE_SECRET_KEY":    secretKey,
			// loopback back-channel logout URIs (the demo app's) and metadata URLs (API.md)
			"GATEHOUSE_OUTBOUND_ALLOW_PRIVATE": "true",
		}[k]
	}
	cfg, err := config.Load(devEnv)
	if err != nil {
		return err
	}
	cfg.Addr = *addr
	logger, flushLogs := newLogger(cfg, env.Stderr)
	defer flushLogs()

	if cfg.DatabaseURL == "" {
		// As root with the data dir where the postgres user cannot reach (a checkout under
		// /root), the cluster lives in a directory of its own: say where.
		requested := filepath.Join(*dataDir, "pg")
		pgDir, err := pgserver.Locate(requested)
		if err != nil {
			return err
		}
		var attrs []any
		if abs, _ := filepath.Abs(requested); pgDir != abs {
			attrs = append(attrs, "instead_of", abs,
				"why", "the postgres system user, who runs the cluster, cannot reach it; a note there points here")
		}
		logger.Info("private PostgreSQL at "+pgDir, attrs...)
		pg, err := pgserver.Start(ctx, requested, pgserver.Options{Durable: true})
		if err != nil {
			return err
		}
		if pg.Started {
			defer func() {
				logger.Info("stopping private PostgreSQL")
				if err := pg.Stop(context.WithoutCancel(ctx)); err != nil {
					logger.Error("stop private PostgreSQL", "err", err)
				}
			}()
		}
		if err := ensureDatabase(ctx, pg.URL("postgres", "postgres"), "gatehouse"); err != nil {
			return err
		}
		cfg.AdminDatabaseURL = pg.URL("postgres", "gatehouse")
		cfg.DatabaseURL = pg.URL(migrate.AppRole, "gatehouse")
	}
	if err := migrate.Up(ctx, cfg.AdminDatabaseURL); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("--addr: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if cfg.PublicPort == 0 {
		cfg.PublicPort = port
	}
	if strings.HasPrefix(cfg.Mail, "dir:") {
		cfg.DevMailDir = strings.TrimPrefix(cfg.Mail, "dir:")
	}
	var dev *devSSO
	if *idpAddr != "" {
		if dev, err = startDevSSO(*idpAddr, *dataDir, logger); err != nil {
			logger.Warn("dev SAML IdP not started; SSO demo unavailable (use --idp-addr to pick another address)", "err", err)
		}
	}
	if dev != nil {
		defer dev.close()
		if cfg.DNSServer == "" {
			cfg.DNSServer = dev.dns.Addr // answers _gatehouse.acme.test; set GATEHOUSE_DNS_SERVER to verify real domains
		}
		cfg.OutboundAllowPrivate = true
	}
	var devOP *devOIDC
	if *oidcIdPAddr != "" && *oidcIdPAddr != "off" {
		if devOP, err = startDevOIDC(*oidcIdPAddr, logger); err != nil {
			logger.Warn("dev OpenID Provider not started; OIDC SSO demo unavailable (use --oidc-idp-addr to pick another address)", "err", err)
		} else {
			defer devOP.close()
			cfg.OutboundAllowPrivate = true // discovery and tokens at http://localhost
		}
	}
	a, err := app.New(ctx, cfg, logger, devEnv)
	if err != nil {
		ln.Close()
		return err
	}
	if err := seedDemo(ctx, a); err != nil {
		ln.Close()
		a.Close()
		return err
	}
	ssoLine := ""
	if dev != nil {
		if err := dev.connect(ctx, a); err != nil {
			ln.Close()
			a.Close()
			return err
		}
		login := fmt.Sprintf("http://%s.%s:%d/login", demoSlug, cfg.BaseDomain, port)
		dev.idp.SetStart(login)
		ssoLine = fmt.Sprintf("  SSO (dev IdP): %s → type alice@acme.test (or bob@, carol@) → \"Sign in with single sign-on\";\n"+
			"                 at the dev IdP (%s) sign in as alice (or alice@acme.test), password %s\n",
			login, dev.idp.FrontURL(), devidp.Password)
	}
	if devOP != nil {
		var dns *domainverify.Server
		if dev != nil {
			dns = dev.dns
		}
		loginURL, err := devOP.connect(ctx, a, dns)
		if err != nil {
			logger.Warn("dev OIDC connection not made", "err", err)
		} else {
			ssoLine += fmt.Sprintf("  SSO (dev OIDC): %s → at the dev OpenID Provider (%s) sign in as alice, password %s\n"+
				"                 (or type alice@%s on the login page → \"Sign in with single sign-on\")\n",
				loginURL, devOP.idp.Issuer, devidp.Password, devidp.OIDCDomain)
		}
	}
	appLine := ""
	if *appAddr != "" && *appAddr != "off" {
		demo, err := startDemoApp(ctx, a, *appAddr, logger)
		if err != nil {
			logger.Warn("demo app not started (use --app-addr to pick another address, off for none)", "err", err)
		} else {
			defer demo.close()
			appLine = fmt.Sprintf("  Demo app:      %s/  → \"Sign in with %s\" as %s, then \"Sensitive action\"\n", demo.base, demoName, demoUserEmail)
		}
	}
	fmt.Fprintf(env.Stdout, `
Gatehouse dev is running.
%s  Demo tenant:   http://%s.%s:%d/
  Operator host: http://%s:%d/
  Sign in:       http://%s.%s:%d/login  as %s / %s
  Admin portal:  http://%s.%s:%d/admin  as %s / %s
  Dev mailbox:   http://%s.%s:%d/_dev/mail
  Health:        http://%s.%s:%d/healthz
%s  CLI commands against this server (links they print and mail point here):
    export DATABASE_URL='%s' GATEHOUSE_PUBLIC_SCHEME=%s GATEHOUSE_PUBLIC_PORT=%d GATEHOUSE_BASE_DOMAIN=%s
Press Ctrl-C to stop.
`, appLine, demoSlug, cfg.BaseDomain, port, cfg.BaseDomain, port, demoSlug, cfg.BaseDomain, port, demoUserEmail, demoUserPassword,
		demoSlug, cfg.BaseDomain, port, demoAdminEmail, demoAdminPassword,
		demoSlug, cfg.BaseDomain, port, demoSlug, cfg.BaseDomain, port, ssoLine, cfg.DatabaseURL, cfg.PublicScheme, cfg.PublicPort, cfg.BaseDomain)
	return a.Serve(ctx, ln)
}

// seedDemo creates the demo tenant, its admin and a verified self-serve user once; later
// runs leave them (and any changes) alone.
func seedDemo(ctx context.Context, a *app.App) error {
	if _, err := a.Tenants.Get(ctx, demoSlug); err == nil {
		return nil
	} else if !tenant.IsNotFound(err) {
		return err
	}
	c, err := a.Tenants.Create(ctx, tenant.CreateInput{Slug: demoSlug, Name: demoName})
	if errors.Is(err, tenant.ErrSlugTaken) {
		return nil // another dev process seeded it first
	}
	if err != nil {
		return err
	}
	for _, p := range []struct{ email, password, name, role string }{
		{demoAdminEmail, demoAdminPassword, "Demo Admin", authz.Owner},
		{demoUserEmail, demoUserPassword, "Demo User", authz.Member},
	} {
		u, err := a.Accounts.CreateVerifiedUser(ctx, c.Tenant, p.email, p.password, p.name)
		if err != nil {
			return err
		}
		if err := a.Store().InTenant(ctx, c.Tenant.ID, func(q *sqlcgen.Queries) error { return authz.Grant(ctx, q, u.ID, p.role) }); err != nil {
			return err
		}
	}
	return nil
}

// ensureDatabase creates database name when it does not exist.
func ensureDatabase(ctx context.Context, serverURL, name string) error {
	conn, err := pgx.Connect(ctx, serverURL)
	if err != nil {
		return fmt.Errorf("connect to private PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	if err != nil && !strings.Contains(err.Error(), "already exists") {
		return fmt.Errorf("create database %s: %w", name, err)
	}
	return nil
}

// devSecretKey keeps the dev server's key for secrets at rest in the data directory, so
// TOTP enrolments survive restarts.
func devSecretKey(dataDir string) (string, error) {
	path := filepath.Join(dataDir, "secret.key")
	if b, err := os.ReadFile(path); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	k := secretbox.NewKey()
	if err := os.WriteFile(path, []byte(k+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	return k, nil
}

// demoAppName names the demo app's registration on the demo tenant.
const demoAppName = "Demo app (gatehouse dev)"

// demoApp is the demo relying party of `gatehouse dev` (internal/devapp) on its listener.
type demoApp struct {
	base string
	srv  *http.Server
}

// startDemoApp listens on addr, registers the demo app on the demo tenant for that
// address (idempotently) and serves it. The app discovers the tenant's issuer on first
// use, so it may start before the Gatehouse listener serves.
func startDemoApp(ctx context.Context, a *app.App, addr string, logger *slog.Logger) (*demoApp, error) {
	ln, base, err := devapp.BindAddress(addr)
	if err != nil {
		return nil, fmt.Errorf("--app-addr: %w", err)
	}
	t, err := a.Tenants.Get(ctx, demoSlug)
	if err != nil {
		ln.Close()
		return nil, err
	}
	clientID, err := ensureDemoApp(ctx, a, t, base)
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("register the demo app on %s: %w", demoSlug, err)
	}
	rp, err := devapp.New(devapp.Deps{Issuer: a.OIDC.Issuer(t), ClientID: clientID, BaseURL: base, Provider: demoName,
		HTTP: devapp.LoopbackClient(), Logger: logger})
	if err != nil {
		ln.Close()
		return nil, err
	}
	d := &demoApp{base: base, srv: &http.Server{Handler: rp.Handler(), ReadHeaderTimeout: 5 * time.Second}}
	go func() {
		if err := d.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("demo app", "err", err)
		}
	}()
	return d, nil
}

func (d *demoApp) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = d.srv.Shutdown(ctx)
}

// ensureDemoApp makes sure the demo tenant has the demo app as a first-party public client
// whose redirect, post-logout and back-channel logout URIs are those of base; it returns
// the client id. An app that already fits is left alone (no audit event).
func ensureDemoApp(ctx context.Context, a *app.App, t tenant.Tenant, base string) (string, error) {
	redirect, postLogout, backchannel := devapp.URIs(base)
	name, typ, firstParty := demoAppName, "public", true
	redirects, postLogouts := []string{redirect}, []string{postLogout}
	scopes, grants := []string{"openid", "profile", "email"}, []string{"authorization_code"}
	in := oidcop.AppInput{Name: &name, Type: &typ, RedirectURIs: &redirects, PostLogoutRedirectURIs: &postLogouts,
		BackchannelLogoutURI: &backchannel, FirstParty: &firstParty, AllowedScopes: &scopes, GrantTypes: &grants}
	who := audit.Who{ActorLabel: "gatehouse dev"}
	apps, err := a.OIDC.ListApps(ctx, t)
	if err != nil {
		return "", err
	}
	for _, ap := range apps {
		if ap.Name != demoAppName || ap.Type != "public" {
			continue
		}
		if slices.Equal(ap.RedirectURIs, redirects) && slices.Equal(ap.PostLogoutRedirectURIs, postLogouts) &&
			ap.BackchannelLogoutURI == backchannel && ap.FirstParty && slices.Equal(ap.AllowedScopes, scopes) &&
			slices.Equal(ap.GrantTypes, grants) {
			return ap.ClientID, nil
		}
		in.Type = nil
		if _, err := a.OIDC.UpdateApp(ctx, t, ap.ID, in, who); err != nil {
			return "", err
		}
		return ap.ClientID, nil
	}
	c, err := a.OIDC.CreateApp(ctx, t, in, who)
	if err != nil {
		return "", err
	}
	return c.App.ClientID, nil
}
