package webhooks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/config"
	"github.com/gatehouse-id/gatehouse/internal/events"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
	"github.com/gatehouse-id/gatehouse/internal/webhooks"
)

func TestMain(m *testing.M) { testutil.Main(m) }

const operatorToken = "operator-token-for-webhook-tests-0123456789"

// fast makes a server that may reach the loopback receivers, with the retry schedule in
// units of 10 ms (5 s → 50 ms, 30 s → 300 ms, 2 min → 1.2 s, 10 min → 6 s).
func fast(c *config.Config) {
	c.OutboundAllowPrivate = true
	c.WebhookRetryUnit = 10 * time.Millisecond
	c.OperatorToken = operatorToken
}

type env struct {
	*testutil.Site
	d     *testutil.DB
	admin string
}

func newEnv(t *testing.T, opts ...testutil.ServerOption) *env {
	t.Helper()
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d, append([]testutil.ServerOption{testutil.WithConfig(fast)}, opts...)...)
	site := testutil.NewSite(t, srv, "hooks", testutil.SitePolicy(func(p *tenant.Policy) { p.Deletion.GraceDays = 0 }))
	_, admin := site.Person(t, "owner@example.com", authz.Owner)
	return &env{Site: site, d: d, admin: admin}
}

type created struct {
	Webhook struct {
		ID             string   `json:"id"`
		URL            string   `json:"url"`
		EventTypes     []string `json:"event_types"`
		Enabled        bool     `json:"enabled"`
		DisabledReason *string  `json:"disabled_reason"`
		FailingSince   *string  `json:"failing_since"`
	} `json:"webhook"`
	Secret string `json:"secret"`
}

func (e *env) create(t *testing.T, body map[string]any) created {
	t.Helper()
	r := e.Do(t, "POST", "/api/v1/admin/webhooks", e.admin, body)
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("create webhook: %d %s", r.StatusCode, r.Body)
	}
	var c created
	r.JSON(t, &c)
	return c
}

func (e *env) expect(t *testing.T, r *testutil.Response, status int) {
	t.Helper()
	if r.StatusCode != status {
		t.Fatalf("%s %s: %d %s, want %d", r.Request.Method, r.Request.URL.Path, r.StatusCode, r.Body, status)
	}
}

