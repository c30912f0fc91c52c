package store_test

import (
	"bufio"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// records keeps every log record of a listener.
type records struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec.Clone())
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

// count returns how many records at level contain substr, and whether any record or
// attribute names a connection string.
func (r *records) count(level slog.Level, substr string) (n int, leaks bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rec := range r.recs {
		text := rec.Message
		rec.Attrs(func(a slog.Attr) bool { text += " " + a.Value.String(); return true })
		if strings.Contains(text, "postgres://") || strings.Contains(text, "127.0.0.1") {
			leaks = true
		}
		if rec.Level == level && strings.Contains(rec.Message, substr) {
			n++
		}
	}
	return n, leaks
}

func runListener(t *testing.T, l *store.Listener) {
	t.Helper()
	l.SetHeartbeat(200*time.Millisecond, 300*time.Millisecond)
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	t.Cleanup(func() { stop(); <-done })
}

// pooledStore opens a store on d through PgBouncer in transaction mode, as deploy/
// describes it (exec mode: PgBouncer 1.18 has no prepared statements).
func pooledStore(t *testing.T, d *testutil.DB) *store.Store {
	t.Helper()
	b := testutil.StartPgBouncer(t)
	st, err := store.Open(context.Background(), store.Config{URL: b.URL(t, d.AppURL), ExecMode: "exec", MaxConns: 4})
	if err != nil {
		t.Fatalf("store through pgbouncer: %v\n%s", err, b.Output())
	}
	t.Cleanup(st.Close)
	return st
}

// TestListenerBehindPgBouncerNeverHealthy: through PgBouncer in transaction mode a LISTEN
// is answered but its notifications never arrive, while queries and pings work. The
// listener must never count as healthy there (its caches would serve revoked sessions and
// suspended tenants until their TTL), and must say so once, naming the setting that fixes
// it and no connection string. Before the fix it was healthy as soon as LISTEN answered;
// a probe sent on the LISTEN connection itself would come back too (PgBouncer tends to
// run both statements on the same server connection).
func TestListenerBehindPgBouncerNeverHealthy(t *testing.T) {
	d := testutil.FreshDB(t)
	st := pooledStore(t, d)
	logs := &records{}
	l := st.NewListener(slog.New(logs))
	l.Handle("gatehouse_test_channel", func(string) {}, nil)
	runListener(t, l)

	gens := map[uint64]bool{}
	for end := time.Now().Add(2500 * time.Millisecond); time.Now().Before(end); {
		if l.Healthy() {
			t.Fatal("a listener behind PgBouncer in transaction mode counts as healthy")
		}
		gens[l.Generation()] = true
		time.Sleep(time.Millisecond)
	}
	if len(gens) < 4 {
		t.Fatalf("the listener tried %d times in 2.5 s; want it to keep retrying", len(gens)/2)
	}
	n, leaks := logs.count(slog.LevelError, "cannot prove itself")
	if n != 1 {
		t.Errorf(`"cannot prove itself" logged %d times, want once`, n)
	}
	if more, _ := logs.count(slog.LevelDebug, "still cannot prove itself"); more < 2 {
		t.Errorf("%d later failed attempts logged at debug, want at least 2", more)
	}
	if leaks {
		t.Error("a log record names a connection string")
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	for _, r := range logs.recs {
		if r.Level == slog.LevelError && !strings.Contains(r.Message, "GATEHOUSE_LISTEN_DATABASE_URL") {
			t.Errorf("the error does not name the setting that fixes it: %s", r.Message)
		}
	}
}

// TestListenerDirectBesidePgBouncer: with the store behind PgBouncer and the LISTEN
// connection direct (GATEHOUSE_LISTEN_DATABASE_URL), the listener proves itself, stays
// healthy across heartbeats, and hears what is sent through the bouncer.
func TestListenerDirectBesidePgBouncer(t *testing.T) {
	d := testutil.FreshDB(t)
	st := pooledStore(t, d)
	logs := &records{}
	l, err := st.NewListenerOn(d.AppURL, slog.New(logs))
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 10)
	l.Handle("gatehouse_test_channel", func(p string) { got <- p }, nil)
	runListener(t, l)
	waitFor(t, "the direct listener proving itself", l.Healthy)
	if _, err := st.Pool().Exec(context.Background(), "SELECT pg_notify('gatehouse_test_channel', 'through the bouncer')"); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		if p != "through the bouncer" {
			t.Fatalf("payload %q", p)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a notification sent through PgBouncer did not reach the direct listener")
	}
	gen := l.Generation()
	time.Sleep(time.Second) // five heartbeats
	if !l.Healthy() || l.Generation() != gen {
		t.Fatalf("the direct listener did not stay healthy across heartbeats (healthy %v, generation %d → %d)", l.Healthy(), gen, l.Generation())
	}
	if n, _ := logs.count(slog.LevelError, ""); n != 0 {
		t.Errorf("%d errors logged", n)
	}
	if n, _ := logs.count(slog.LevelWarn, ""); n != 0 {
		t.Errorf("%d warnings logged", n)
	}
}

