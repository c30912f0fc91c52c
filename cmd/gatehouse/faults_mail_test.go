package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// SES fault modes: the fake answers every SendEmail, fails it with a 500 or throttling, or
// is not there at all (connections refused, open ones cut).
const (
	sesUp int32 = iota
	ses500
	sesThrottle
	sesDown
)

// outageSES is a fake SES v2 endpoint (POST /v2/email/outbound-emails) on a fixed loopback
// address, so that it can stop listening and come back on the same port.
type outageSES struct {
	addr    string
	mode    atomic.Int32
	handler http.Handler

	mu       sync.Mutex
	accepted map[string][]string // recipient → text bodies of the accepted SendEmail calls
	answered map[int32]int       // failures answered, by mode
	srv      *http.Server
}

func newOutageSES(t *testing.T) *outageSES {
	t.Helper()
	f := &outageSES{accepted: map[string][]string{}, answered: map[int32]int{}}
	f.handler = http.HandlerFunc(f.serveHTTP)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	f.serve(ln)
	t.Cleanup(func() {
		f.mu.Lock()
		srv := f.srv
		f.mu.Unlock()
		if srv != nil {
			_ = srv.Close()
		}
	})
	return f
}

func (f *outageSES) serve(ln net.Listener) {
	srv := &http.Server{Handler: f.handler}
	f.mu.Lock()
	f.srv = srv
	f.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

func (f *outageSES) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != "POST" || r.URL.Path != "/v2/email/outbound-emails" {
		http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, 404)
		return
	}
	var body struct {
		Destination struct{ ToAddresses []string }
		Content     struct {
			Simple struct {
				Body struct{ Text struct{ Data string } }
			}
		}
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil || len(body.Destination.ToAddresses) != 1 {
		http.Error(w, fmt.Sprintf("bad request: %v %v", err, body.Destination.ToAddresses), 400)
		return
	}
	mode := f.mode.Load()
	w.Header().Set("Content-Type", "application/json")
	if mode != sesUp { // sesDown too: a request already read when the fake went away
		f.mu.Lock()
		f.answered[mode]++
		f.mu.Unlock()
		status, typ := 500, "InternalFailure"
		if mode != ses500 {
			status, typ = 429, "TooManyRequestsException"
		}
		w.Header().Set("X-Amzn-ErrorType", typ)
		w.WriteHeader(status)
		_, _ = io.WriteString(w, `{"message":"simulated `+typ+`"}`)
		return
	}
	f.mu.Lock()
	to := body.Destination.ToAddresses[0]
	f.accepted[to] = append(f.accepted[to], body.Content.Simple.Body.Text.Data)
	n := len(f.accepted)
	f.mu.Unlock()
	_, _ = fmt.Fprintf(w, `{"MessageId":"fake-%d-%d"}`, n, time.Now().UnixNano())
}

// setMode switches the fake. Going down closes the listener and every open connection
// (new ones are refused); coming back listens on the same address again.
func (f *outageSES) setMode(t *testing.T, m int32) {
	t.Helper()
	old := f.mode.Swap(m)
	switch {
	case m == sesDown && old != sesDown:
		f.mu.Lock()
		srv := f.srv
		f.srv = nil
		f.mu.Unlock()
		_ = srv.Close() // closes the listener and every connection
	case m != sesDown && old == sesDown:
		var ln net.Listener
		var err error
		for range 50 {
			if ln, err = net.Listen("tcp", f.addr); err == nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("fake SES cannot listen on %s again: %v", f.addr, err)
		}
		f.serve(ln)
	}
}

func (f *outageSES) snapshot() (map[string][]string, map[int32]int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	acc := make(map[string][]string, len(f.accepted))
	for k, v := range f.accepted {
		acc[k] = slices.Clone(v)
	}
	ans := map[int32]int{}
	for k, v := range f.answered {
		ans[k] = v
	}
	return acc, ans
}

