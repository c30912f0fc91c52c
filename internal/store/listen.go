package store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Listener holds one dedicated connection that LISTENs on the channels handlers were
// registered for, reconnecting with backoff when the connection fails. Caches that rely on
// its notifications must check Healthy and bypass themselves while it is false: a
// notification sent while nobody listened is lost, so every reconnect also calls each
// handler's reset function.
//
// A listener proves itself before it counts as healthy, and again on every heartbeat: it
// sends a random nonce to a channel of its own through the store's pool — the way every
// other notification reaches it — and waits for that nonce on its LISTEN connection.
// Behind PgBouncer in transaction mode a LISTEN lands on some pooled server connection
// whose notifications never reach the client, while queries and pings succeed; such a
// listener never proves itself, so the caches stay bypassed and revocations stay correct
// on every node. (A NOTIFY sent on the LISTEN connection itself is no proof: PgBouncer
// often gives both statements the same server connection, and the notification then
// comes back with the answer.)
type Listener struct {
	connConfig *pgx.ConnConfig
	sender     *pgxpool.Pool // the store's pool: probes travel the path of real notifications
	probe      string        // this listener's own probe channel
	logger     *slog.Logger

	mu       sync.Mutex
	handlers map[string][]handler
	healthy  atomic.Bool
	// generation increases on every (re)connect and disconnect; caches compare it to know
	// whether an entry was stored under the current connection.
	generation atomic.Uint64
	// warned: the "cannot prove itself" error was logged since the last proven connection.
	warned bool

	// A connection can die without an error reaching us (a network partition, a failover
	// behind a proxy), or never hear anything (a transaction pooler): every heartbeat the
	// probe must come back within pingTimeout, or the connection counts as lost.
	heartbeat, pingTimeout time.Duration
}

type handler struct {
	notify func(payload string)
	reset  func()
}

// errUnproven: the probe did not come back in time.
var errUnproven = errors.New("probe notification did not come back")

// ProbeChannelPrefix starts the name of every listener's probe channel.
const ProbeChannelPrefix = "gatehouse_listener_probe_"

// NewListener prepares a listener on the store's database connection. Register handlers,
// then Run.
func (s *Store) NewListener(logger *slog.Logger) *Listener {
	l, _ := s.NewListenerOn("", logger) // "" cannot fail to parse
	return l
}

// NewListenerOn prepares a listener whose LISTEN connection uses listenURL (for example a
// direct connection to PostgreSQL when the store's URL goes through PgBouncer in
// transaction mode); "" means the store's own connection settings. Probes are still sent
// through the store's pool.
func (s *Store) NewListenerOn(listenURL string, logger *slog.Logger) (*Listener, error) {
	base := s.pool.Config().ConnConfig
	cc := base.Copy()
	if listenURL != "" {
		var err error
		if cc, err = pgx.ParseConfig(listenURL); err != nil {
			return nil, fmt.Errorf("parse listen database url: %w", redactParseError(err))
		}
		cc.DefaultQueryExecMode = base.DefaultQueryExecMode
	}
	cc.Tracer = nil // one long-lived wait is not a query worth a span
	cc.RuntimeParams["application_name"] = "gatehouse-listener"
	var b [8]byte
	_, _ = rand.Read(b[:])
	return &Listener{connConfig: cc, sender: s.pool, probe: ProbeChannelPrefix + hex.EncodeToString(b[:]),
		logger: logger, handlers: map[string][]handler{},
		heartbeat: 5 * time.Second, pingTimeout: 2 * time.Second}, nil
}

// SetHeartbeat changes how often the connection proves itself and how long the probe may
// take to come back (tests).
func (l *Listener) SetHeartbeat(every, timeout time.Duration) {
	l.heartbeat, l.pingTimeout = every, timeout
}

// Handle registers notify for payloads on channel, and reset for every (re)connect.
// Handlers run on the listener's goroutine and must be quick.
func (l *Listener) Handle(channel string, notify func(payload string), reset func()) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.handlers[channel] = append(l.handlers[channel], handler{notify: notify, reset: reset})
}

// Healthy reports whether the listener is connected, listening, and has proven within
// the last heartbeat that notifications sent through the store reach it.
func (l *Listener) Healthy() bool { return l.healthy.Load() }

// Generation changes whenever the connection state changes.
func (l *Listener) Generation() uint64 { return l.generation.Load() }

