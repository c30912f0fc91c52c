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
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivertype"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/admin"
	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/config"
	"github.com/gatehouse-id/gatehouse/internal/housekeeping"
	"github.com/gatehouse-id/gatehouse/internal/httpapi"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
	"github.com/gatehouse-id/gatehouse/internal/mail"
	"github.com/gatehouse-id/gatehouse/internal/mfa"
	"github.com/gatehouse-id/gatehouse/internal/migrate"
	"github.com/gatehouse-id/gatehouse/internal/oidcop"
	"github.com/gatehouse-id/gatehouse/internal/outbound"
	"github.com/gatehouse-id/gatehouse/internal/passkey"
	"github.com/gatehouse-id/gatehouse/internal/password"
	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
	"github.com/gatehouse-id/gatehouse/internal/scim"
	"github.com/gatehouse-id/gatehouse/internal/secretbox"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/sso"
	"github.com/gatehouse-id/gatehouse/internal/stepup"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/telemetry"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/webhooks"
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
	jobListen *pgxpool.Pool // River's LISTEN connection on GATEHOUSE_LISTEN_DATABASE_URL (nil: none of its own)
	Tenants   *tenant.Service
	Resolver  *tenant.Resolver
	Accounts  *account.Service
	Sessions  *session.Service
	StepUp    *stepup.Service
	Authz     *authz.Service
	Admin     *admin.Service
	SSO       *sso.Service
	OIDC      *oidcop.Service   // each tenant as an OpenID Provider
	SCIM      *scim.Service     // SCIM 2.0 provisioning directories
	Passkeys  *passkey.Service  // WebAuthn credentials and ceremonies
	Webhooks  *webhooks.Service // event deliveries to tenants' and the operator's endpoints
	Outbound  *outbound.Client  // every request to a URL a tenant or operator typed
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
	// The listener proves on every heartbeat that notifications sent through DATABASE_URL
	// reach it; until then the caches that rely on it are bypassed.
	if a.listener, err = st.NewListenerOn(cfg.ListenDatabaseURL, logger); err != nil {
		st.Close()
		return nil, fmt.Errorf("GATEHOUSE_LISTEN_DATABASE_URL: %w", err)
	}
	a.Tenants = tenant.NewService(st, a.now)
	a.Resolver = tenant.NewResolver(st, cfg.TenantCacheTTL, a.now, a.listener)

	fail := func(err error) (*App, error) {
		a.closeJobListen()
		st.Close()
		return nil, err
	}
	// The services enqueue jobs through an insert-only River client; the client that
	// works them is built last, from the finished services (no cycle, nothing set later).
	driver, pollOnly, err := a.jobsDriver()
	if err != nil {
		return fail(err)
	}
	tracing := telemetry.NewJobTracing(tel.TracerProvider, func(ctx context.Context) string { return kit.Info(ctx).ID })
	inserter, err := river.NewClient(driver, &river.Config{Middleware: []rivertype.Middleware{tracing}, Logger: a.riverLogger()})
	if err != nil {
		return fail(fmt.Errorf("job queue: %w", err))
	}
	// A session's end fans out to the OpenID Provider (tokens revoked, back-channel
	// logout enqueued) inside the transaction that ended it.
	ends, err := oidcop.NewSessionEnds(inserter)
	if err != nil {
		return fail(err)
	}
	if a.Sessions, err = session.NewService(st, a.now, a.listener, session.Config{CacheSize: cfg.SessionCacheSize, CacheTTL: time.Minute}, ends); err != nil {
		return fail(err)
	}
	sender, err := mail.NewSender(ctx, cfg.Mail, logger)
	if err != nil {
		return fail(err)
	}
	templates, err := mail.LoadTemplates()
	if err != nil {
		return fail(err)
	}
	outbox, err := mail.NewOutbox(templates, cfg.MailFrom, inserter)
	if err != nil {
		return fail(err)
	}
	hasher := password.NewHasher(password.Params{MemoryKiB: cfg.Argon2MemoryKiB, Iterations: cfg.Argon2Iterations,
		Parallelism: cfg.Argon2Threads, SaltLen: 16, KeyLen: 32})
	urls := tenant.URLs{Scheme: cfg.PublicScheme, BaseDomain: cfg.BaseDomain, Port: cfg.PublicPort}
	limiter := ratelimit.New(st, a.now)
	second := mfa.NewService(st, box, a.now)
	a.Authz = authz.NewService(st, a.listener)
	a.Outbound = outbound.New(outbound.Config{AllowPrivate: cfg.OutboundAllowPrivate, RootCAs: cfg.OutboundRootCAs, Resolver: cfg.OutboundResolver})
	if a.SSO, err = sso.NewService(st, box, urls, a.Sessions, sso.Config{Outbound: a.Outbound, DNSServer: cfg.DNSServer,
		Mail: outbox, RolesChanged: a.Authz.Changed, Listener: a.listener,
		Limiter: limiter, Meter: tel.MeterProvider.Meter("gatehouse/sso")},
		a.now, cfg.Now == nil, logger); err != nil {
		return fail(err)
	}
	if a.Passkeys, err = passkey.NewService(passkey.Deps{Store: st, Outbox: outbox, URLs: urls, Now: a.now}); err != nil {
		return fail(err)
	}
	if a.Accounts, err = account.NewService(account.Deps{Store: st, Sessions: a.Sessions, MFA: second, Hasher: hasher, Outbox: outbox,
		Limiter: limiter, URLs: urls, SSOGate: a.SSO.Required, Passkeys: a.Passkeys, Meter: tel.MeterProvider.Meter("gatehouse/account"), Now: a.now},
		account.Config{ResponseFloor: cfg.ResponseFloor}); err != nil {
		return fail(err)
	}
	if a.StepUp, err = stepup.NewService(stepup.Deps{Store: st, Hasher: hasher, MFA: second, Sessions: a.Sessions, Limiter: limiter, Passkeys: a.Passkeys,
		LockNotice: a.Accounts.LockNotice, Meter: tel.MeterProvider.Meter("gatehouse/stepup"), Now: a.now}); err != nil {
		return fail(err)
	}
	if a.Admin, err = admin.NewService(st, a.Authz); err != nil {
		return fail(err)
	}
	if a.OIDC, err = oidcop.NewService(oidcop.Deps{Store: st, Box: box, URLs: urls, Outbound: a.Outbound, Limiter: limiter, Sessions: a.Sessions, Now: a.now, Logger: logger,
		Listener: a.listener, Cache: oidcop.CacheConfig{Size: cfg.SessionCacheSize, TTL: time.Minute}}); err != nil {
		return fail(err)
	}
	if a.SCIM, err = scim.NewService(scim.Deps{Store: st, URLs: urls, Sessions: a.Sessions, Accounts: a.Accounts, Authz: a.Authz,
		Limiter: limiter, Now: a.now, Logger: logger, Meter: tel.MeterProvider.Meter("gatehouse/scim")}); err != nil {
		return fail(err)
	}
	if a.Webhooks, err = webhooks.NewService(webhooks.Deps{Store: st, Box: box, Outbound: a.Outbound, Mail: outbox, URLs: urls,
		Logger: logger, Now: a.now}); err != nil {
		return fail(err)
	}
	if a.jobs, err = a.newJobs(driver, pollOnly, tracing, sender, tel); err != nil {
		return fail(err)
	}
	if err := a.registerGauges(tel.MeterProvider.Meter("gatehouse/runtime")); err != nil {
		return fail(fmt.Errorf("metrics: %w", err))
	}

	a.Handler, a.routes, err = httpapi.NewServer(logger,
		httpapi.Config{BaseDomain: cfg.BaseDomain, OperatorToken: cfg.OperatorToken, TrustedProxies: cfg.TrustedProxies,
			DevMailDir: cfg.DevMailDir},
		tel.TracerProvider, tel.MeterProvider, a.ready, a.Tenants, a.Resolver, a.Sessions, a.Accounts, a.StepUp, a.Admin, a.Authz, a.SSO, a.OIDC, a.SCIM, a.Passkeys, a.Webhooks)
	if err != nil {
		a.closeJobListen()
		st.Close()
		return nil, err
	}
	return a, nil
}

