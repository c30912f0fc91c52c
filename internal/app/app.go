// Package app wires Gatehouse's parts into a running server. `gatehouse serve`,
// `gatehouse dev` and the test harness all start the server through it, so tests exercise
// exactly what production runs.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	mailpkg "net/mail"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/config"
	"github.com/gatehouse-id/gatehouse/internal/httpapi"
	"github.com/gatehouse-id/gatehouse/internal/mail"
	"github.com/gatehouse-id/gatehouse/internal/mfa"
	"github.com/gatehouse-id/gatehouse/internal/migrate"
	"github.com/gatehouse-id/gatehouse/internal/password"
	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
	"github.com/gatehouse-id/gatehouse/internal/secretbox"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/sso"
	"github.com/gatehouse-id/gatehouse/internal/stepup"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/telemetry"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/web"
)

// Version is the build's version, set by the linker (-X) in release builds.
var Version = "dev"

// App is a wired server.
type App struct {
	activeSessions telemetry.PerTenant[int64] // gatehouse.sessions.active, per tenant

	cfg       config.Config
	logger    *slog.Logger
	store     *store.Store
	telemetry *telemetry.Telemetry
	listener  *store.Listener
	jobs      *river.Client[pgx.Tx]
	purger    *account.PurgeWorker
	Tenants   *tenant.Service
	Resolver  *tenant.Resolver
	Accounts  *account.Service
	Sessions  *session.Service
	StepUp    *stepup.Service
	Authz     *authz.Service
	SSO       *sso.Service
	Handler   http.Handler
	routes    chi.Routes
	now       func() time.Time
}

// New connects to the database as the application role, refuses a role that bypasses
// row-level security, and builds the handler. Telemetry comes from the OTEL_* variables.
func New(ctx context.Context, cfg config.Config, logger *slog.Logger, getenv func(string) string) (*App, error) {
	tel, err := telemetry.Setup(ctx, Version, getenv)
	if err != nil {
		return nil, err
	}
	a, err := NewWithTelemetry(ctx, cfg, logger, tel)
	if err != nil {
		_ = tel.Shutdown(context.WithoutCancel(ctx))
		return nil, err
	}
	return a, nil
}

