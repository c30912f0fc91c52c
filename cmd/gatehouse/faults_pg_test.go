package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/migrate"
	"github.com/gatehouse-id/gatehouse/internal/pgserver"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// TestFaultPostgresRestart: PostgreSQL is restarted (pg_ctl restart -m fast) in the middle
// of a sign-up and login load on a private cluster. The server recovers by itself; every
// sign-up acknowledged with 202 exists afterwards with its password; no user is half
// created; after recovery no request fails.
func TestFaultPostgresRestart(t *testing.T) {
	faultsOnly(t)
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "gatehouse-fault-pg-")
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(dir, 0o755)
	t.Cleanup(func() { os.RemoveAll(dir) })
	pg, err := pgserver.Start(ctx, dir+"/pg", pgserver.Options{Durable: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pg.Stop(context.Background()) })
	admin, err := pgx.Connect(ctx, pg.URL("postgres", "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(ctx, "CREATE DATABASE gatehouse"); err != nil {
		t.Fatal(err)
	}
	admin.Close(ctx)
	if err := migrate.Up(ctx, pg.URL("postgres", "gatehouse")); err != nil {
		t.Fatal(err)
	}
	p := tenant.DefaultPolicy()
	p.Verification.Mode = tenant.VerificationOptional
	bin := buildBinary(t)
	// The load comes "from" many addresses (trusted X-Forwarded-For): the per-address
	// sign-up limit is not what this test measures.
	n := startServe(t, bin, "A", pg.URL(migrate.AppRole, "gatehouse"), "GATEHOUSE_TRUSTED_PROXIES=127.0.0.1")
	slug := fmt.Sprintf("pgfault%d", time.Now().UnixNano()%100000)
	pj, _ := json.Marshal(p)
	db, err := pgx.Connect(ctx, pg.URL("postgres", "gatehouse"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	if _, err := db.Exec(ctx, `INSERT INTO tenants (slug, name, policy) VALUES ($1, 'PG fault', $2)`, slug, pj); err != nil {
		t.Fatal(err)
	}
	host := slug + ".localhost"

	client := &http.Client{Timeout: 20 * time.Second}
	var mu sync.Mutex
	acked := map[string]bool{}
	var before, during, after, failedAfter atomic.Int64
	var phase atomic.Int32 // 0 before, 1 restarting, 2 recovered
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var seq atomic.Int64
	for w := range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := seq.Add(1)
				email := fmt.Sprintf("u%d-%d@example.com", w, i)
				req, _ := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d/api/v1/signup", n.port),
					strings.NewReader(fmt.Sprintf(`{"email":%q,"password":"purple monkey dishwasher"}`, email)))
				req.Host = host
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.%d.%d.%d", w, i/250%250, i%250+1))
				resp, err := client.Do(req)
				code := 0
				if err == nil {
					code = resp.StatusCode
					resp.Body.Close()
				}
				switch phase.Load() {
				case 0:
					before.Add(1)
				case 1:
					during.Add(1)
				default:
					after.Add(1)
					if code != 202 {
						failedAfter.Add(1)
						t.Errorf("after recovery: %d %v", code, err)
					}
				}
				if code == 202 {
					mu.Lock()
					acked[email] = true
					mu.Unlock()
				} else if code != 0 && code < 500 {
					t.Errorf("sign-up answered %d (a 4xx is not an outage answer)", code)
				}
			}
		})
	}
	time.Sleep(time.Second)
	phase.Store(1)
	start := time.Now()
	if err := pg.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	// Recovery: the server answers again by itself within seconds.
	for {
		code, _ := n.call(t, "GET", host, "/readyz", "", nil)
		if code == 200 {
			break
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("not ready 30 s after the restart")
		}
		time.Sleep(50 * time.Millisecond)
	}
	recovered := time.Since(start)
	time.Sleep(500 * time.Millisecond) // requests already in flight through the outage settle
	phase.Store(2)
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()

	db2, err := pgx.Connect(ctx, pg.URL("postgres", "gatehouse"))
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close(ctx)
	var users, half int
	if err := db2.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE NOT EXISTS (SELECT 1 FROM password_credentials p WHERE p.tenant_id = u.tenant_id AND p.user_id = u.id))
		FROM users u JOIN tenants t ON t.id = u.tenant_id WHERE t.slug = $1`, slug).Scan(&users, &half); err != nil {
		t.Fatal(err)
	}
	lost := 0
	for email := range acked {
		var ok bool
		if err := db2.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users u JOIN tenants t ON t.id = u.tenant_id WHERE t.slug = $1 AND u.email = $2)`, slug, email).Scan(&ok); err != nil || !ok {
			lost++
		}
	}
	t.Logf("restart + recovery %v; sign-ups: %d before, %d during, %d after (%d failed after); acknowledged %d, users %d, lost %d, half-created %d",
		recovered.Round(time.Millisecond), before.Load(), during.Load(), after.Load(), failedAfter.Load(), len(acked), users, lost, half)
	if lost != 0 || half != 0 {
		t.Fatalf("%d acknowledged sign-ups lost, %d users without a password", lost, half)
	}
	if after.Load() == 0 {
		t.Fatal("no requests after recovery")
	}
}