// TestDeliveredSignedOnce: sign-up, verification, email change, role change, session
// revocation and deletion (grace 0) each arrive once, signed, in the documented shape; an
// endpoint filtered to user.deleted gets that alone.
func TestDeliveredSignedOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	all, only := newReceiver(t), newReceiver(t)
	c := e.create(t, map[string]any{"url": all.URL(), "description": "the app"})
	all.trust("current", c.Secret)
	if c.Webhook.ID == "" || !c.Webhook.Enabled || len(c.Webhook.EventTypes) != 0 {
		t.Fatalf("created: %+v", c.Webhook)
	}
	if r := e.Do(t, "GET", "/api/v1/admin/webhooks/"+c.Webhook.ID, e.admin, nil); strings.Contains(string(r.Body), c.Secret) {
		t.Fatal("the secret is shown again")
	}
	f := e.create(t, map[string]any{"url": only.URL(), "event_types": []string{"user.deleted"}})
	only.trust("current", f.Secret)
	e.expect(t, e.Do(t, "POST", "/api/v1/admin/webhooks", e.admin, map[string]any{"url": all.URL(), "event_types": []string{"user.nope"}}), 400)

	e.Signup(t, "ann@example.com")
	tok := testutil.TokenFrom(t, e.Srv.WaitMail(t, "ann@example.com", "Confirm your email address"), "/verify")
	e.expect(t, e.Do(t, "POST", "/api/v1/verification/confirm", "", map[string]string{"token": tok}), 200)
	ann, annSession := e.LoginSession(t, "ann@example.com", testutil.Password)
	e.expect(t, e.Do(t, "POST", "/api/v1/account/email", ann, map[string]string{"email": "ann2@example.com"}), 202)
	tok = testutil.TokenFrom(t, e.Srv.WaitMail(t, "ann2@example.com", "Confirm your new email address"), "/verify")
	e.expect(t, e.Do(t, "POST", "/api/v1/verification/confirm", "", map[string]string{"token": tok}), 200)
	got := all.waitFor("sign-up to email change", 20*time.Second, func(ds []delivery) bool { return len(ofType(ds, events.UserEmailChanged)) == 1 })
	annID, _ := ofType(got, events.UserCreated)[0].Body.Data["user_id"].(string)
	e.expect(t, e.Do(t, "PUT", "/api/v1/admin/users/"+annID+"/roles", e.admin, map[string]any{"roles": []string{"admin"}}), 200)
	e.expect(t, e.Do(t, "DELETE", "/api/v1/sessions/"+annSession, ann, nil), 204)
	all.waitFor("role change and revocation", 20*time.Second, func(ds []delivery) bool {
		return len(ofType(ds, events.RoleGranted)) == 1 && len(ofType(ds, events.SessionRevoked)) == 1
	})
	again := e.Login(t, "ann2@example.com", testutil.Password)
	e.expect(t, e.Do(t, "DELETE", "/api/v1/account", again, nil), 202)
	got = all.waitFor("user.deleted", 20*time.Second, func(ds []delivery) bool { return len(ofType(ds, events.UserDeleted)) == 1 })
	filtered := only.waitFor("the filtered endpoint", 20*time.Second, func(ds []delivery) bool { return len(ds) == 1 })
	if filtered[0].Body.Type != events.UserDeleted {
		t.Fatalf("the user.deleted endpoint got %s", filtered[0].Body.Type)
	}
	time.Sleep(300 * time.Millisecond) // anything duplicated would have come by now

	for _, d := range all.deliveries() {
		if n := all.byID[d.ID]; n != 1 {
			t.Errorf("%s %s delivered %d times", d.Body.Type, d.ID, n)
		}
		if d.Body.Tenant.ID != e.Tenant.ID.String() || d.Body.Tenant.Slug != e.Tenant.Slug || d.Body.OccurredAt.IsZero() {
			t.Errorf("%s: envelope %+v", d.Body.Type, d.Raw)
		}
		if len(d.Raw) != 5 {
			t.Errorf("%s: envelope has %d fields, want id, type, tenant, occurred_at, data: %v", d.Body.Type, len(d.Raw), d.Raw)
		}
	}
	for _, want := range []struct {
		typ    string
		fields map[string]string
	}{
		{events.UserCreated, map[string]string{"user_id": annID, "email": "ann@example.com", "source": "signup"}},
		{events.UserEmailVerified, map[string]string{"user_id": annID, "email": "ann@example.com"}},
		{events.SessionCreated, map[string]string{"user_id": annID, "session_id": annSession}},
		{events.UserEmailChanged, map[string]string{"user_id": annID, "email": "ann2@example.com", "previous_email": "ann@example.com"}},
		{events.RoleGranted, map[string]string{"user_id": annID, "role": "admin"}},
		{events.SessionRevoked, map[string]string{"user_id": annID, "session_id": annSession, "reason": "revoked_by_user"}},
		{events.UserDeleted, map[string]string{"user_id": annID}},
	} {
		ds := ofType(got, want.typ)
		match := 0
		for _, d := range ds {
			ok := true
			for k, v := range want.fields {
				if s, _ := d.Body.Data[k].(string); s != v {
					ok = false
				}
			}
			if ok {
				match++
			}
		}
		if match != 1 {
			t.Errorf("%s: %d deliveries match %v (of %d)", want.typ, match, want.fields, len(ds))
		}
	}
	if del := ofType(got, events.UserDeleted)[0]; len(del.Body.Data) != 1 {
		t.Errorf("user.deleted carries more than the id: %v", del.Body.Data)
	}
	if bad := all.refused(); len(bad) > 0 {
		t.Errorf("refused deliveries: %v", bad)
	}

	// The deletion receipt names both endpoints that acknowledged user.deleted.
	deadline := time.Now().Add(10 * time.Second)
	for {
		var acks string
		if err := e.d.Admin.QueryRow(context.Background(), `SELECT acknowledged_by::text FROM deletion_receipts WHERE tenant_id = $1`, e.Tenant.ID).Scan(&acks); err != nil {
			t.Fatal(err)
		}
		if strings.Count(acks, "endpoint_id") == 2 && strings.Contains(acks, c.Webhook.ID) && strings.Contains(acks, f.Webhook.ID) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("receipt acknowledgements: %s", acks)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestOutageThenRecovery: the receiver refuses connections, then answers 500, under a
// stream of sign-ups; once back, every event arrives, none lost, and any repeat is a retry
// of the same webhook-id.
func TestOutageThenRecovery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, testutil.TrustProxyHeaders)
	rc := newReceiver(t)
	c := e.create(t, map[string]any{"url": rc.URL(), "event_types": []string{"user.created"}})
	rc.trust("current", c.Secret)
	rc.stop() // connections refused

	const n = 30
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := e.Do(t, "POST", "/api/v1/signup", "", map[string]string{"email": fmt.Sprintf("load%02d@example.com", i), "password": testutil.Password},
				"X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i+1))
			if r.StatusCode != http.StatusAccepted {
				t.Errorf("signup %d: %d %s", i, r.StatusCode, r.Body)
			}
		}()
		if i == n/2 {
			time.Sleep(300 * time.Millisecond)
			rc.setStatus(http.StatusInternalServerError)
			rc.restart() // answering 500s now
		}
	}
	wg.Wait()
	time.Sleep(500 * time.Millisecond)
	rc.setStatus(0) // back
	got := rc.waitFor("the backlog", 60*time.Second, func(ds []delivery) bool {
		seen := map[string]bool{}
		for _, d := range ds {
			seen[d.ID] = true
		}
		return len(seen) == n
	})
	var want []string
	if err := e.d.Store.InTenant(context.Background(), e.Tenant.ID, func(q *sqlcgen.Queries) error {
		rows, err := q.ListEventsAfter(context.Background(), sqlcgen.ListEventsAfterParams{Types: []string{events.UserCreated}, PageSize: 1000})
		for _, r := range rows {
			if email, _ := jsonField(r.Data, "email"); strings.HasPrefix(email, "load") {
				want = append(want, r.ID.String())
			}
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, d := range got {
		if !slices.Contains(ids, d.ID) {
			ids = append(ids, d.ID)
		}
	}
	slices.Sort(ids)
	slices.Sort(want)
	if !slices.Equal(ids, want) {
		t.Fatalf("delivered %d distinct events, recorded %d", len(ids), len(want))
	}
	// The log shows the failed attempts.
	var log struct {
		Deliveries []struct {
			State    string `json:"state"`
			Attempts int    `json:"attempts"`
			Status   *int   `json:"status"`
		} `json:"deliveries"`
	}
	// A receipt comes before its outcome is recorded: wait for the last records.
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		e.Do(t, "GET", "/api/v1/admin/webhooks/"+c.Webhook.ID+"/deliveries?limit=100", e.admin, nil).JSON(t, &log)
		if !slices.ContainsFunc(log.Deliveries, func(d struct {
			State    string `json:"state"`
			Attempts int    `json:"attempts"`
			Status   *int   `json:"status"`
		}) bool {
			return d.State != "delivered"
		}) || time.Now().After(deadline) {
			break
		}
	}
	retried := 0
	for _, d := range log.Deliveries {
		if d.State != "delivered" {
			t.Fatalf("a delivery is %s after recovery", d.State)
		}
		if d.Attempts > 1 {
			retried++
		}
	}
	if len(log.Deliveries) != n || retried == 0 {
		t.Fatalf("log: %d deliveries, %d retried", len(log.Deliveries), retried)
	}
}

// TestRotationOverlap: after a rotation both secrets sign for 24 hours, then only the new.
func TestRotationOverlap(t *testing.T) {
	t.Parallel()
	clk := testutil.NewClock()
	e := newEnv(t, testutil.WithClock(clk))
	rc := newReceiver(t)
	rc.clock = clk.Now
	c := e.create(t, map[string]any{"url": rc.URL()})
	rc.trust("old", c.Secret)
	r := e.Do(t, "POST", "/api/v1/admin/webhooks/"+c.Webhook.ID+"/secret", e.admin, nil)
	e.expect(t, r, 200)
	var rot created
	r.JSON(t, &rot)
	if rot.Secret == c.Secret || !strings.HasPrefix(rot.Secret, "whsec_") {
		t.Fatalf("rotation gave %q", rot.Secret)
	}
	rc.trust("new", rot.Secret)
	e.expect(t, e.Do(t, "POST", "/api/v1/admin/webhooks/"+c.Webhook.ID+"/test", e.admin, nil), 202)
	d := rc.waitFor("test event", 20*time.Second, func(ds []delivery) bool { return len(ds) == 1 })[0]
	slices.Sort(d.Verified)
	if d.Body.Type != events.WebhookTest || d.Sigs != 2 || !slices.Equal(d.Verified, []string{"new", "old"}) {
		t.Fatalf("during the overlap: type %s, %d signatures, verified by %v", d.Body.Type, d.Sigs, d.Verified)
	}
	clk.Advance(25 * time.Hour)
	e.admin = e.Login(t, "owner@example.com", testutil.Password)
	e.expect(t, e.Do(t, "POST", "/api/v1/admin/webhooks/"+c.Webhook.ID+"/test", e.admin, nil), 202)
	// The new sign-in's session.created is delivered too: look at the test events only.
	tests := func(ds []delivery) []delivery {
		var out []delivery
		for _, x := range ds {
			if x.Body.Type == events.WebhookTest {
				out = append(out, x)
			}
		}
		return out
	}
	d = tests(rc.waitFor("second test event", 20*time.Second, func(ds []delivery) bool { return len(tests(ds)) == 2 }))[1]
	if d.Sigs != 1 || !slices.Equal(d.Verified, []string{"new"}) {
		t.Fatalf("after the overlap: %d signatures, verified by %v", d.Sigs, d.Verified)
	}
}

// TestGoneDisablesAndRetry: a 410 disables the endpoint; enabling it again and retrying
// the failed deliveries delivers them.
func TestGoneDisablesAndRetry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	rc := newReceiver(t)
	c := e.create(t, map[string]any{"url": rc.URL(), "event_types": []string{"user.created"}})
	rc.trust("current", c.Secret)
	rc.setStatus(http.StatusGone)
	e.Signup(t, "gone@example.com")
	var got created
	deadline := time.Now().Add(20 * time.Second)
	for {
		e.Do(t, "GET", "/api/v1/admin/webhooks/"+c.Webhook.ID, e.admin, nil).JSON(t, &got)
		if !got.Webhook.Enabled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a 410 did not disable the endpoint")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got.Webhook.DisabledReason == nil || *got.Webhook.DisabledReason != "gone" {
		t.Fatalf("disabled reason %v", got.Webhook.DisabledReason)
	}
	if n := e.d.AuditCount(t, e.Tenant.ID, "webhook.disabled", ""); n != 1 {
		t.Fatalf("webhook.disabled audited %d times", n)
	}
	if m := e.Srv.WaitMail(t, "owner@example.com", "A webhook endpoint was disabled"); !strings.Contains(m.Text, "410 Gone") || !strings.Contains(m.Text, rc.URL()) {
		t.Fatalf("owner notice: %s", m.Text)
	}
	var log struct {
		Deliveries []struct {
			ID       string  `json:"id"`
			State    string  `json:"state"`
			Status   *int    `json:"status"`
			Response *string `json:"response"`
		} `json:"deliveries"`
	}
	e.Do(t, "GET", "/api/v1/admin/webhooks/"+c.Webhook.ID+"/deliveries", e.admin, nil).JSON(t, &log)
	if len(log.Deliveries) != 1 || log.Deliveries[0].State != "failed" || log.Deliveries[0].Status == nil || *log.Deliveries[0].Status != 410 ||
		log.Deliveries[0].Response == nil || !strings.Contains(*log.Deliveries[0].Response, "not now") {
		t.Fatalf("log after 410: %+v", log.Deliveries)
	}
	rc.setStatus(0)
	e.expect(t, e.Do(t, "PATCH", "/api/v1/admin/webhooks/"+c.Webhook.ID, e.admin, map[string]any{"enabled": true}), 200)
	e.expect(t, e.Do(t, "POST", "/api/v1/admin/webhooks/"+c.Webhook.ID+"/deliveries/"+log.Deliveries[0].ID+"/retry", e.admin, nil), 202)
	rc.waitFor("the retried delivery", 20*time.Second, func(ds []delivery) bool { return len(ds) == 1 })
	e.expect(t, e.Do(t, "POST", "/api/v1/admin/webhooks/"+c.Webhook.ID+"/deliveries/"+log.Deliveries[0].ID+"/retry", e.admin, nil), 409)
}