// newJobs builds the River client that works background jobs — mail delivery, account
// purges and the housekeeping periodic jobs (leader-elected: once per cluster) — on the
// application role's pool, from the finished services. Every job is traced: its span
// continues the trace of the request that enqueued it (telemetry.JobTracing).
func (a *App) newJobs(driver riverdriver.Driver[pgx.Tx], pollOnly bool, tracing rivertype.Middleware, sender mail.Sender,
	tel *telemetry.Telemetry) (*river.Client[pgx.Tx], error) {
	worker, err := mail.NewWorker(a.store, sender, a.mailFrom, a.logger, tel.MeterProvider)
	if err != nil {
		return nil, err
	}
	purger, err := account.NewPurgeWorker(a.Accounts, a.Tenants)
	if err != nil {
		return nil, err
	}
	workers := river.NewWorkers()
	river.AddWorker(workers, worker)
	river.AddWorker(workers, purger)
	river.AddWorker(workers, a.OIDC.NewBackchannelWorker())
	hooks, err := a.Webhooks.NewWorker(webhooks.WorkerConfig{Unit: a.cfg.WebhookRetryUnit}, tel.MeterProvider)
	if err != nil {
		return nil, err
	}
	river.AddWorker(workers, hooks)
	periodic, err := a.housekeepingJobs(workers)
	if err != nil {
		return nil, err
	}
	poll := a.cfg.JobPollInterval
	if pollOnly {
		a.logger.Info("job queue polls without LISTEN: GATEHOUSE_DB_EXEC_MODE says DATABASE_URL goes through a transaction pooler and GATEHOUSE_LISTEN_DATABASE_URL is not set",
			"poll_interval", poll)
	}
	client, err := river.NewClient(driver, &river.Config{
		PollOnly:                    pollOnly,
		Queues:                      map[string]river.QueueConfig{mail.Queue: {MaxWorkers: 10}, oidcop.BackchannelQueue: {MaxWorkers: 10}, webhooks.Queue: {MaxWorkers: 20}, river.QueueDefault: {MaxWorkers: 2}, housekeeping.Queue: {MaxWorkers: 3}},
		Workers:                     workers,
		PeriodicJobs:                periodic,
		Middleware:                  []rivertype.Middleware{tracing},
		RetryPolicy:                 mail.RetryPolicy{Base: a.cfg.MailRetryBase, Max: 30 * time.Minute},
		FetchPollInterval:           poll,
		FetchCooldown:               min(100*time.Millisecond, poll/2),
		CompletedJobRetentionPeriod: 24 * time.Hour,
		Logger:                      a.riverLogger(),
	})
	if err != nil {
		return nil, fmt.Errorf("job queue: %w", err)
	}
	return client, nil
}

