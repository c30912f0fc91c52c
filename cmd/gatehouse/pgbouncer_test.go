package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestPgBouncerTransactionMode runs two `gatehouse serve` nodes with DATABASE_URL through
// a real PgBouncer (Debian's 1.18) in transaction mode and GATEHOUSE_DB_EXEC_MODE=exec, as
// deploy/README.md describes. Sign-up, mail and login work; a logout on A is refused on B
// and a tenant suspended with the CLI (also through the bouncer) is no longer served by B.
//
//   - LISTEN through the bouncer: the listener never hears a notification, so it never
//     proves itself: B bypasses its caches (nothing cached), says once how to fix it, and
//     the very first request after the change is refused. Before the fix B's listener
//     counted as healthy: B accepted the logged-out session until the 1-minute cache TTL
//     and served the suspended tenant until the 30 s tenant cache TTL. River polls.
//   - GATEHOUSE_LISTEN_DATABASE_URL direct: the listeners are healthy (B caches), and the
//     notifications sent through the bouncer reach B within the bound. River listens there.
func TestPgBouncerTransactionMode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts pgbouncer and server processes")
	}
	bin := buildBinary(t)
	d := testutil.FreshDB(t)
	bouncer := testutil.StartPgBouncer(t)
	pooled := bouncer.URL(t, d.AppURL)
	env := []string{"GATEHOUSE_DB_EXEC_MODE=exec", "GATEHOUSE_ARGON2_MEMORY_KIB=8192", "GATEHOUSE_ARGON2_ITERATIONS=1"}
	t.Run("listen through the bouncer", func(t *testing.T) {
		bouncerNodes(t, bin, d, pooled, env, false)
	})
	t.Run("listen direct", func(t *testing.T) {
		bouncerNodes(t, bin, d, pooled, append(env, "GATEHOUSE_LISTEN_DATABASE_URL="+d.AppURL), true)
	})
	if t.Failed() {
		t.Logf("pgbouncer output (tail):\n%s", tail(bouncer.Output(), 3000))
	}
}