// NewWithTelemetry is New with providers the caller built (tests record spans with it).
// The App shuts tel down when it stops.
func NewWithTelemetry(ctx context.Context, cfg config.Config, logger *slog.Logger, tel *telemetry.Telemetry) (*App, error) {
	if cfg.DatabaseURL == "" {
		return nil, errors.New("DATABASE_URL: not set (the gatehouse_app connection)")
	}
	st, err := store.Open(ctx, store.Config{URL: cfg.DatabaseURL, MaxConns: cfg.DBMaxConns, ExecMode: cfg.DBExecMode,
		TracerProvider: tel.TracerProvider, MeterProvider: tel.MeterProvider})
	if err != nil {
		return nil, fmt.Errorf("DATABASE_URL: %w", err)
	}
	if err := st.CheckAppRole(ctx); err != nil {
		st.Close()
		return nil, err
	}
	pages, err := web.NewRenderer()
	if err != nil {
		st.Close()
		return nil, err
	}
	a := &App{cfg: cfg, logger: logger, store: st, telemetry: tel, now: time.Now}
	if cfg.Now != nil {
		a.now = cfg.Now
	}
	box, err := secretbox.New(cfg.SecretKey)
	if err != nil {
		st.Close()
		return nil, err
	}
	if !box.Enabled() {
		logger.Warn("GATEHOUSE_SECRET_KEY is not set: two-factor authentication cannot be enabled")
	}
	a.listener = st.NewListener(logger)
	a.Tenants = tenant.NewService(st, a.now)
	a.Resolver = tenant.NewResolver(st, cfg.TenantCacheTTL, a.now, a.listener)
	a.Sessions = session.NewService(st, a.now, a.listener, session.Config{CacheSize: cfg.SessionCacheSize, CacheTTL: time.Minute})

	sender, err := mail.NewSender(ctx, cfg.Mail, logger)
	if err != nil {
		st.Close()
		return nil, err
	}
	a.purger = &account.PurgeWorker{Tenants: a.Tenants}
	if a.jobs, err = a.newJobs(sender, tel); err != nil {
		st.Close()
		return nil, err
	}
	templates, err := mail.LoadTemplates()
	if err != nil {
		st.Close()
		return nil, err
	}
	outbox := mail.NewOutbox(templates, cfg.MailFrom, a.jobs)
	hasher := password.NewHasher(password.Params{MemoryKiB: cfg.Argon2MemoryKiB, Iterations: cfg.Argon2Iterations,
		Parallelism: cfg.Argon2Threads, SaltLen: 16, KeyLen: 32})
	urls := tenant.URLs{Scheme: cfg.PublicScheme, BaseDomain: cfg.BaseDomain, Port: cfg.PublicPort}
	limiter := ratelimit.New(st, a.now)
	second := mfa.NewService(st, box, a.now)
	a.Accounts = account.NewService(st, a.Sessions, second, hasher, outbox, limiter, urls,
		account.Config{ResponseFloor: cfg.ResponseFloor}, a.now)
	a.purger.Accounts = a.Accounts
	a.StepUp = stepup.NewService(st, hasher, second, a.Sessions, limiter, a.now)
	a.Authz = authz.NewService(st, a.listener)
	a.SSO = sso.NewService(st, box, urls, a.Sessions, sso.Config{AllowPrivateMetadata: cfg.DevSSO, DNSServer: cfg.DNSServer,
		MetadataClient: cfg.SSOHTTPClient, Mail: outbox, RolesChanged: a.Authz.Changed,
		Limiter: limiter, Meter: tel.MeterProvider.Meter("gatehouse/sso")},
		a.now, cfg.Now == nil, logger)
	a.Accounts.SetSSOGate(a.SSO.Required)

	a.Accounts.SetMeter(tel.MeterProvider.Meter("gatehouse/account"))
	a.StepUp.SetMeter(tel.MeterProvider.Meter("gatehouse/stepup"))
	if err := a.registerGauges(tel.MeterProvider.Meter("gatehouse/runtime")); err != nil {
		st.Close()
		return nil, fmt.Errorf("metrics: %w", err)
	}

	a.Handler, a.routes = httpapi.NewServer(logger,
		httpapi.Config{BaseDomain: cfg.BaseDomain, OperatorToken: cfg.OperatorToken, TrustedProxies: cfg.TrustedProxies,
			DevMailDir: cfg.DevMailDir},
		tel.TracerProvider, tel.MeterProvider, pages, a.ready, a.Tenants, a.Resolver, a.Sessions, a.Accounts, a.StepUp, st, a.Authz, a.SSO)
	return a, nil
}

// newJobs builds the River client that runs background jobs (mail delivery, account
// purges) on the application role's pool. Every job is traced: its span continues the
// trace of the request that enqueued it (telemetry.JobTracing).
func (a *App) newJobs(sender mail.Sender, tel *telemetry.Telemetry) (*river.Client[pgx.Tx], error) {
	worker, err := mail.NewWorker(a.store, sender, a.mailFrom, a.logger, tel.MeterProvider)
	if err != nil {
		return nil, err
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, worker)
	river.AddWorker(workers, a.purger)
	poll := a.cfg.JobPollInterval
	tracing := telemetry.NewJobTracing(tel.TracerProvider, func(ctx context.Context) string { return httpapi.Info(ctx).ID })
	client, err := river.NewClient(riverpgxv5.New(a.store.Pool()), &river.Config{
		Queues:                      map[string]river.QueueConfig{mail.Queue: {MaxWorkers: 10}, river.QueueDefault: {MaxWorkers: 2}},
		Workers:                     workers,
		Middleware:                  []rivertype.Middleware{tracing},
		RetryPolicy:                 mail.RetryPolicy{Base: a.cfg.MailRetryBase, Max: 30 * time.Minute},
		FetchPollInterval:           poll,
		FetchCooldown:               min(100*time.Millisecond, poll/2),
		CompletedJobRetentionPeriod: 24 * time.Hour,
		Logger:                      slog.New(minLevel{Handler: a.logger.Handler(), min: slog.LevelWarn}).With("component", "river"),
	})
	if err != nil {
		return nil, fmt.Errorf("job queue: %w", err)
	}
	return client, nil
}

