package mail_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/config"
	"github.com/gatehouse-id/gatehouse/internal/mail"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// fakeSES implements SES v2 SendEmail (POST /v2/email/outbound-emails) on loopback. fail
// decides the answer of each call: 0 for success, or an HTTP status with an error type.
type fakeSES struct {
	mu       sync.Mutex
	requests []sesRequest
	fail     func(n int) (status int, errType string)
	srv      *httptest.Server
}

type sesRequest struct {
	Auth string
	Body struct {
		FromEmailAddress     string
		ConfigurationSetName string
		Destination          struct{ ToAddresses []string }
		Content              struct {
			Simple struct {
				Subject struct{ Data, Charset string }
				Body    struct{ Text, Html struct{ Data string } }
			}
		}
	}
}

func newFakeSES(t *testing.T, fail func(n int) (int, string)) *fakeSES {
	f := &fakeSES{fail: fail}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != "POST" || r.URL.Path != "/v2/email/outbound-emails" {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, 404)
			return
		}
		b, _ := io.ReadAll(r.Body)
		var req sesRequest
		req.Auth = r.Header.Get("Authorization")
		if err := json.Unmarshal(b, &req.Body); err != nil {
			http.Error(w, err.Error(), 400)
			return
		}
		f.mu.Lock()
		f.requests = append(f.requests, req)
		n := len(f.requests)
		f.mu.Unlock()
		if status, typ := f.fail(n); status != 0 {
			w.Header().Set("X-Amzn-ErrorType", typ)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(status)
			_, _ = io.WriteString(w, `{"message":"simulated `+typ+`"}`)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"MessageId":"fake-`+time.Now().Format("150405.000000")+`"}`)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSES) calls() []sesRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]sesRequest(nil), f.requests...)
}

func setAWS(t *testing.T, endpoint string) {
	t.Setenv("AWS_ENDPOINT_URL_SESV2", endpoint)
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDTESTTESTTEST")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
}

// TestSESRequestShape: the real SDK, pointed at the fake by AWS_ENDPOINT_URL_SESV2, sends
// recipient, subject and both bodies, signed.
func TestSESRequestShape(t *testing.T) {
	f := newFakeSES(t, func(int) (int, string) { return 0, "" })
	setAWS(t, f.srv.URL)
	s, err := mail.NewSESSender(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	id, err := s.Send(context.Background(), mail.Message{From: "Acme <no-reply@acme.example>", To: "bob@example.com",
		Subject: "Hällo", Text: "plain body", HTML: "<p>html body</p>", ConfigurationSet: "transactional"})
	if err != nil || !strings.HasPrefix(id, "fake-") {
		t.Fatalf("send: %q %v", id, err)
	}
	c := f.calls()
	if len(c) != 1 {
		t.Fatalf("%d calls", len(c))
	}
	b := c[0].Body
	if b.Destination.ToAddresses[0] != "bob@example.com" || b.FromEmailAddress != "Acme <no-reply@acme.example>" ||
		b.Content.Simple.Subject.Data != "Hällo" || b.Content.Simple.Body.Text.Data != "plain body" ||
		b.Content.Simple.Body.Html.Data != "<p>html body</p>" || b.ConfigurationSetName != "transactional" {
		t.Fatalf("request: %+v", b)
	}
	if !strings.HasPrefix(c[0].Auth, "AWS4-HMAC-SHA256 Credential=AKIDTESTTESTTEST/") || !strings.Contains(c[0].Auth, "/eu-west-1/ses/") {
		t.Fatalf("request not SigV4-signed for ses in eu-west-1: %q", c[0].Auth)
	}
}

// TestSESOutageDelaysMail: the provider fails with 500s and throttling for a while; signup
// still answers 202 at once, the job retries, and the mail arrives exactly once after
// recovery. A permanent rejection is not retried.
func TestSESOutageDelaysMail(t *testing.T) {
	f := newFakeSES(t, func(n int) (int, string) {
		switch {
		case n <= 3:
			return 500, "InternalFailure"
		case n <= 6:
			return 429, "TooManyRequestsException"
		}
		return 0, ""
	})
	setAWS(t, f.srv.URL)
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d, testutil.WithConfig(func(c *config.Config) { c.Mail = "ses" }))
	ten, err := srv.App.Tenants.Create(context.Background(), tenant.CreateInput{Slug: testutil.UniqueSlug("ses"), Name: "SES Co"})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r := srv.Do(t, testutil.Request{Method: "POST", Host: ten.Tenant.Slug + ".localhost", Path: "/api/v1/signup",
		Body: map[string]string{"email": "outage@example.com", "password": "purple monkey dishwasher"}})
	if r.StatusCode != 202 {
		t.Fatalf("signup during an outage: %d %s", r.StatusCode, r.Body)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatalf("signup waited %v for the mail provider", time.Since(start))
	}

	var status string
	var attempts int
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := d.Admin.QueryRow(context.Background(), "SELECT status, attempts FROM mail_outbox WHERE tenant_id = $1", ten.Tenant.ID).Scan(&status, &attempts)
		if err != nil {
			t.Fatal(err)
		}
		if status != "pending" || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if status != "sent" || attempts < 2 {
		t.Fatalf("outbox: status %s after %d attempts; want sent after retries", status, attempts)
	}
	calls := f.calls()
	ok := 0
	for _, c := range calls {
		if c.Body.Destination.ToAddresses[0] != "outage@example.com" || !strings.Contains(c.Body.Content.Simple.Body.Text.Data, "/verify?token=") {
			t.Fatalf("unexpected request: %+v", c.Body)
		}
	}
	if len(calls) < 7 {
		t.Fatalf("%d calls; the six failures and one success were expected", len(calls))
	}
	ok = len(calls) - 6
	if ok != 1 {
		t.Fatalf("mail accepted %d times, want exactly once", ok)
	}
	var body *string
	if err := d.Admin.QueryRow(context.Background(), "SELECT text_body FROM mail_outbox WHERE tenant_id = $1", ten.Tenant.ID).Scan(&body); err != nil || body != nil {
		t.Fatalf("mail body (with its one-time link) kept after delivery: %v %v", body, err)
	}
}

func TestSESPermanentRejection(t *testing.T) {
	f := newFakeSES(t, func(int) (int, string) { return 400, "MessageRejected" })
	setAWS(t, f.srv.URL)
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d, testutil.WithConfig(func(c *config.Config) { c.Mail = "ses" }))
	ten, err := srv.App.Tenants.Create(context.Background(), tenant.CreateInput{Slug: testutil.UniqueSlug("rej"), Name: "Rej Co"})
	if err != nil {
		t.Fatal(err)
	}
	r := srv.Do(t, testutil.Request{Method: "POST", Host: ten.Tenant.Slug + ".localhost", Path: "/api/v1/signup",
		Body: map[string]string{"email": "rejected@example.com", "password": "purple monkey dishwasher"}})
	if r.StatusCode != 202 {
		t.Fatalf("signup: %d", r.StatusCode)
	}
	var status string
	var attempts int
	var lastErr *string
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		_ = d.Admin.QueryRow(context.Background(), "SELECT status, attempts, last_error FROM mail_outbox WHERE tenant_id = $1", ten.Tenant.ID).Scan(&status, &attempts, &lastErr)
		if status == "failed" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if status != "failed" || attempts != 1 || lastErr == nil || !strings.Contains(*lastErr, "MessageRejected") {
		t.Fatalf("outbox: %s after %d attempts (%v); want failed after one", status, attempts, lastErr)
	}
	// Not retried: the one send job of the tenant ends cancelled after its first attempt.
	// The worker records the outbox row before River finalises the job, so wait for that;
	// a finalised job never runs again, so the call count below is final.
	type sendJob struct {
		State   string
		Attempt int
	}
	var jobs []sendJob
	deadline = time.Now().Add(20 * time.Second)
	for {
		rows, err := d.Admin.Query(context.Background(), `SELECT state::text, attempt FROM river_job
			WHERE kind = 'mail.send' AND args->>'tenant_id' = $1 ORDER BY id`, ten.Tenant.ID.String())
		if err != nil {
			t.Fatal(err)
		}
		if jobs, err = pgx.CollectRows(rows, pgx.RowToStructByPos[sendJob]); err != nil {
			t.Fatal(err)
		}
		if len(jobs) != 1 || jobs[0].State != "running" || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if diff := cmp.Diff([]sendJob{{State: "cancelled", Attempt: 1}}, jobs); diff != "" {
		t.Fatalf("send jobs of a permanently rejected mail (-want +got):\n%s", diff)
	}
	if n := len(f.calls()); n != 1 {
		t.Fatalf("a permanent rejection was retried: %d calls", n)
	}
}

func timeNow() time.Time { return time.Now() }