// TestIsolationAndOperator: a tenant's endpoint hears only its tenant; the operator's
// endpoint hears both, each event labelled with its tenant.
func TestIsolationAndOperator(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	other := testutil.NewSite(t, e.Srv, "other")
	ra, rop := newReceiver(t), newReceiver(t)
	ra.trust("a", e.create(t, map[string]any{"url": ra.URL(), "event_types": []string{"user.created"}}).Secret)
	r := e.Srv.Do(t, testutil.Request{Method: "POST", Host: "localhost", Path: "/api/v1/platform/webhooks",
		Header: http.Header{"Authorization": {"Bearer " + operatorToken}}, Body: map[string]any{"url": rop.URL(), "event_types": []string{"user.created"}}})
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("operator webhook: %d %s", r.StatusCode, r.Body)
	}
	var op created
	r.JSON(t, &op)
	rop.trust("op", op.Secret)
	e.expect(t, e.Srv.Do(t, testutil.Request{Method: "GET", Host: "localhost", Path: "/api/v1/platform/webhooks"}), 401)

	e.Signup(t, "a@example.com")
	other.Signup(t, "b@example.com")
	got := rop.waitFor("both tenants at the operator", 20*time.Second, func(ds []delivery) bool { return len(ds) == 2 })
	slugs := map[string]string{}
	for _, d := range got {
		slugs[d.Body.Tenant.Slug], _ = d.Body.Data["email"].(string)
	}
	if slugs[e.Tenant.Slug] != "a@example.com" || slugs[other.Tenant.Slug] != "b@example.com" {
		t.Fatalf("operator deliveries: %v", slugs)
	}
	ra.waitFor("tenant A", 20*time.Second, func(ds []delivery) bool { return len(ds) == 1 })
	time.Sleep(300 * time.Millisecond)
	for _, d := range ra.deliveries() {
		if d.Body.Tenant.ID != e.Tenant.ID.String() {
			t.Fatalf("tenant A's endpoint got an event of %s", d.Body.Tenant.Slug)
		}
	}
	if len(ra.deliveries()) != 1 {
		t.Fatalf("tenant A's endpoint got %d deliveries", len(ra.deliveries()))
	}
}