// Run listens until ctx is cancelled.
func (l *Listener) Run(ctx context.Context) {
	const firstBackoff = 100 * time.Millisecond
	backoff := firstBackoff
	for ctx.Err() == nil {
		err := l.listenOnce(ctx)
		wasHealthy := l.healthy.Swap(false)
		l.generation.Add(1)
		if ctx.Err() != nil {
			return
		}
		if wasHealthy {
			// A connection that was listening failed: start over with a short wait; only
			// consecutive failures to connect back off further.
			backoff = firstBackoff
		}
		switch {
		case !wasHealthy && errors.Is(err, errUnproven) && !l.warned:
			// Connected and listening, but deaf: say so once, not every retry.
			l.warned = true
			l.logger.Error("notification listener cannot prove itself: a notification sent through DATABASE_URL "+
				"did not reach its LISTEN connection; session, tenant and role caches stay bypassed (every check reads "+
				"the database). If DATABASE_URL goes through PgBouncer in transaction mode, set "+
				"GATEHOUSE_LISTEN_DATABASE_URL to a direct (or session-mode) connection to the same database",
				"timeout", l.pingTimeout, "retry_in", backoff)
		case !wasHealthy && errors.Is(err, errUnproven):
			l.logger.Debug("notification listener still cannot prove itself; caches bypassed", "retry_in", backoff)
		default:
			l.logger.Warn("notification listener disconnected; caches bypassed until it reconnects", "err", err, "retry_in", backoff)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

func (l *Listener) listenOnce(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, l.connConfig)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	l.mu.Lock()
	channels := make([]string, 0, len(l.handlers)+1)
	for ch := range l.handlers {
		channels = append(channels, ch)
	}
	l.mu.Unlock()
	channels = append(channels, l.probe)
	for _, ch := range channels {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return err
		}
	}
	// Notifications that arrive from now on are heard (and dispatched, also during the
	// probe); resetting afterwards drops whatever was missed before.
	if err := l.prove(ctx, conn); err != nil {
		if errors.Is(err, errUnproven) {
			// Deaf, probably behind a transaction pooler: take the LISTENs back from the
			// server connection they most likely landed on (best effort), so it does not
			// keep receiving notifications nobody reads.
			uctx, cancel := context.WithTimeout(ctx, l.pingTimeout)
			_, _ = conn.Exec(uctx, "UNLISTEN *")
			cancel()
		}
		return err
	}
	l.generation.Add(1)
	l.resetAll()
	l.warned = false
	l.healthy.Store(true)
	next := time.Now().Add(l.heartbeat)
	for {
		wctx, cancel := context.WithDeadline(ctx, next)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err != nil && ctx.Err() == nil && pgconn.Timeout(err) {
			if err := l.prove(ctx, conn); err != nil {
				return fmt.Errorf("heartbeat: %w", err)
			}
			next = time.Now().Add(l.heartbeat)
			continue
		}
		if err != nil {
			return err
		}
		l.dispatch(n)
	}
}

// prove sends a fresh nonce to the probe channel through the store's pool and waits up to
// pingTimeout for it to arrive on conn, dispatching other notifications meanwhile. Waiting
// for a pooled connection has a budget of its own (a busy pool is not a deaf listener);
// the round trip starts when the probe is sent.
func (l *Listener) prove(ctx context.Context, conn *pgx.Conn) error {
	var b [16]byte
	_, _ = rand.Read(b[:])
	nonce := hex.EncodeToString(b[:])
	actx, cancel := context.WithTimeout(ctx, max(l.heartbeat, l.pingTimeout))
	sender, err := l.sender.Acquire(actx)
	cancel()
	if err != nil {
		return fmt.Errorf("probe: no pooled connection to send it: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, l.pingTimeout)
	defer cancel()
	// Below pgx's tracer: a probe every few seconds is not a query worth a trace.
	_, err = sender.Conn().PgConn().ExecParams(pctx, "SELECT pg_notify($1, $2)",
		[][]byte{[]byte(l.probe), []byte(nonce)}, nil, nil, nil).Close()
	sender.Release()
	if err != nil {
		return fmt.Errorf("send probe: %w", err)
	}
	for {
		n, err := conn.WaitForNotification(pctx)
		if err != nil {
			if ctx.Err() == nil && pgconn.Timeout(err) {
				return fmt.Errorf("%w within %v", errUnproven, l.pingTimeout)
			}
			return err
		}
		if n.Channel == l.probe {
			if n.Payload == nonce {
				return nil
			}
			continue // a late answer to an earlier probe
		}
		l.dispatch(n)
	}
}

func (l *Listener) dispatch(n *pgconn.Notification) {
	l.mu.Lock()
	hs := l.handlers[n.Channel]
	l.mu.Unlock()
	for _, h := range hs {
		h.notify(n.Payload)
	}
}

func (l *Listener) resetAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, hs := range l.handlers {
		for _, h := range hs {
			if h.reset != nil {
				h.reset()
			}
		}
	}
}
