package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// WebhookResult is what the webhooks run measured.
type WebhookResult struct {
	SignupsWithout []float64 `json:"signup_rps_without_endpoint"` // before and after
	SignupsWith    float64   `json:"signup_rps_with_endpoint"`
	Ratio          float64   `json:"ratio_with_vs_without"`
	Events         int       `json:"events"`       // sign-ups accepted (202) while the endpoints were subscribed
	Acknowledged   int       `json:"acknowledged"` // distinct events the receiver verified and acknowledged
	EventsPerSec   float64   `json:"events_per_second"`
	DrainSeconds   float64   `json:"drain_seconds"` // from the end of the sign-ups to the last acknowledgement
	LagP50ms       float64   `json:"lag_p50_ms"`    // acknowledgement time − occurred_at
	LagP99ms       float64   `json:"lag_p99_ms"`
	Repeats        int       `json:"repeats"`
	Refused        int       `json:"refused"`
	// The delivery pipeline without the hash: test events (one short transaction each)
	// sent as fast as the clients can, and how fast their deliveries were acknowledged.
	TestSentPerSec  float64 `json:"test_events_sent_per_second"`
	TestAckedPerSec float64 `json:"test_events_acknowledged_per_second"`
	TestLagP50ms    float64 `json:"test_lag_p50_ms"`
	TestLagP99ms    float64 `json:"test_lag_p99_ms"`
}