// TestURLRules: with the switch off, http, loopback, private, link-local and metadata
// addresses are refused when typed.
func TestURLRules(t *testing.T) {
	t.Parallel()
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d)
	site := testutil.NewSite(t, srv, "rules")
	_, admin := site.Person(t, "owner@example.com", authz.Owner)
	for _, u := range []string{"http://hooks.example.com/in", "https://127.0.0.1/in", "https://[::1]/in", "https://10.1.2.3/in",
		"https://192.168.0.10/in", "https://169.254.169.254/latest/meta-data", "https://localhost/in", "https://app.localhost/in",
		"ftp://hooks.example.com/", "https://user:pw@hooks.example.com/"} {
		r := site.Do(t, "POST", "/api/v1/admin/webhooks", admin, map[string]any{"url": u})
		if r.StatusCode != http.StatusBadRequest || r.ErrorCode() != "invalid_webhook_url" {
			t.Errorf("%s: %d %s", u, r.StatusCode, r.Body)
		}
	}
	r := site.Do(t, "POST", "/api/v1/admin/webhooks", admin, map[string]any{"url": "https://hooks.example.com/in"})
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("a public https URL: %d %s", r.StatusCode, r.Body)
	}
	_, member := site.Person(t, "member@example.com")
	if r := site.Do(t, "GET", "/api/v1/admin/webhooks", member, nil); r.StatusCode != http.StatusForbidden {
		t.Fatalf("a member listed webhooks: %d", r.StatusCode)
	}
}