func (a *App) riverLogger() *slog.Logger {
	return slog.New(minLevel{Handler: a.logger.Handler(), min: slog.LevelWarn}).With("component", "river")
}

// jobsDriver decides where River LISTENs for new jobs and leadership changes. That LISTEN
// only makes River quicker (without it River polls every JobPollInterval), but behind
// PgBouncer in transaction mode it is never heard and leaves listening server connections
// in the bouncer's pool. So:
//   - GATEHOUSE_LISTEN_DATABASE_URL given: River listens on a small pool of its own there
//     (its queries keep using DATABASE_URL);
//   - not given, and GATEHOUSE_DB_EXEC_MODE other than the default cache_statement (the
//     setting for a transaction pooler in front of DATABASE_URL): River runs poll-only;
//   - otherwise DATABASE_URL is taken to be direct, and River listens on the application pool.
func (a *App) jobsDriver() (riverdriver.Driver[pgx.Tx], bool, error) {
	onPool := riverpgxv5.New(a.store.Pool())
	if a.cfg.ListenDatabaseURL == "" {
		mode, err := store.ParseExecMode(a.cfg.DBExecMode)
		if err != nil {
			return nil, false, fmt.Errorf("GATEHOUSE_DB_EXEC_MODE: %w", err)
		}
		return onPool, mode != pgx.QueryExecModeCacheStatement, nil
	}
	pc, err := pgxpool.ParseConfig(a.cfg.ListenDatabaseURL)
	if err != nil {
		return nil, false, errors.New("GATEHOUSE_LISTEN_DATABASE_URL: not a valid PostgreSQL connection string")
	}
	pc.MaxConns = 2 // River holds one connection; the second covers a reconnect
	pc.ConnConfig.DefaultQueryExecMode = a.store.Pool().Config().ConnConfig.DefaultQueryExecMode
	pc.ConnConfig.RuntimeParams["application_name"] = "gatehouse-river-listener"
	if a.jobListen, err = pgxpool.NewWithConfig(context.Background(), pc); err != nil { // connects on first use
		return nil, false, fmt.Errorf("GATEHOUSE_LISTEN_DATABASE_URL: %w", err)
	}
	return listenOn{Driver: onPool, listen: riverpgxv5.New(a.jobListen)}, false, nil
}

