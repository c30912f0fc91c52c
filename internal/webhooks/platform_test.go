package webhooks_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/events"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

func (e *env) operator(t *testing.T, method, path string, body any) *testutil.Response {
	t.Helper()
	return e.Srv.Do(t, testutil.Request{Method: method, Host: "localhost", Path: "/api/v1/platform/webhooks" + path,
		Header: http.Header{"Authorization": {"Bearer " + operatorToken}}, Body: body})
}

type operatorLog struct {
	Deliveries []struct {
		ID        string  `json:"id"`
		EventType string  `json:"event_type"`
		State     string  `json:"state"`
		Status    *int    `json:"status"`
		CreatedAt string  `json:"created_at"`
		Response  *string `json:"response"`
		Tenant    *struct {
			ID   string `json:"id"`
			Slug string `json:"slug"`
		} `json:"tenant"`
	} `json:"deliveries"`
}

// TestOperatorDeliveries: an operator endpoint has the deliveries log of every tenant (each
// labelled with its tenant), retry one, retry all failed and test events, like a tenant's.
func TestOperatorDeliveries(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	other := testutil.NewSite(t, e.Srv, "other")
	rop := newReceiver(t)
	r := e.operator(t, "POST", "", map[string]any{"url": rop.URL(), "event_types": []string{"user.created"}})
	e.expect(t, r, http.StatusCreated)
	var op created
	r.JSON(t, &op)
	rop.trust("op", op.Secret)
	id := op.Webhook.ID

	// Both tenants' deliveries are held at the receiver, then answered 410: both fail.
	hold := make(chan struct{})
	rop.mu.Lock()
	rop.hold, rop.status = hold, http.StatusGone
	rop.mu.Unlock()
	e.Signup(t, "a@example.com")
	other.Signup(t, "b@example.com")
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		rop.mu.Lock()
		n := rop.active
		rop.mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d deliveries in flight, want 2", n)
		}
	}
	close(hold)
	var log operatorLog
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r := e.operator(t, "GET", "/"+id+"/deliveries", nil)
		e.expect(t, r, http.StatusOK)
		log = operatorLog{}
		r.JSON(t, &log)
		if len(log.Deliveries) == 2 && log.Deliveries[0].State == "failed" && log.Deliveries[1].State == "failed" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("operator log: %s", r.Body)
		}
	}
	byTenant := map[string]string{}
	for i, d := range log.Deliveries {
		if d.Tenant == nil || d.Status == nil || *d.Status != http.StatusGone || d.EventType != events.UserCreated {
			t.Fatalf("operator log entry %d: %+v", i, d)
		}
		byTenant[d.Tenant.Slug] = d.ID
	}
	if byTenant[e.Tenant.Slug] == "" || byTenant[other.Tenant.Slug] == "" {
		t.Fatalf("operator log tenants: %v", byTenant)
	}
	if log.Deliveries[0].CreatedAt < log.Deliveries[1].CreatedAt {
		t.Fatalf("operator log not newest first: %s, %s", log.Deliveries[0].CreatedAt, log.Deliveries[1].CreatedAt)
	}

	rop.mu.Lock()
	rop.hold, rop.status = nil, 0
	rop.mu.Unlock()
	// Each 410 disables the endpoint after recording its delivery failed, in a transaction
	// of its own: enable it again once no disabling is left to come.
	var enabledAt time.Time
stable:
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		var ep created
		e.operator(t, "GET", "/"+id, nil).JSON(t, &ep)
		switch {
		case !ep.Webhook.Enabled:
			e.expect(t, e.operator(t, "PATCH", "/"+id, map[string]any{"enabled": true}), http.StatusOK)
			enabledAt = time.Now()
		case !enabledAt.IsZero() && time.Since(enabledAt) > time.Second:
			break stable
		}
		if time.Now().After(deadline) {
			t.Fatal("the operator endpoint did not stay enabled")
		}
	}
	// Retry one: the other tenant's.
	e.expect(t, e.operator(t, "POST", "/"+id+"/deliveries/"+byTenant[other.Tenant.Slug]+"/retry", nil), http.StatusAccepted)
	got := rop.waitFor("the retried delivery", 20*time.Second, func(ds []delivery) bool { return len(ds) == 1 })
	if got[0].Body.Tenant.Slug != other.Tenant.Slug {
		t.Fatalf("retried %s's, want %s's", got[0].Body.Tenant.Slug, other.Tenant.Slug)
	}
	e.expect(t, e.operator(t, "POST", "/"+id+"/deliveries/"+byTenant[other.Tenant.Slug]+"/retry", nil), http.StatusConflict)
	// Retry all failed: the one left.
	r = e.operator(t, "POST", "/"+id+"/deliveries/retry", nil)
	e.expect(t, r, http.StatusAccepted)
	if !strings.Contains(string(r.Body), `"retried":1`) {
		t.Fatalf("retry failed: %s", r.Body)
	}
	rop.waitFor("every retried delivery", 20*time.Second, func(ds []delivery) bool { return len(ds) == 2 })

	// A test event, recorded in and labelled with the tenant named.
	if r := e.operator(t, "POST", "/"+id+"/test", map[string]any{}); r.StatusCode != http.StatusBadRequest || r.ErrorCode() != "webhook_test_tenant_required" {
		t.Fatalf("test without a tenant: %d %s", r.StatusCode, r.Body)
	}
	if r := e.operator(t, "POST", "/"+id+"/test", map[string]any{"tenant": "nope"}); r.StatusCode != http.StatusNotFound || r.ErrorCode() != "tenant_not_found" {
		t.Fatalf("test in an unknown tenant: %d %s", r.StatusCode, r.Body)
	}
	e.expect(t, e.operator(t, "POST", "/"+id+"/test", map[string]any{"tenant": e.Tenant.Slug}), http.StatusAccepted)
	got = rop.waitFor("the operator's test event", 20*time.Second, func(ds []delivery) bool { return len(ofType(ds, events.WebhookTest)) == 1 })
	if test := ofType(got, events.WebhookTest)[0]; test.Body.Tenant.Slug != e.Tenant.Slug || test.Body.Data["webhook_id"] != id {
		t.Fatalf("operator test event: %+v", test.Body)
	}
	if r := e.Do(t, "GET", "/api/v1/admin/events", e.admin, nil); strings.Contains(string(r.Body), events.WebhookTest) {
		t.Fatalf("the tenant's pull lists the operator's test: %s", r.Body)
	}
	if r := e.Do(t, "GET", "/api/v1/admin/webhooks/"+id+"/deliveries", e.admin, nil); r.StatusCode != http.StatusNotFound {
		t.Fatalf("a tenant read the operator endpoint's log: %d %s", r.StatusCode, r.Body)
	}
	e.expect(t, e.operator(t, "GET", "/00000000-0000-0000-0000-000000000001/deliveries", nil), http.StatusNotFound)
}