// mailFrom is the sender of a tenant's mail: its own address from the policy, or the
// global one under the tenant's name.
func (a *App) mailFrom(ctx context.Context, tenantID uuid.UUID) (string, string) {
	from := (&mailpkg.Address{Name: "Gatehouse", Address: a.cfg.MailFrom}).String()
	if addr, err := mailpkg.ParseAddress(a.cfg.MailFrom); err == nil {
		from = addr.String()
		if t, err := a.Tenants.GetByID(ctx, tenantID); err == nil {
			if t.Policy.Mail.From != "" {
				return t.Policy.Mail.From, t.Policy.Mail.SESConfigurationSet
			}
			if addr.Name == "" {
				addr.Name = t.Name
			}
			return addr.String(), t.Policy.Mail.SESConfigurationSet
		}
	}
	return from, ""
}

// ready is /readyz: the database answers and its schema is the one this binary expects.
func (a *App) ready(ctx context.Context) error {
	v, dirty, err := a.store.SchemaVersion(ctx)
	if err != nil {
		return errors.New("database unreachable or not migrated")
	}
	if dirty {
		return fmt.Errorf("migration %d failed midway; run gatehouse migrate", v)
	}
	if want := migrate.Latest(); uint(v) != want {
		return fmt.Errorf("schema version %d, this binary needs %d; run gatehouse migrate up", v, want)
	}
	return nil
}

// MetricsHandler is the Prometheus exposition served on GATEHOUSE_METRICS_ADDR.
func (a *App) MetricsHandler() http.Handler { return a.telemetry.Handler }

// TenantRoutes exposes the tenant-host route table (tests walk it).
func (a *App) TenantRoutes() chi.Routes { return a.routes }

// Store exposes the store (tests and the CLI use it).
func (a *App) Store() *store.Store { return a.store }

// Serve runs the HTTP server on ln, the notification listener and the periodic jobs until
// ctx is cancelled, then shuts down gracefully: in-flight requests finish (up to the
// shutdown timeout), then the pool closes.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { a.listener.Run(bg) })
	wg.Go(func() { a.purgeLoop(bg) })
	wg.Go(func() { a.metadataLoop(bg) })
	if err := a.jobs.Start(bg); err != nil {
		stopBG()
		wg.Wait()
		return fmt.Errorf("start job queue: %w", err)
	}

	var metricsSrv *http.Server
	errc := make(chan error, 2)
	if a.cfg.MetricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", a.telemetry.Handler)
		metricsSrv = &http.Server{Addr: a.cfg.MetricsAddr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := metricsSrv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("GATEHOUSE_METRICS_ADDR: %w", err)
			}
		}()
	}
	srv := &http.Server{
		Handler:           a.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(a.logger.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	a.logger.Info("gatehouse serving", "addr", ln.Addr().String(), "base_domain", a.cfg.BaseDomain)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	a.logger.Info("shutting down: finishing in-flight requests", "timeout", a.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.cfg.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("http shutdown: %w", err))
	}
	if metricsSrv != nil {
		_ = metricsSrv.Shutdown(sctx)
	}
	// Running jobs finish (a mail being sent is not cut off); queued ones wait for the next start.
	if err := a.jobs.Stop(sctx); err != nil {
		a.logger.Warn("job queue stop", "err", err)
	}
	stopBG()
	wg.Wait()
	a.store.Close()
	if err := a.telemetry.Shutdown(sctx); err != nil {
		a.logger.Warn("telemetry shutdown", "err", err)
	}
	a.logger.Info("stopped")
	return runErr
}