// sesOutage is one minute, as the fault is specified; GATEHOUSE_FAULT_SES_OUTAGE shortens
// it for local iteration only.
func sesOutage(t *testing.T) time.Duration {
	t.Helper()
	v := os.Getenv("GATEHOUSE_FAULT_SES_OUTAGE")
	if v == "" {
		return time.Minute
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 3*time.Second {
		t.Fatalf("GATEHOUSE_FAULT_SES_OUTAGE: a duration of at least 3s, not %q", v)
	}
	t.Logf("outage shortened to %v by GATEHOUSE_FAULT_SES_OUTAGE (the fault is specified with 1m)", d)
	return d
}

// TestFaultSESOutage: two nodes send mail through SES (the real AWS SDK, pointed at a fake
// endpoint). Under a sign-up load on both, SES answers 500s, then throttles, then refuses
// connections, for one minute in all. Sign-up keeps answering 202; once SES is back every
// acknowledged sign-up's verification mail is accepted exactly once, within a bound, and
// no outbox row is left pending or failed.
func TestFaultSESOutage(t *testing.T) {
	faultsOnly(t)
	// The longest wait for delayed mail after SES comes back. With the retry policy of
	// internal/app (10 s doubling, +20 % jitter) a mail failing through a 60 s outage is
	// retried at most ~50 s after it ends, plus River's 5 s scheduler tick.
	const drainBound = 2 * time.Minute
	outage := sesOutage(t)
	ctx := context.Background()
	bin := buildBinary(t)
	d := testutil.FreshDB(t)
	ten, err := tenant.NewService(d.Store, time.Now).Create(ctx, tenant.CreateInput{Slug: testutil.UniqueSlug("sesfault"), Name: "SES Fault"})
	if err != nil {
		t.Fatal(err)
	}
	host := ten.Tenant.Slug + ".localhost"
	ses := newOutageSES(t)
	env := []string{"GATEHOUSE_MAIL=ses", "GATEHOUSE_TRUSTED_PROXIES=127.0.0.1",
		"AWS_ENDPOINT_URL_SESV2=http://" + ses.addr, "AWS_REGION=eu-west-1",
		"AWS_ACCESS_KEY_ID=AKIDTESTTESTTEST", "AWS_SECRET_ACCESS_KEY=secret", "AWS_SESSION_TOKEN=",
		"AWS_PROFILE=", "AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent",
		"AWS_EC2_METADATA_DISABLED=true"}
	nodes := []*node{startServe(t, bin, "A", d.AppURL, env...), startServe(t, bin, "B", d.AppURL, env...)}

	// The load: distinct addresses from distinct client addresses (trusted X-Forwarded-For,
	// the per-address sign-up limit is not what this test measures), alternating nodes.
	type result struct {
		email   string
		phase   int32 // 0 before the outage, 1 during
		code    int
		err     error
		latency time.Duration
	}
	var phase atomic.Int32
	var mu sync.Mutex
	var results []result
	client := &http.Client{Timeout: 20 * time.Second}
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
				n := nodes[i%2]
				email := fmt.Sprintf("ses-%d-%d@example.com", w, i)
				req, _ := http.NewRequest("POST", fmt.Sprintf("http://127.0.0.1:%d/api/v1/signup", n.port),
					strings.NewReader(fmt.Sprintf(`{"email":%q,"password":"purple monkey dishwasher"}`, email)))
				req.Host = host
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Forwarded-For", fmt.Sprintf("10.%d.%d.%d", w, i/250%250, i%250+1))
				r := result{email: email, phase: phase.Load()}
				start := time.Now()
				resp, err := client.Do(req)
				r.latency, r.err = time.Since(start), err
				if err == nil {
					r.code = resp.StatusCode
					resp.Body.Close()
				}
				mu.Lock()
				results = append(results, r)
				mu.Unlock()
			}
		})
	}
	var once sync.Once
	stopLoad := func() { once.Do(func() { close(stop) }); wg.Wait() }
	defer stopLoad() // on an early t.Fatal too
	time.Sleep(3 * time.Second)

	outageStart := time.Now()
	phase.Store(1)
	ses.setMode(t, ses500)
	time.Sleep(outage / 3)
	ses.setMode(t, sesThrottle)
	time.Sleep(outage / 3)
	ses.setMode(t, sesDown)
	time.Sleep(outage - time.Since(outageStart))
	// How the failed attempts ended, as the outbox recorded them (last_error is cleared
	// once a row is sent, so it is read now). Within a call the SDK retries until its
	// retry quota runs out; after that it reports the quota along with the cause.
	var errKinds string
	var refusedRows, pendingAtEnd int
	if err := d.Admin.QueryRow(ctx, `SELECT format('InternalFailure %s, throttled %s, connection refused %s, other %s (%s of them also out of SDK retry quota)',
		count(*) FILTER (WHERE last_error LIKE '%InternalFailure%'), count(*) FILTER (WHERE last_error LIKE '%TooManyRequests%'),
		count(*) FILTER (WHERE last_error LIKE '%connection refused%'),
		count(*) FILTER (WHERE last_error IS NOT NULL AND last_error NOT SIMILAR TO '%(InternalFailure|TooManyRequests|connection refused)%'),
		count(*) FILTER (WHERE last_error LIKE '%retry quota exceeded%')),
		count(*) FILTER (WHERE last_error LIKE '%connection refused%'), count(*)
		FROM mail_outbox WHERE tenant_id = $1 AND status = 'pending'`, ten.Tenant.ID).Scan(&errKinds, &refusedRows, &pendingAtEnd); err != nil {
		t.Fatal(err)
	}
	stopLoad()
	ses.setMode(t, sesUp)
	restored := time.Now()
	outageLen := restored.Sub(outageStart)

	// Drain: every outbox row sent and no mail job left to run (so no late duplicate can
	// still arrive), within drainBound of SES coming back.
	var drained time.Duration
	for {
		var pending, jobs int
		if err := d.Admin.QueryRow(ctx, `SELECT count(*) FROM mail_outbox WHERE tenant_id = $1 AND status = 'pending'`, ten.Tenant.ID).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if err := d.Admin.QueryRow(ctx, `SELECT count(*) FROM river_job WHERE kind = 'mail.send' AND state NOT IN ('completed', 'cancelled', 'discarded')`).Scan(&jobs); err != nil {
			t.Fatal(err)
		}
		if pending == 0 && jobs == 0 {
			drained = time.Since(restored)
			break
		}
		if drained = time.Since(restored); drained > drainBound {
			t.Errorf("%d outbox rows pending and %d mail jobs unfinished %v after SES came back (bound %v)", pending, jobs, time.Since(restored).Round(time.Second), drainBound)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}

	// What each acknowledged sign-up got.
	accepted, answered := ses.snapshot()
	attempted := map[string]bool{}
	acked := map[string]bool{}
	var ackedBefore, ackedDuring, notAcked int
	var latBefore, latDuring []time.Duration
	for _, r := range results {
		attempted[r.email] = true
		if r.code != 202 {
			notAcked++
			if notAcked <= 5 {
				t.Errorf("sign-up of %s (phase %d): %d %v; sign-up must not depend on the mail provider", r.email, r.phase, r.code, r.err)
			}
			continue
		}
		acked[r.email] = true
		if r.phase == 0 {
			ackedBefore++
			latBefore = append(latBefore, r.latency)
		} else {
			ackedDuring++
			latDuring = append(latDuring, r.latency)
		}
	}
	emails, duplicates, duplicated, lost, unexpected, badBody := 0, 0, 0, 0, 0, 0
	for to, bodies := range accepted {
		emails += len(bodies)
		if len(bodies) > 1 {
			duplicated++
			duplicates += len(bodies) - 1
			if duplicated <= 5 {
				t.Logf("duplicate: %s accepted %d times", to, len(bodies))
			}
		}
		if !attempted[to] {
			unexpected++
			t.Logf("mail to %s, which nobody signed up with", to)
		}
		for _, b := range bodies {
			if !strings.Contains(b, "/verify?token=") {
				badBody++
			}
		}
	}
	for email := range acked {
		if len(accepted[email]) == 0 {
			lost++
			if lost <= 5 {
				t.Logf("lost: %s acknowledged with 202, no mail accepted", email)
			}
		}
	}
	var sent, pending, failed, retried, maxAttempts int
	if err := d.Admin.QueryRow(ctx, `SELECT count(*) FILTER (WHERE status = 'sent'), count(*) FILTER (WHERE status = 'pending'),
		count(*) FILTER (WHERE status = 'failed'), count(*) FILTER (WHERE attempts > 1), coalesce(max(attempts), 0)
		FROM mail_outbox WHERE tenant_id = $1`, ten.Tenant.ID).Scan(&sent, &pending, &failed, &retried, &maxAttempts); err != nil {
		t.Fatal(err)
	}
	t.Logf("outage %v: SES answered %d calls with 500, %d with throttling, then refused connections; pending rows' last errors at its end: %s",
		outageLen.Round(time.Millisecond), answered[ses500], answered[sesThrottle]+answered[sesDown], errKinds)
	t.Logf("sign-ups: %d acknowledged before the outage (median %v, max %v), %d during (median %v, max %v), %d not acknowledged",
		ackedBefore, median(latBefore), maxDuration(latBefore), ackedDuring, median(latDuring), maxDuration(latDuring), notAcked)
	t.Logf("outbox: %d rows pending near the outage's end; all delivered %v after SES came back; %d sent, %d pending, %d failed; %d rows needed more than one attempt, at most %d attempts",
		pendingAtEnd, drained.Round(time.Millisecond), sent, pending, failed, retried, maxAttempts)
	t.Logf("emails accepted %d to %d addresses; duplicates %d (%d addresses); lost %d; unexpected %d; without a verification link %d",
		emails, len(accepted), duplicates, duplicated, lost, unexpected, badBody)

	if ackedBefore == 0 || ackedDuring == 0 {
		t.Errorf("the load did not run on both sides of the outage (%d before, %d during)", ackedBefore, ackedDuring)
	}
	if pendingAtEnd <= 0 || answered[ses500] == 0 || answered[sesThrottle]+answered[sesDown] == 0 || refusedRows == 0 {
		t.Errorf("the outage was not exercised (%d rows pending at its end, %d last refused a connection; failures answered by mode %v)",
			pendingAtEnd, refusedRows, answered)
	}
	if duplicates != 0 || lost != 0 {
		t.Errorf("%d duplicate emails, %d acknowledged sign-ups without an email", duplicates, lost)
	}
	if unexpected != 0 || badBody != 0 {
		t.Errorf("%d emails to addresses nobody signed up with, %d without the verification link", unexpected, badBody)
	}
	if pending != 0 || failed != 0 {
		t.Errorf("outbox rows left: %d pending, %d failed", pending, failed)
	}
	if sent < len(acked) {
		t.Errorf("%d outbox rows sent for %d acknowledged sign-ups", sent, len(acked))
	}
	if t.Failed() {
		for _, n := range nodes {
			out := n.out.String()
			if len(out) > 4000 {
				out = "…" + out[len(out)-4000:]
			}
			t.Logf("%s output (tail):\n%s", n.name, out)
		}
	}
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2].Round(time.Millisecond)
}

func maxDuration(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return slices.Max(ds).Round(time.Millisecond)
}