// TestEventsPull: the pull API pages oldest first by cursor, filtered by type.
func TestEventsPull(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for i := range 3 {
		e.Signup(t, fmt.Sprintf("p%d@example.com", i))
	}
	type page struct {
		Events []struct {
			ID   string         `json:"id"`
			Type string         `json:"type"`
			Data map[string]any `json:"data"`
		} `json:"events"`
		Next string `json:"next"`
	}
	// An event is listed once every transaction that began before it has ended, in the
	// whole cluster (a CREATE DATABASE of another test holds that back for a moment).
	var p page
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r := e.Do(t, "GET", "/api/v1/admin/events?types=user.created&limit=2", e.admin, nil)
		e.expect(t, r, 200)
		r.JSON(t, &p)
		if len(p.Events) == 2 || time.Now().After(deadline) {
			break
		}
	}
	if len(p.Events) != 2 || p.Next == "" || p.Events[0].Data["email"] != "owner@example.com" {
		t.Fatalf("first page: %+v", p)
	}
	var q page
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		e.Do(t, "GET", "/api/v1/admin/events?types=user.created&limit=2&after="+p.Next, e.admin, nil).JSON(t, &q)
		if len(q.Events) == 2 || time.Now().After(deadline) {
			break
		}
	}
	if len(q.Events) != 2 || q.Events[0].Data["email"] != "p1@example.com" {
		t.Fatalf("second page: %+v", q)
	}
	var last page
	e.Do(t, "GET", "/api/v1/admin/events?types=user.created&after="+q.Next, e.admin, nil).JSON(t, &last)
	if len(last.Events) != 0 || last.Next != q.Next {
		t.Fatalf("past the end: %+v", last)
	}
	if r := e.Do(t, "GET", "/api/v1/admin/events?after=nonsense", e.admin, nil); r.ErrorCode() != "invalid_cursor" {
		t.Fatalf("bad cursor: %d %s", r.StatusCode, r.Body)
	}
	if r := e.Do(t, "GET", "/api/v1/admin/events?types=user.nope", e.admin, nil); r.ErrorCode() != "invalid_event_type" {
		t.Fatalf("bad type: %d %s", r.StatusCode, r.Body)
	}
}