// deafener is a TCP proxy to PostgreSQL that can drop the notifications (NotificationResponse
// messages) the server sends, passing everything else: a connection that answers queries
// and pings but hears nothing.
type deafener struct {
	ln   net.Listener
	deaf atomic.Bool
	mu   sync.Mutex
	open []net.Conn
}

func newDeafener(t *testing.T, dbURL string) (*deafener, string) {
	t.Helper()
	cfg, err := pgx.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	d := &deafener{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			var u net.Conn
			if strings.HasPrefix(cfg.Host, "/") {
				u, err = net.Dial("unix", cfg.Host+"/.s.PGSQL."+strconv.Itoa(int(cfg.Port)))
			} else {
				u, err = net.Dial("tcp", net.JoinHostPort(cfg.Host, strconv.Itoa(int(cfg.Port))))
			}
			if err != nil {
				c.Close()
				continue
			}
			d.mu.Lock()
			d.open = append(d.open, c, u)
			d.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close() }()
			go func() { d.filter(c, u); c.Close() }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		d.mu.Lock()
		defer d.mu.Unlock()
		for _, c := range d.open {
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
	q.Set("sslmode", "disable") // the server's first byte is then a message type
	u.RawQuery = q.Encode()
	u.Host = ln.Addr().String()
	return d, u.String()
}

// filter copies server messages to the client, leaving out notifications while deaf.
func (d *deafener) filter(dst io.Writer, src io.Reader) {
	r := bufio.NewReader(src)
	var head [5]byte
	for {
		if _, err := io.ReadFull(r, head[:]); err != nil {
			return
		}
		body := make([]byte, int(binary.BigEndian.Uint32(head[1:]))-4)
		if _, err := io.ReadFull(r, body); err != nil {
			return
		}
		if head[0] == 'A' && d.deaf.Load() {
			continue
		}
		if _, err := dst.Write(append(head[:], body...)); err != nil {
			return
		}
	}
}

// TestListenerHeartbeatNoticesDeafness: a healthy listener whose connection goes on
// answering queries and pings but stops receiving notifications (a pooler or proxy put
// in between, a failover that kept the connection) turns unhealthy at its next heartbeat,
// stays so while deaf, and is healthy again once notifications flow. Before the fix the
// heartbeat was a ping, which still succeeded: healthy for ever, hearing nothing.
func TestListenerHeartbeatNoticesDeafness(t *testing.T) {
	d := testutil.FreshDB(t)
	deaf, proxied := newDeafener(t, d.AppURL)
	l, err := d.Store.NewListenerOn(proxied, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	l.Handle("gatehouse_test_channel", func(string) {}, nil)
	runListener(t, l)
	waitFor(t, "the listener proving itself", l.Healthy)
	gen := l.Generation()
	deaf.deaf.Store(true)
	start := time.Now()
	waitFor(t, "the heartbeat noticing that notifications no longer arrive", func() bool { return !l.Healthy() })
	t.Logf("deafness noticed after %v (heartbeat 200 ms, probe timeout 300 ms)", time.Since(start).Round(time.Millisecond))
	if l.Generation() == gen {
		t.Fatal("unhealthy without a generation change")
	}
	for end := time.Now().Add(time.Second); time.Now().Before(end); {
		if l.Healthy() {
			t.Fatal("healthy again while its connections hear nothing")
		}
		time.Sleep(time.Millisecond)
	}
	deaf.deaf.Store(false)
	waitFor(t, "healthy again once notifications arrive", l.Healthy)
}
