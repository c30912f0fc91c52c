package store

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Listener holds one dedicated connection that LISTENs on the channels handlers were
// registered for, reconnecting with backoff when the connection fails. Caches that rely on
// its notifications must check Healthy and bypass themselves while it is false: a
// notification sent while nobody listened is lost, so every reconnect also calls each
// handler's reset function.
type Listener struct {
	connConfig *pgx.ConnConfig
	logger     *slog.Logger

	mu       sync.Mutex
	handlers map[string][]handler
	healthy  atomic.Bool
	// generation increases on every (re)connect and disconnect; caches compare it to know
	// whether an entry was stored under the current connection.
	generation atomic.Uint64

	// A connection can die without an error reaching us (a network partition, a failover
	// behind a proxy): after heartbeat without a notification the connection must answer a
	// ping within pingTimeout, or it counts as lost.
	heartbeat, pingTimeout time.Duration
}

type handler struct {
	notify func(payload string)
	reset  func()
}

// NewListener prepares a listener on the store's database. Register handlers, then Run.
func (s *Store) NewListener(logger *slog.Logger) *Listener {
	cc := s.pool.Config().ConnConfig.Copy()
	cc.Tracer = nil // one long-lived wait is not a query worth a span
	cc.RuntimeParams["application_name"] = "gatehouse-listener"
	return &Listener{connConfig: cc, logger: logger, handlers: map[string][]handler{},
		heartbeat: 5 * time.Second, pingTimeout: 2 * time.Second}
}

// SetHeartbeat changes how often an idle connection is pinged and how long the ping may
// take (tests).
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

// Healthy reports whether the listener is connected and listening right now.
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
		l.logger.Warn("notification listener disconnected; caches bypassed until it reconnects", "err", err, "retry_in", backoff)
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
	channels := make([]string, 0, len(l.handlers))
	for ch := range l.handlers {
		channels = append(channels, ch)
	}
	l.mu.Unlock()
	for _, ch := range channels {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return err
		}
	}
	l.generation.Add(1)
	l.resetAll()
	l.healthy.Store(true)
	for {
		wctx, cancel := context.WithTimeout(ctx, l.heartbeat)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err != nil && ctx.Err() == nil && pgconn.Timeout(err) {
			pctx, cancel := context.WithTimeout(ctx, l.pingTimeout)
			err = conn.Ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("heartbeat: %w", err)
			}
			continue
		}
		if err != nil {
			return err
		}
		l.mu.Lock()
		hs := l.handlers[n.Channel]
		l.mu.Unlock()
		for _, h := range hs {
			h.notify(n.Payload)
		}
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
