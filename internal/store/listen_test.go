package store_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// freezer is a TCP proxy to PostgreSQL whose open connections can be frozen: bytes stop
// flowing both ways but nothing is closed, as in a network partition. New connections
// flow normally.
type freezer struct {
	ln       net.Listener
	upstream func() (net.Conn, error)
	mu       sync.Mutex
	frozen   chan struct{} // closed while open connections flow
	conns    []net.Conn
	done     chan struct{} // closed at the end of the test: held bytes are dropped
}

func newFreezer(t *testing.T, dbURL string) (*freezer, string) {
	t.Helper()
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	host, port := cfg.Host, cfg.Port
	up := func() (net.Conn, error) {
		if strings.HasPrefix(host, "/") {
			return net.Dial("unix", host+"/.s.PGSQL."+strconv.Itoa(int(port)))
		}
		return net.Dial("tcp", net.JoinHostPort(host, strconv.Itoa(int(port))))
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{ln: ln, upstream: up, frozen: make(chan struct{}), done: make(chan struct{})}
	close(f.frozen) // flowing
	go f.serve()
	t.Cleanup(func() {
		ln.Close()
		close(f.done)
		f.mu.Lock()
		defer f.mu.Unlock()
		for _, c := range f.conns {
			c.Close()
		}
	})
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Del("host")
	q.Del("port")
	u.RawQuery = q.Encode()
	u.Host = ln.Addr().String()
	return f, u.String()
}

func (f *freezer) serve() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			return
		}
		u, err := f.upstream()
		if err != nil {
			c.Close()
			continue
		}
		f.mu.Lock()
		gate := f.frozen
		f.conns = append(f.conns, c, u)
		f.mu.Unlock()
		go f.pipe(c, u, gate)
		go f.pipe(u, c, gate)
	}
}

// pipe copies while the gate of this connection's generation is open.
func (f *freezer) pipe(dst, src net.Conn, gate chan struct{}) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			f.mu.Lock()
			cur := f.frozen
			f.mu.Unlock()
			if cur != gate { // frozen since this connection opened: hold the bytes until the end
				<-f.done
				return
			}
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if err != io.EOF {
				dst.Close()
			}
			return
		}
	}
}

// freeze stops the connections open now; later connections get a new, open gate.
func (f *freezer) freeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.frozen = make(chan struct{})
}

func startListener(t *testing.T, st *store.Store, logger *slog.Logger) *store.Listener {
	t.Helper()
	return startListenerOn(t, st, "", logger)
}

// startListenerOn starts a listener whose LISTEN connection uses listenURL ("": the store's).
func startListenerOn(t *testing.T, st *store.Store, listenURL string, logger *slog.Logger) *store.Listener {
	t.Helper()
	l, err := st.NewListenerOn(listenURL, logger)
	if err != nil {
		t.Fatal(err)
	}
	l.Handle("gatehouse_test_channel", func(string) {}, nil)
	l.SetHeartbeat(200*time.Millisecond, 300*time.Millisecond)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	t.Cleanup(func() { stop(); <-done })
	return l
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second) // liveness, not speed: without the fix it never happens
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestListenerDetectsSilentDeath: a listening connection that stops answering without any
// error (a partition) is noticed by the heartbeat, so caches stop trusting it, and the
// listener reconnects. (Only the LISTEN connection goes through the freezer: a frozen
// pooled connection would hold the pool's Close for pgconn's 15 s close timeout.)
func TestListenerDetectsSilentDeath(t *testing.T) {
	d := testutil.FreshDB(t)
	f, proxied := newFreezer(t, d.AppURL)
	l := startListenerOn(t, d.Store, proxied, slog.New(slog.DiscardHandler))
	waitFor(t, "first connection", l.Healthy)
	gen := l.Generation()
	f.freeze()
	waitFor(t, "noticing the frozen connection", func() bool { return l.Generation() != gen })
	waitFor(t, "reconnecting through a new connection", l.Healthy)
}

// retryLog records the listener's reconnect waits.
type retryLog struct {
	mu    sync.Mutex
	waits []string
}

func (r *retryLog) Enabled(context.Context, slog.Level) bool { return true }
func (r *retryLog) Handle(_ context.Context, rec slog.Record) error {
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == "retry_in" {
			r.mu.Lock()
			r.waits = append(r.waits, a.Value.String())
			r.mu.Unlock()
		}
		return true
	})
	return nil
}
func (r *retryLog) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *retryLog) WithGroup(string) slog.Handler      { return r }

// TestListenerBackoffResets: each time a connection that was listening is killed, the
// listener retries after the first, short wait; backing off further is only for
// consecutive failures to connect (before the fix, the sixth kill already waited 3.2 s
// and every later one 5 s, with caches bypassed all that time).
func TestListenerBackoffResets(t *testing.T) {
	d := testutil.FreshDB(t)
	logs := &retryLog{}
	l := startListener(t, d.Store, slog.New(logs))
	for i := range 8 {
		waitFor(t, "listening", l.Healthy)
		gen := l.Generation()
		var killed int
		if err := d.Admin.QueryRow(context.Background(),
			"SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'gatehouse-listener' AND datname = current_database()").Scan(&killed); err != nil {
			t.Fatal(err)
		}
		if killed != 1 {
			t.Fatalf("kill %d: %d listener connections terminated, want 1", i, killed)
		}
		waitFor(t, "noticing the kill", func() bool { return l.Generation() != gen })
	}
	waitFor(t, "listening again", l.Healthy)
	logs.mu.Lock()
	defer logs.mu.Unlock()
	if len(logs.waits) < 8 {
		t.Fatalf("%d reconnect waits logged, want 8: %v", len(logs.waits), logs.waits)
	}
	for i, w := range logs.waits {
		if w != "100ms" {
			t.Fatalf("wait %d after killing a healthy connection was %s, want 100ms: %v", i, w, logs.waits)
		}
	}
}