// Close releases resources of an App that never served.
func (a *App) Close() {
	a.store.Close()
	_ = a.telemetry.Shutdown(context.Background())
}

// metadataLoop re-fetches IdP metadata URLs (a failure keeps the last good metadata).
func (a *App) metadataLoop(ctx context.Context) {
	if a.cfg.MetadataRefresh <= 0 {
		return
	}
	t := time.NewTicker(a.cfg.MetadataRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		tenants, err := a.Tenants.List(ctx)
		if err == nil {
			err = a.SSO.RefreshMetadata(ctx, tenants)
		}
		if err != nil && ctx.Err() == nil {
			a.logger.Warn("sso metadata refresh had failures", "err", err)
		}
	}
}

// purgeLoop purges tenants whose deletion grace period is over once a minute, and runs the
// per-tenant housekeeping (sweep of expired rows, certificate-expiry notices and counts, the
// safety net for scheduled account purges) on a rotating batch of tenants: every tenant
// once per maintenanceBatch-sized slice per minute, so the background load of a node stays
// bounded however many tenants there are (at 10,000 tenants a sweep of all of them every
// minute on every node was ~1,000 transactions a second and slowed sign-ins by half).
func (a *App) purgeLoop(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	next := 0
	for {
		if n, err := a.Tenants.PurgeDue(ctx); err != nil && ctx.Err() == nil {
			a.logger.Error("tenant purge failed; will retry", "err", err)
		} else if n > 0 {
			a.logger.Info("purged tenants past their grace period", "count", n)
		}
		if tenants, err := a.Tenants.List(ctx); err == nil {
			var batch []tenant.Tenant
			batch, next = rotatingBatch(tenants, next, maintenanceBatch)
			a.housekeeping(ctx, batch, tenants)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// maintenanceBatch is how many tenants get their housekeeping per minute.
const maintenanceBatch = 200

// rotatingBatch returns up to n tenants starting at from (wrapping around) and where the
// next batch starts.
func rotatingBatch(tenants []tenant.Tenant, from, n int) ([]tenant.Tenant, int) {
	if len(tenants) <= n {
		return tenants, 0
	}
	from %= len(tenants)
	end := from + n
	if end <= len(tenants) {
		return tenants[from:end], end % len(tenants)
	}
	return append(append([]tenant.Tenant(nil), tenants[from:]...), tenants[:end-len(tenants)]...), end - len(tenants)
}

func (a *App) housekeeping(ctx context.Context, tenants, all []tenant.Tenant) {
	if err := a.Tenants.Sweep(ctx, tenants); err != nil && ctx.Err() == nil {
		a.logger.Error("sweep of expired rows failed; will retry", "err", err)
	}
	if err := a.SSO.CertificateNotices(ctx, tenants); err != nil && ctx.Err() == nil {
		a.logger.Error("sso certificate notices failed; will retry", "err", err)
	}
	if err := a.SSO.CountCertificateExpiries(ctx, tenants, all); err != nil && ctx.Err() == nil {
		a.logger.Warn("counting sso certificate expiries failed; will retry", "err", err)
	}
	if err := a.countActiveSessions(ctx, tenants, all); err != nil && ctx.Err() == nil {
		a.logger.Warn("counting active sessions failed; will retry", "err", err)
	}
	for _, t := range tenants {
		if _, err := a.Accounts.PurgeDue(ctx, t); err != nil && ctx.Err() == nil {
			a.logger.Error("account purge failed; will retry", "tenant", t.Slug, "err", err)
		}
	}
}

// minLevel drops records below min (River reports routine progress at info).
type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevel{Handler: h.Handler.WithAttrs(attrs), min: h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{Handler: h.Handler.WithGroup(name), min: h.min}
}