func jsonField(b []byte, k string) (string, bool) {
	var m map[string]any
	if json.Unmarshal(b, &m) != nil {
		return "", false
	}
	s, ok := m[k].(string)
	return s, ok
}

// TestEventsRetention: the housekeeping sweep deletes events (with their deliveries) older
// than the tenant's retention, 30 days by default, and keeps the rest.
func TestEventsRetention(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	var old, recent string
	if err := e.d.Admin.QueryRow(ctx, `INSERT INTO events (tenant_id, type, occurred_at) VALUES ($1, 'user.updated', now() - interval '31 days') RETURNING id`,
		e.Tenant.ID).Scan(&old); err != nil {
		t.Fatal(err)
	}
	if err := e.d.Admin.QueryRow(ctx, `INSERT INTO events (tenant_id, type, occurred_at) VALUES ($1, 'user.updated', now() - interval '29 days') RETURNING id`,
		e.Tenant.ID).Scan(&recent); err != nil {
		t.Fatal(err)
	}
	if _, err := e.d.Admin.Exec(ctx, `INSERT INTO webhook_deliveries (tenant_id, event_id, endpoint_id, state) VALUES ($1, $2, gen_random_uuid(), 'delivered')`,
		e.Tenant.ID, old); err != nil {
		t.Fatal(err)
	}
	if err := e.Srv.App.Tenants.Sweep(ctx, []tenant.Tenant{e.Tenant}); err != nil {
		t.Fatal(err)
	}
	var left []string
	rows, err := e.d.Admin.Query(ctx, `SELECT id::text FROM events WHERE tenant_id = $1 AND id IN ($2, $3)`, e.Tenant.ID, old, recent)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		_ = rows.Scan(&id)
		left = append(left, id)
	}
	rows.Close()
	var deliveries int
	_ = e.d.Admin.QueryRow(ctx, `SELECT count(*) FROM webhook_deliveries WHERE tenant_id = $1 AND event_id = $2`, e.Tenant.ID, old).Scan(&deliveries)
	if !slices.Equal(left, []string{recent}) || deliveries != 0 {
		t.Fatalf("after the sweep: events %v (want only %s), %d deliveries of the old event", left, recent, deliveries)
	}
}