func bouncerNodes(t *testing.T, bin string, d *testutil.DB, pooled string, env []string, direct bool) {
	ctx := context.Background()
	const bound = time.Second // direct: the notification's round trip, with room for a busy CI host
	host := optionalTenant(t, d, "bouncer")
	slug := strings.TrimSuffix(host, ".localhost")
	mailDir := t.TempDir()
	metrics := freePort(t)
	env = append(env, "GATEHOUSE_MAIL=dir:"+mailDir, "GATEHOUSE_LOG_LEVEL=info")
	a := startServe(t, bin, "A", pooled, env...)
	b := startServe(t, bin, "B", pooled, append(env, fmt.Sprintf("GATEHOUSE_METRICS_ADDR=127.0.0.1:%d", metrics))...)
	if direct {
		// Both nodes' listeners have proven themselves (the error would be logged otherwise)
		// and River's listeners are up on the direct connection.
		waitUntil(t, "River listening on GATEHOUSE_LISTEN_DATABASE_URL on both nodes", func() bool {
			var n int
			_ = d.Admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
				AND application_name = 'gatehouse-river-listener' AND query LIKE 'LISTEN%'`).Scan(&n)
			return n >= 2
		})
	}

	// Sign-up, its mail, login.
	const pw = "purple monkey dishwasher"
	if code, body := a.call(t, "POST", host, "/api/v1/signup", "", map[string]string{"email": "pgb@example.com", "password": pw}); code != 202 {
		t.Fatalf("signup: %d %s", code, body)
	}
	waitUntil(t, "the sign-up mail", func() bool {
		es, _ := os.ReadDir(mailDir)
		for _, e := range es {
			if strings.HasSuffix(e.Name(), ".eml") {
				return true
			}
		}
		return false
	})
	login := func() string {
		code, body := a.call(t, "POST", host, "/api/v1/login", "", map[string]string{"email": "pgb@example.com", "password": pw})
		if code != 200 {
			t.Fatalf("login: %d %s", code, body)
		}
		var r struct{ Session struct{ Token string } }
		_ = json.Unmarshal(body, &r)
		return r.Session.Token
	}
	victim := login()
	for range 3 { // cached on B when its listener is healthy
		if code, body := b.call(t, "GET", host, "/api/v1/session", victim, nil); code != 200 {
			t.Fatalf("B refuses a live session: %d %s", code, body)
		}
	}
	if direct {
		// The listener proves itself within a round trip of the node's start; checks from
		// then on are cached.
		waitUntil(t, "B caching sessions (its direct listener proven)", func() bool {
			b.call(t, "GET", host, "/api/v1/session", victim, nil)
			return gauge(t, metrics, "gatehouse_sessions_cached") > 0
		})
	} else if cached := gauge(t, metrics, "gatehouse_sessions_cached"); cached != 0 {
		t.Errorf("B cached %v sessions although its listener, behind the bouncer, hears nothing", cached)
	}

	// Logout on A, refused on B.
	if code, body := a.call(t, "POST", host, "/api/v1/logout", victim, nil); code != 204 {
		t.Fatalf("logout on A: %d %s", code, body)
	}
	answered := time.Now()
	for first := true; ; first = false {
		code, _ := b.call(t, "GET", host, "/api/v1/session", victim, nil)
		if code == 401 {
			t.Logf("logout on A refused on B %v after A's answer", time.Since(answered).Round(time.Microsecond))
			break
		}
		if code != 200 {
			t.Fatalf("B answers %d for a logged-out session", code)
		}
		if !direct && first {
			t.Error("B accepted a session after its logout on A (it trusted a cache no notification reaches)")
			break
		}
		if time.Since(answered) > bound {
			t.Fatalf("B still accepts the session %v after its logout on A", time.Since(answered).Round(time.Millisecond))
		}
		time.Sleep(time.Millisecond)
	}

	// Suspension by the CLI (through the bouncer too), no longer served by B.
	for range 3 {
		if code, body := b.call(t, "GET", host, "/api/v1/tenant", "", nil); code != 200 {
			t.Fatalf("B does not serve the tenant: %d %s", code, body)
		}
	}
	cli := exec.Command(bin, "tenant", "suspend", slug)
	cli.Env = append(environWithout("DATABASE_URL", "GATEHOUSE_ADMIN_DATABASE_URL"),
		"DATABASE_URL="+pooled, "GATEHOUSE_DB_EXEC_MODE=exec", "OTEL_SDK_DISABLED=true")
	if out, err := cli.CombinedOutput(); err != nil || !strings.Contains(string(out), "suspended") {
		t.Fatalf("gatehouse tenant suspend: %v\n%s", err, out)
	}
	answered = time.Now()
	for first := true; ; first = false {
		code, _ := b.call(t, "GET", host, "/api/v1/tenant", "", nil)
		if code == 404 {
			t.Logf("suspension refused on B %v after the CLI returned", time.Since(answered).Round(time.Microsecond))
			break
		}
		if code != 200 {
			t.Fatalf("B answers %d for a suspended tenant", code)
		}
		if !direct && first {
			t.Error("B served a tenant suspended by the CLI (it trusted a cache no notification reaches)")
			break
		}
		if time.Since(answered) > bound {
			t.Fatalf("B still serves the tenant %v after it was suspended", time.Since(answered).Round(time.Millisecond))
		}
		time.Sleep(time.Millisecond)
	}

	// What the nodes said (behind the bouncer: once the first probe timed out, 2 s after start).
	for _, n := range []*node{a, b} {
		if !direct {
			waitUntil(t, n.name+" saying its listener cannot prove itself", func() bool {
				return strings.Contains(n.out.String(), "cannot prove itself")
			})
		}
		out := n.out.String()
		unproven := strings.Count(out, "cannot prove itself")
		switch {
		case direct && unproven != 0:
			t.Errorf("%s: the direct listener could not prove itself:\n%s", n.name, tail(out, 3000))
		case !direct && unproven != 1:
			t.Errorf("%s: %d messages that the listener cannot prove itself, want one naming GATEHOUSE_LISTEN_DATABASE_URL:\n%s", n.name, unproven, tail(out, 3000))
		case !direct && !strings.Contains(out, "GATEHOUSE_LISTEN_DATABASE_URL"):
			t.Errorf("%s: the message does not name GATEHOUSE_LISTEN_DATABASE_URL", n.name)
		}
		if strings.Contains(out, "postgres://") {
			t.Errorf("%s logged a connection string", n.name)
		}
		if polls := strings.Contains(out, "job queue polls without LISTEN"); polls == direct {
			t.Errorf("%s: River poll-only = %v with a direct listen URL = %v", n.name, polls, direct)
		}
	}
}

// waitUntil polls cond for up to 15 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 15 s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// gauge reads an unlabelled gauge from a node's /metrics.
func gauge(t *testing.T, port int, name string) float64 {
	t.Helper()
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, name); ok && (strings.HasPrefix(rest, " ") || strings.HasPrefix(rest, "{")) {
			f := strings.Fields(line)
			v, err := strconv.ParseFloat(f[len(f)-1], 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return v
		}
	}
	t.Fatalf("no %s in /metrics", name)
	return 0
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
