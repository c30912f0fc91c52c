package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/config"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// Fault tests run with `make faults` (GATEHOUSE_FAULTS=1), which CI also runs.
func faultsOnly(t *testing.T) {
	t.Helper()
	if os.Getenv("GATEHOUSE_FAULTS") == "" {
		t.Skip("fault test: run with make faults (GATEHOUSE_FAULTS=1)")
	}
}

func optionalTenant(t *testing.T, d *testutil.DB, prefix string) string {
	t.Helper()
	p := tenant.DefaultPolicy()
	p.Verification.Mode = tenant.VerificationOptional
	c, err := tenant.NewService(d.Store, time.Now).Create(context.Background(), tenant.CreateInput{Slug: testutil.UniqueSlug(prefix), Name: "Faults", Policy: &p})
	if err != nil {
		t.Fatal(err)
	}
	return c.Tenant.Slug + ".localhost"
}

// TestFaultNodeKilled: one of three nodes is SIGKILLed under load. Requests in flight on
// it fail; the other two answer every request; a session created on the killed node keeps
// working on the others.
func TestFaultNodeKilled(t *testing.T) {
	faultsOnly(t)
	bin := buildBinary(t)
	d := testutil.FreshDB(t)
	host := optionalTenant(t, d, "kill")
	a, b, c := startServe(t, bin, "A", d.AppURL), startServe(t, bin, "B", d.AppURL), startServe(t, bin, "C", d.AppURL)
	if code, body := a.call(t, "POST", host, "/api/v1/signup", "", map[string]string{"email": "k@example.com", "password": "purple monkey dishwasher"}); code != 202 {
		t.Fatalf("signup: %d %s", code, body)
	}
	code, body := c.call(t, "POST", host, "/api/v1/login", "", map[string]string{"email": "k@example.com", "password": "purple monkey dishwasher"})
	if code != 200 {
		t.Fatalf("login on C: %d %s", code, body)
	}
	var lr struct{ Session struct{ Token string } }
	_ = json.Unmarshal(body, &lr)
	tok := lr.Session.Token

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	get := func(n *node) (int, error) {
		req, _ := http.NewRequest("GET", fmt.Sprintf("http://127.0.0.1:%d/api/v1/session", n.port), nil)
		req.Host = host
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	var survivorsOK, survivorsBad, onC, failedOnC atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range 12 {
		n := []*node{a, b, c}[i%3]
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, err := get(n)
				switch {
				case n == c:
					onC.Add(1)
					if err != nil || code != 200 {
						failedOnC.Add(1)
					}
				case err == nil && code == 200:
					survivorsOK.Add(1)
				default:
					survivorsBad.Add(1)
					t.Errorf("%s: %d %v", n.name, code, err)
				}
			}
		})
	}
	time.Sleep(time.Second)
	c.killed = true
	if err := c.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	t.Logf("survivors: %d ok, %d failed; killed node: %d requests, %d failed", survivorsOK.Load(), survivorsBad.Load(), onC.Load(), failedOnC.Load())
	if survivorsBad.Load() != 0 || survivorsOK.Load() == 0 {
		t.Fatalf("the surviving nodes failed %d requests", survivorsBad.Load())
	}
	if failedOnC.Load() == 0 {
		t.Fatal("no request on the killed node failed: was it killed?")
	}
	for _, n := range []*node{a, b} {
		if code, err := get(n); err != nil || code != 200 {
			t.Fatalf("the session made on C does not work on %s: %d %v", n.name, code, err)
		}
	}
}

// TestFaultClockSkew: a node whose clock is 2 minutes ahead neither extends nor shortens
// sessions: lifetimes come from the database clock.
func TestFaultClockSkew(t *testing.T) {
	faultsOnly(t)
	d := testutil.FreshDB(t)
	host := optionalTenant(t, d, "skew")
	fast := testutil.NewServer(t, d, testutil.WithConfig(func(c *config.Config) {
		c.Now = func() time.Time { return time.Now().Add(2 * time.Minute) }
	}))
	right := testutil.NewServer(t, d)
	if r := right.Do(t, testutil.Request{Method: "POST", Host: host, Path: "/api/v1/signup",
		Body: map[string]string{"email": "s@example.com", "password": "purple monkey dishwasher"}}); r.StatusCode != 202 {
		t.Fatalf("signup: %d %s", r.StatusCode, r.Body)
	}
	expiry := func(srv *testutil.Server) time.Time {
		r := srv.Do(t, testutil.Request{Method: "POST", Host: host, Path: "/api/v1/login",
			Body: map[string]string{"email": "s@example.com", "password": "purple monkey dishwasher"}})
		var lr struct {
			Session struct {
				ExpiresAt time.Time `json:"expires_at"`
			}
		}
		r.JSON(t, &lr)
		return lr.Session.ExpiresAt
	}
	var dbNow time.Time
	if err := d.Admin.QueryRow(context.Background(), "SELECT now()").Scan(&dbNow); err != nil {
		t.Fatal(err)
	}
	want := dbNow.Add(time.Duration(tenant.DefaultPolicy().Sessions.AbsoluteTimeoutSeconds) * time.Second)
	for name, srv := range map[string]*testutil.Server{"fast node": fast, "right node": right} {
		got := expiry(srv)
		if diff := got.Sub(want); diff < -5*time.Second || diff > 5*time.Second {
			t.Errorf("%s: session expires at %s, %v from the database clock's %s", name, got, diff, want)
		}
	}
}