// webhooksPhase measures events per second from sign-ups to acknowledged deliveries, and
// what recording the event and its delivery costs the sign-up: sign-up alone (no endpoint),
// then with every load tenant's endpoint subscribed to user.created (at a receiver in this
// process that verifies the signatures), then alone again, so that a drift of the shared
// machine shows. The server must allow loopback endpoints (GATEHOUSE_OUTBOUND_ALLOW_PRIVATE,
// on in `gatehouse dev`).
func (f runFlags) webhooksPhase(ctx context.Context, w *workload, rep *Report, logf func(string, ...any)) error {
	recv, err := startHookReceiver()
	if err != nil {
		return err
	}
	defer recv.close()
	// accepted counts every sign-up answered 202, also those that finish after a run's
	// window (not in its figures, but their events are delivered all the same).
	var accepted atomic.Int64
	signup := func(name string) PhaseResult {
		p := runOps(ctx, name, []op{{name: "signup", weight: 1, fn: func(_ context.Context, r *rand.Rand) error {
			slug := w.randomTenant(r)
			_, err := w.g.call(call{method: "POST", slug: slug, path: "/api/v1/signup",
				json: map[string]string{"email": w.uniqueEmail(slug), "password": loadPassword}}, 202)
			if err == nil {
				accepted.Add(1)
			}
			return err
		}}}, f.conc, f.dur)
		rep.Phases = append(rep.Phases, p)
		printPhase(logWriter{logf}, p)
		return p
	}
	before := signup("sign-up, no endpoint")

	logf("webhooks: an endpoint subscribed to user.created on each of %d tenants, at a verifying receiver on %s", len(w.tenants), recv.ln.Addr())
	admins := map[string]*user{}
	endpoints := map[string]string{}
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	jobs := make(chan string)
	for range 8 {
		wg.Go(func() {
			for slug := range jobs {
				id, admin, err := w.subscribe(ctx, recv, slug)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("tenant %s: %w", slug, err)
				}
				admins[slug], endpoints[slug] = admin, id
				mu.Unlock()
			}
		})
	}
	for _, slug := range w.tenants {
		jobs <- slug
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("creating the load endpoints: %w", firstErr)
	}

	accepted.Store(0)
	start := time.Now()
	with := signup("sign-up, endpoint subscribed")
	ended := time.Now()
	n := int(accepted.Load())
	deadline := ended.Add(2 * time.Minute)
	for {
		got, _, _, _, _, _ := recv.stats()
		if got >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(time.Second) // a repeat would come now
	got, last, p50, p99, dupes, bad := recv.stats()

	// The pipeline's own pace: test events, no password hash in the way.
	slugs := make([]string, 0, len(endpoints))
	for slug := range endpoints {
		slugs = append(slugs, slug)
	}
	var sent atomic.Int64
	tstart := time.Now()
	tp := runOps(ctx, "webhook test events", []op{{name: "webhook_test", weight: 1, fn: func(_ context.Context, r *rand.Rand) error {
		slug := slugs[r.IntN(len(slugs))]
		_, err := w.g.call(call{method: "POST", slug: slug, path: "/api/v1/admin/webhooks/" + endpoints[slug] + "/test",
			bearer: *admins[slug].token.Load()}, 202)
		if err == nil {
			sent.Add(1)
		}
		return err
	}}}, f.conc, f.dur/2)
	rep.Phases = append(rep.Phases, tp)
	printPhase(logWriter{logf}, tp)
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if n, _, _, _, _, _ := recv.stats(); n >= got+int(sent.Load()) || time.Now().After(deadline) {
			break
		}
	}
	tn, tlast, tp50, tp99, _, _ := recv.statsFrom(got)
	for slug, id := range endpoints {
		if _, err := w.g.call(call{method: "DELETE", slug: slug, path: "/api/v1/admin/webhooks/" + id, bearer: *admins[slug].token.Load()}, 204); err != nil {
			return fmt.Errorf("deleting the load endpoint of %s: %w", slug, err)
		}
	}
	after := signup("sign-up, no endpoint (again)")

	without := (before.op("signup").RPS + after.op("signup").RPS) / 2
	res := &WebhookResult{SignupsWithout: []float64{before.op("signup").RPS, after.op("signup").RPS}, SignupsWith: with.op("signup").RPS,
		Events: n, Acknowledged: got, Repeats: dupes, Refused: bad, LagP50ms: ms(p50), LagP99ms: ms(p99)}
	if without > 0 {
		res.Ratio = res.SignupsWith / without
	}
	if got > 0 {
		res.EventsPerSec = float64(got) / last.Sub(start).Seconds()
		res.DrainSeconds = max(0, last.Sub(ended).Seconds())
	}
	if tn > 0 {
		res.TestSentPerSec, res.TestAckedPerSec = tp.op("webhook_test").RPS, float64(tn)/tlast.Sub(tstart).Seconds()
		res.TestLagP50ms, res.TestLagP99ms = ms(tp50), ms(tp99)
	}
	rep.Webhooks = res
	logf("  test events: %d sent (%.1f/s), %d acknowledged, %.1f/s from the send to acknowledgement; lag p50 %.0f ms, p99 %.0f ms",
		sent.Load(), res.TestSentPerSec, tn, res.TestAckedPerSec, res.TestLagP50ms, res.TestLagP99ms)
	logf("  %d sign-ups accepted while subscribed (%d within the window), %d acknowledged (verified), %.1f events/s from sign-up to acknowledgement, the last %.1f s after the sign-ups ended; lag p50 %.0f ms, p99 %.0f ms; %d repeats, %d refused",
		n, with.op("signup").Requests, got, res.EventsPerSec, res.DrainSeconds, res.LagP50ms, res.LagP99ms, dupes, bad)
	rep.Ratios = append(rep.Ratios, Ratio{Name: "sign-up with a webhook endpoint vs without", Product: res.SignupsWith, Limit: without,
		Ratio: res.Ratio, Target: "none (the event and its delivery row are written in the sign-up's transaction)", Unit: "req/s"},
		Ratio{Name: "acknowledged deliveries vs sign-ups", Product: res.EventsPerSec, Limit: res.SignupsWith,
			Ratio: res.EventsPerSec / max(res.SignupsWith, 1e-9), Target: "≈ 1 (deliveries keep up)", Unit: "events/s"})
	rep.Ratios = append(rep.Ratios, Ratio{Name: "acknowledged test deliveries vs test events sent", Product: res.TestAckedPerSec,
		Limit: res.TestSentPerSec, Ratio: res.TestAckedPerSec / max(res.TestSentPerSec, 1e-9), Target: "≈ 1 (deliveries keep up)", Unit: "events/s"})
	if _, _, _, _, _, bad = recv.stats(); bad > 0 {
		return fmt.Errorf("webhooks: %d deliveries failed signature verification", bad)
	}
	if tn < int(sent.Load()) {
		return fmt.Errorf("webhooks: %d of %d test events acknowledged within 2 minutes", tn, sent.Load())
	}
	if got < n {
		return fmt.Errorf("webhooks: %d of %d events acknowledged within 2 minutes of the sign-ups' end", got, n)
	}
	return nil
}

// subscribe signs slug's admin in and creates its endpoint for user.created at recv.
func (w *workload) subscribe(ctx context.Context, recv *hookReceiver, slug string) (string, *user, error) {
	admin, err := w.adminLogin(ctx, slug)
	if err != nil {
		return "", nil, err
	}
	r, err := w.g.call(call{method: "POST", slug: slug, path: "/api/v1/admin/webhooks", bearer: *admin.token.Load(),
		json: map[string]any{"url": recv.url(slug), "event_types": []string{"user.created"}, "description": "gatehouse-load"}}, 201)
	if err != nil {
		return "", nil, err
	}
	var out struct {
		Webhook struct {
			ID string `json:"id"`
		} `json:"webhook"`
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal(r.body, &out); err != nil || out.Webhook.ID == "" {
		return "", nil, errors.New("webhook creation answer without an id")
	}
	return out.Webhook.ID, admin, recv.trust(slug, out.Secret)
}