// TestFailingThreeDaysDisables: an endpoint whose deliveries fail for three days in a row
// is disabled and its owners are told.
func TestFailingThreeDaysDisables(t *testing.T) {
	t.Parallel()
	clk := testutil.NewClock()
	e := newEnv(t, testutil.WithClock(clk))
	rc := newReceiver(t)
	rc.clock = clk.Now
	c := e.create(t, map[string]any{"url": rc.URL(), "event_types": []string{"user.created"}})
	rc.trust("current", c.Secret)
	rc.setStatus(http.StatusServiceUnavailable)
	e.Signup(t, "down@example.com")
	var got created
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		e.Do(t, "GET", "/api/v1/admin/webhooks/"+c.Webhook.ID, e.admin, nil).JSON(t, &got)
		if got.Webhook.Enabled && got.Webhook.FailingSince != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failure streak recorded: %+v", got.Webhook)
		}
	}
	clk.Advance(FailingForTest)
	e.admin = e.Login(t, "owner@example.com", testutil.Password)
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		e.Do(t, "GET", "/api/v1/admin/webhooks/"+c.Webhook.ID, e.admin, nil).JSON(t, &got)
		if !got.Webhook.Enabled {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("an endpoint failing for three days stayed enabled")
		}
	}
	if got.Webhook.DisabledReason == nil || *got.Webhook.DisabledReason != "failing" {
		t.Fatalf("disabled reason %v", got.Webhook.DisabledReason)
	}
	if m := e.Srv.WaitMail(t, "owner@example.com", "A webhook endpoint was disabled"); !strings.Contains(m.Text, "three days") {
		t.Fatalf("owner notice: %s", m.Text)
	}
}

// FailingForTest is past webhooks.FailingFor (72 hours).
const FailingForTest = 73 * time.Hour

