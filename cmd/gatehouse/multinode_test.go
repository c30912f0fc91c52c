package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binPath != "" {
		os.RemoveAll(strings.TrimSuffix(binPath, "/gatehouse"))
	}
	testutil.Main(m, code)
}

// node is one `gatehouse serve` process.
type node struct {
	name   string
	port   int
	cmd    *exec.Cmd
	out    *syncBuf
	killed bool // SIGKILLed on purpose (fault tests): its exit is not an error
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func startServe(t *testing.T, bin, name, databaseURL string, env ...string) *node {
	t.Helper()
	n := &node{name: name, port: freePort(t), out: &syncBuf{}}
	n.cmd = exec.Command(bin, "serve", "--addr", fmt.Sprintf("127.0.0.1:%d", n.port))
	n.cmd.Env = append(environWithout("DATABASE_URL", "GATEHOUSE_ADMIN_DATABASE_URL"),
		"DATABASE_URL="+databaseURL, "GATEHOUSE_BASE_DOMAIN=localhost", "GATEHOUSE_PUBLIC_SCHEME=http",
		"GATEHOUSE_MAIL=log", "GATEHOUSE_LOG_LEVEL=warn", "OTEL_SDK_DISABLED=true")
	n.cmd.Env = append(n.cmd.Env, env...)
	n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- n.cmd.Wait() }()
	t.Cleanup(func() {
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil && !n.killed {
				t.Errorf("%s exited with %v\n%s", name, err, n.out)
			}
		case <-time.After(30 * time.Second):
			_ = n.cmd.Process.Kill()
			t.Errorf("%s did not stop on SIGTERM", name)
		}
	})
	waitReady(t, n.port, exited, n.out)
	return n
}

func (n *node) call(t *testing.T, method, host, path, bearer string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", n.port, path), r)
	req.Host = host
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s on %s: %v", method, path, n.name, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestRevocationAcrossProcesses runs two `gatehouse serve` processes on one database: a
// session revoked through A is refused by B, which had it cached, within 100 ms — also
// while B's LISTEN connection is down and after it reconnected.
func TestRevocationAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two server processes")
	}
	bin := buildBinary(t)
	d := testutil.FreshDB(t)
	ctx := context.Background()
	p := tenant.DefaultPolicy()
	p.Verification.Mode = tenant.VerificationOptional
	c, err := tenant.NewService(d.Store, time.Now).Create(ctx, tenant.CreateInput{Slug: testutil.UniqueSlug("multi"), Name: "Multi", Policy: &p})
	if err != nil {
		t.Fatal(err)
	}
	host := c.Tenant.Slug + ".localhost"
	a := startServe(t, bin, "A", d.AppURL)
	b := startServe(t, bin, "B", d.AppURL)

	if code, body := a.call(t, "POST", host, "/api/v1/signup", "", map[string]string{"email": "m@example.com", "password": "purple monkey dishwasher"}); code != 202 {
		t.Fatalf("signup: %d %s", code, body)
	}
	login := func() (string, string) {
		code, body := a.call(t, "POST", host, "/api/v1/login", "", map[string]string{"email": "m@example.com", "password": "purple monkey dishwasher"})
		if code != 200 {
			t.Fatalf("login: %d %s", code, body)
		}
		var r struct{ Session struct{ ID, Token string } }
		_ = json.Unmarshal(body, &r)
		return r.Session.Token, r.Session.ID
	}
	admin, _ := login()

	// measure revokes victim through A and returns how long B kept accepting it, counted
	// from the moment the revocation was sent.
	measure := func(label string) time.Duration {
		victim, victimID := login()
		for range 3 { // cached on B
			if code, body := b.call(t, "GET", host, "/api/v1/session", victim, nil); code != 200 {
				t.Fatalf("%s: B rejects a live session: %d %s", label, code, body)
			}
		}
		start := time.Now()
		if code, body := a.call(t, "DELETE", host, "/api/v1/sessions/"+victimID, admin, nil); code != 204 {
			t.Fatalf("%s: revoke on A: %d %s", label, code, body)
		}
		for {
			code, _ := b.call(t, "GET", host, "/api/v1/session", victim, nil)
			if code == 401 {
				return time.Since(start)
			}
			if time.Since(start) > 5*time.Second {
				t.Fatalf("%s: B still accepts the revoked session after 5 s", label)
			}
			time.Sleep(time.Millisecond)
		}
	}

	d1 := measure("listener connected")
	t.Logf("revocation on A reached B in %v (listener connected)", d1)
	if d1 > 100*time.Millisecond {
		t.Errorf("revocation took %v to reach B; the bound is 100 ms", d1)
	}

	// Kill every LISTEN connection: while it is down the nodes must not trust their caches.
	killListeners := func() int {
		var n int
		err := d.Admin.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = 'gatehouse-listener'`).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if n := killListeners(); n < 2 {
		t.Fatalf("killed %d listener connections, want at least 2 (one per node)", n)
	}
	d2 := measure("listener killed")
	t.Logf("revocation on A reached B in %v (right after the listener connections were killed)", d2)
	if d2 > 100*time.Millisecond {
		t.Errorf("revocation took %v while B's listener was down; the bound is 100 ms", d2)
	}

	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		_ = d.Admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND application_name = 'gatehouse-listener' AND query LIKE 'LISTEN%'`).Scan(&n)
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("listeners did not reconnect (%d)", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	d3 := measure("listener reconnected")
	t.Logf("revocation on A reached B in %v (after the listener reconnected)", d3)
	if d3 > 100*time.Millisecond {
		t.Errorf("revocation took %v after reconnecting; the bound is 100 ms", d3)
	}
}