// listenOn is River's driver with its listener on another pool.
type listenOn struct {
	*riverpgxv5.Driver
	listen *riverpgxv5.Driver
}

func (d listenOn) GetListener(p *riverdriver.GetListenenerParams) riverdriver.Listener {
	return d.listen.GetListener(p)
}

func (a *App) closeJobListen() {
	if a.jobListen != nil {
		a.jobListen.Close()
	}
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

// Serve runs the HTTP server on ln, the notification listener, the job queue (with the
// cluster's periodic housekeeping, enqueued by River's elected leader) and this node's gauge
// refresh until ctx is cancelled, then shuts down gracefully: in-flight requests finish (up
// to the shutdown timeout), then the pool closes.
func (a *App) Serve(ctx context.Context, ln net.Listener) error {
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { a.listener.Run(bg) })
	wg.Go(func() { a.gaugeLoop(bg) })
	if err := a.jobs.Start(bg); err != nil {
		stopBG()
		wg.Wait()
		return fmt.Errorf("start job queue: %w", err)
	}

	var metricsSrv *http.Server
	errc := make(chan error, 3)
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
	var pprofSrv *http.Server
	if a.cfg.PprofAddr != "" {
		pprofSrv = pprofServer(a.cfg.PprofAddr)
		go func() {
			if err := pprofSrv.ListenAndServe(); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("GATEHOUSE_PPROF_ADDR: %w", err)
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
	if pprofSrv != nil {
		_ = pprofSrv.Close() // a running CPU profile is cut off, not waited for
	}
	// Running jobs finish (a mail being sent is not cut off); queued ones wait for the next start.
	if err := a.jobs.Stop(sctx); err != nil {
		a.logger.Warn("job queue stop", "err", err)
	}
	stopBG()
	wg.Wait()
	a.closeJobListen()
	a.store.Close()
	if err := a.telemetry.Shutdown(sctx); err != nil {
		a.logger.Warn("telemetry shutdown", "err", err)
	}
	a.logger.Info("stopped")
	return runErr
}

// Close releases resources of an App that never served.
func (a *App) Close() {
	a.closeJobListen()
	a.store.Close()
	_ = a.telemetry.Shutdown(context.Background())
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
