package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestDevEndToEnd builds the real binary and runs `gatehouse dev` against an empty data
// directory: it must start its own PostgreSQL, migrate, seed acme, serve
// http://acme.localhost:PORT, stop cleanly on Ctrl-C (SIGINT), and do it all again on the
// same directory, reusing the cluster and the seed.
func TestDevEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and starts PostgreSQL")
	}
	bin := buildBinary(t)
	// The private cluster may run as the postgres user, who must reach the directory.
	dataDir, err := os.MkdirTemp("", "gatehouse-e2e-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dataDir) })

	for run := 1; run <= 2; run++ {
		port, idpPort := freePort(t), freePort(t)
		cmd := exec.Command(bin, "dev", "--addr", fmt.Sprintf("127.0.0.1:%d", port), "--idp-addr", fmt.Sprintf("127.0.0.1:%d", idpPort), "--data-dir", dataDir)
		cmd.Env = environWithout("DATABASE_URL", "GATEHOUSE_ADMIN_DATABASE_URL")
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()

		waitReady(t, port, exited, &out)
		body := get(t, port, fmt.Sprintf("acme.localhost:%d", port), "/healthz")
		if !strings.Contains(body, `"ok"`) {
			t.Fatalf("run %d: healthz: %s", run, body)
		}
		var info struct{ Tenant struct{ Slug, Name string } }
		if err := json.Unmarshal([]byte(get(t, port, "acme.localhost", "/api/v1/tenant")), &info); err != nil || info.Tenant.Slug != "acme" {
			t.Fatalf("run %d: tenant: %+v %v", run, info, err)
		}

		// The dev IdP is up and connected to acme (SP metadata served, acme.test routed to it).
		if md := get(t, idpPort, fmt.Sprintf("localhost:%d", idpPort), "/metadata"); !strings.Contains(md, "IDPSSODescriptor") {
			t.Fatalf("run %d: dev IdP metadata: %s", run, md)
		}
		if md := get(t, port, "acme.localhost", "/sso/saml/dev/metadata"); !strings.Contains(md, "/sso/saml/dev/acs") {
			t.Fatalf("run %d: SP metadata: %s", run, md)
		}
		if !strings.Contains(out.String(), "alice@acme.test") {
			t.Fatalf("run %d: the banner does not explain the SSO demo:\n%s", run, out.String())
		}

		if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("run %d: exit: %v\n%s", run, err, out.String())
			}
		case <-time.After(60 * time.Second):
			_ = cmd.Process.Kill()
			t.Fatalf("run %d: did not stop on SIGINT\n%s", run, out.String())
		}
		if _, err := os.Stat(filepath.Join(dataDir, "pg", "postmaster.pid")); !os.IsNotExist(err) {
			t.Fatalf("run %d: private PostgreSQL still running after stop (postmaster.pid: %v)\n%s", run, err, out.String())
		}
		if !strings.Contains(out.String(), "stopping private PostgreSQL") {
			t.Fatalf("run %d: no clean stop in the output:\n%s", run, out.String())
		}
	}
}

// buildBinary builds the gatehouse binary once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gatehouse-bin-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "gatehouse")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

func environWithout(names ...string) []string {
	var env []string
next:
	for _, kv := range os.Environ() {
		for _, n := range names {
			if strings.HasPrefix(kv, n+"=") {
				continue next
			}
		}
		env = append(env, kv)
	}
	return env
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitReady(t *testing.T, port int, exited <-chan error, out fmt.Stringer) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			t.Fatalf("gatehouse dev exited early: %v\n%s", err, out.String())
		default:
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", port))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("gatehouse dev not ready after 2 minutes\n%s", out.String())
}

// get fetches path from 127.0.0.1:port with the given Host header (Go's resolver does not
// resolve *.localhost, so the connection goes to the loopback address directly).
func get(t *testing.T, port int, host, path string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", fmt.Sprintf("http://127.0.0.1:%d%s", port, path), nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s%s: %d %s", host, path, resp.StatusCode, b)
	}
	return string(b)
}