// TestPortalPages: the Webhooks pages create an endpoint (the secret shown once), send a
// test event that the receiver verifies, show it in the deliveries log, and rotate.
func TestPortalPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	cookie := []string{"Cookie", "__Host-gatehouse=" + e.admin, "Origin", "http://" + e.Host}
	rc := newReceiver(t)
	if r := e.Page(t, "/admin/webhooks", cookie...); r.StatusCode != 200 || !strings.Contains(string(r.Body), "No endpoint yet") {
		t.Fatalf("list: %d %s", r.StatusCode, r.Body)
	}
	r := e.Form(t, "/admin/webhooks", map[string][]string{"url": {rc.URL()}, "description": {"portal"}, "enabled": {"on"}}, cookie...)
	if r.StatusCode != http.StatusCreated {
		t.Fatalf("create: %d %s", r.StatusCode, r.Body)
	}
	body := string(r.Body)
	i := strings.Index(body, `<code id="webhook-secret">`)
	if i < 0 {
		t.Fatalf("no secret on the page: %s", body)
	}
	secret := body[i+len(`<code id="webhook-secret">`):]
	secret = html.UnescapeString(secret[:strings.Index(secret, "<")])
	rc.trust("portal", secret)
	list, err := e.Srv.App.Webhooks.List(context.Background(), webhooksOwner(e))
	if err != nil || len(list) != 1 {
		t.Fatalf("endpoints: %v %v", list, err)
	}
	id := list[0].ID.String()
	if r := e.Page(t, "/admin/webhooks/"+id, cookie...); strings.Contains(string(r.Body), secret) {
		t.Fatal("the secret is shown again")
	}
	if r := e.Form(t, "/admin/webhooks/"+id+"/test", nil, cookie...); r.StatusCode != http.StatusSeeOther {
		t.Fatalf("test: %d %s", r.StatusCode, r.Body)
	}
	rc.waitFor("the test event", 20*time.Second, func(ds []delivery) bool { return len(ds) == 1 && ds[0].Body.Type == events.WebhookTest })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		page := string(e.Page(t, "/admin/webhooks/"+id, cookie...).Body)
		if strings.Contains(page, "<code>webhook.test</code>") && strings.Contains(page, "<td>delivered</td>") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the deliveries log does not show the delivered test: %s", page)
		}
	}
	r = e.Form(t, "/admin/webhooks/"+id+"/secret", nil, cookie...)
	if r.StatusCode != 200 || !strings.Contains(string(r.Body), "two signatures") {
		t.Fatalf("rotate: %d %s", r.StatusCode, r.Body)
	}
	_, member := e.Person(t, "member@example.com")
	if r := e.Page(t, "/admin/webhooks", "Cookie", "__Host-gatehouse="+member); r.StatusCode != http.StatusForbidden {
		t.Fatalf("a member opened the Webhooks page: %d", r.StatusCode)
	}
}

func webhooksOwner(e *env) webhooks.Owner { return webhooks.Owner{TenantID: e.Tenant.ID} }

// TestApplyDeclared: webhooks: of a tenant file create endpoints by name (the secret from
// the environment, or generated and returned once), then update or leave them.
func TestApplyDeclared(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	env := map[string]string{"APP_HOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
	decls := []tenant.WebhookDecl{{Name: "app", URL: "https://app.example.com/hooks", SecretEnv: "APP_HOOK_SECRET"},
		{Name: "audit", URL: "https://audit.example.com/in", EventTypes: []string{"user.deleted"}}}
	changes, err := e.Srv.App.Webhooks.ApplyDeclared(ctx, e.Tenant, decls, func(k string) string { return env[k] }, false)
	if err != nil || len(changes) != 2 || changes[0].Action != "create" || changes[0].Secret != "" || !strings.HasPrefix(changes[1].Secret, "whsec_") {
		t.Fatalf("first apply: %+v %v", changes, err)
	}
	decls[1].URL = "https://audit.example.com/v2"
	changes, err = e.Srv.App.Webhooks.ApplyDeclared(ctx, e.Tenant, decls, func(k string) string { return env[k] }, false)
	if err != nil || changes[0].Action != "unchanged" || changes[1].Action != "update" || changes[1].Secret != "" {
		t.Fatalf("second apply: %+v %v", changes, err)
	}
	list, _ := e.Srv.App.Webhooks.List(ctx, webhooks.Owner{TenantID: e.Tenant.ID})
	if len(list) != 2 || list[1].URL != "https://audit.example.com/v2" {
		t.Fatalf("endpoints: %+v", list)
	}
	if _, err := e.Srv.App.Webhooks.ApplyDeclared(ctx, e.Tenant, []tenant.WebhookDecl{{Name: "x", URL: "https://x.example.com", SecretEnv: "UNSET"}},
		func(string) string { return "" }, false); err == nil {
		t.Fatal("an unset secret_env was accepted")
	}
}
