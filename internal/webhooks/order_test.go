package webhooks_test

import (
	"context"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

// TestOrderPerUser: the receiver refuses (500) the first event of user U for a while, then
// accepts. U's later events wait for it and then arrive in event order (first successful
// receipt per webhook-id); V's events are not held back by U's.
func TestOrderPerUser(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rc := newReceiver(t)
	c := e.create(t, map[string]any{"url": rc.URL()})
	rc.trust("current", c.Secret)
	var open atomic.Bool
	rc.answer = func(d delivery) int {
		if email, _ := d.Body.Data["email"].(string); email == "u@example.com" && d.Body.Type == "user.created" && !open.Load() {
			return http.StatusInternalServerError
		}
		return 0
	}
	ctx := context.Background()
	userID := func(email string) string {
		t.Helper()
		var id string
		if err := e.d.Admin.QueryRow(ctx, `SELECT id::text FROM users WHERE tenant_id = $1 AND email = $2`, e.Tenant.ID, email).Scan(&id); err != nil {
			t.Fatalf("user %s: %v", email, err)
		}
		return id
	}
	e.Signup(t, "u@example.com")
	e.Signup(t, "v@example.com")
	u, v := userID("u@example.com"), userID("v@example.com")
	// Four role changes each, interleaved: U's follow its refused user.created.
	for i := range 4 {
		roles := []string{"admin"}
		if i%2 == 1 {
			roles = []string{}
		}
		for _, id := range []string{u, v} {
			e.expect(t, e.Do(t, "PUT", "/api/v1/admin/users/"+id+"/roles", e.admin, map[string]any{"roles": roles}), 200)
		}
	}
	seqOf := func(user string) []string {
		t.Helper()
		rows, err := e.d.Admin.Query(ctx, `SELECT id::text FROM events WHERE tenant_id = $1 AND user_id = $2 ORDER BY seq`, e.Tenant.ID, user)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		return ids
	}
	wantU, wantV := seqOf(u), seqOf(v)
	if len(wantU) < 5 || len(wantV) < 5 {
		t.Fatalf("events: U %d, V %d, want at least 5 each", len(wantU), len(wantV))
	}
	// firsts is the order of first successful receipt of the given events.
	firsts := func(ds []delivery, of []string) []string {
		var out []string
		for _, d := range ds {
			if slices.Contains(of, d.ID) && !slices.Contains(out, d.ID) {
				out = append(out, d.ID)
			}
		}
		return out
	}
	// V's events all arrive while U's first is still refused.
	got := rc.waitFor("V's events", 20*time.Second, func(ds []delivery) bool { return len(firsts(ds, wantV)) == len(wantV) })
	if o := firsts(got, wantV); !slices.Equal(o, wantV) {
		t.Errorf("V's events arrived in the order %v, want %v", o, wantV)
	}
	// Let U's first be refused a few times (retries after 50 ms, 300 ms, 1.2 s here).
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		rc.mu.Lock()
		n := rc.rejected[wantU[0]]
		rc.mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("U's first event was refused %d times", n)
		}
	}
	if early := firsts(rc.deliveries(), wantU); len(early) > 0 {
		t.Errorf("%d of U's events arrived while U's first was refused", len(early))
	}
	var held int
	if err := e.d.Admin.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries WHERE tenant_id = $1 AND user_id = $2 AND held`, e.Tenant.ID, u).Scan(&held); err != nil {
		t.Fatal(err)
	}
	if held == 0 {
		t.Errorf("none of U's later deliveries is held")
	}
	var log struct {
		Deliveries []struct {
			EventID       string  `json:"event_id"`
			Held          bool    `json:"held"`
			NextAttemptAt *string `json:"next_attempt_at"`
		} `json:"deliveries"`
	}
	e.Do(t, "GET", "/api/v1/admin/webhooks/"+c.Webhook.ID+"/deliveries?limit=100", e.admin, nil).JSON(t, &log)
	shown := 0
	for _, d := range log.Deliveries {
		if d.Held {
			shown++
			if !slices.Contains(wantU[1:], d.EventID) || d.NextAttemptAt != nil {
				t.Errorf("held in the log: %+v", d)
			}
		}
	}
	if shown != held {
		t.Errorf("the deliveries log shows %d held, the table has %d", shown, held)
	}
	open.Store(true)
	start := time.Now()
	got = rc.waitFor("U's events", 60*time.Second, func(ds []delivery) bool { return len(firsts(ds, wantU)) == len(wantU) })
	t.Logf("U's backlog arrived %s after the receiver accepted (next retry of the first: 6 s here)", time.Since(start).Round(time.Millisecond))
	if o := firsts(got, wantU); !slices.Equal(o, wantU) {
		t.Errorf("U's events arrived in the order %v, want %v", o, wantU)
	}
	if bad := rc.refused(); len(bad) > 0 {
		t.Errorf("unverified deliveries: %v", bad)
	}
}
