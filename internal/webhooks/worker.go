package webhooks

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/events"
	"github.com/gatehouse-id/gatehouse/internal/mail"
	"github.com/gatehouse-id/gatehouse/internal/outbound"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
)

const (
	// Queue is the River queue of deliveries (the trigger of migration 000018 names it).
	Queue = "webhooks"
	// MaxAttempts bounds the attempts of one delivery (the trigger sets it on the job).
	MaxAttempts = 12
	// RequestTimeout bounds one attempt's request.
	RequestTimeout = 10 * time.Second
	// FailingFor is how long an endpoint may fail without a success before it is disabled.
	FailingFor = 72 * time.Hour
	// responseExcerpt is how much of an answer the deliveries log keeps.
	responseExcerpt = 1024
)

// Schedule is the wait before each retry, in units (a second in production): 5 s, 30 s,
// 2 min, 10 min, 1 h, then every 4 hours six times — 25 hours in all, then failed.
var Schedule = []int{5, 30, 120, 600, 3600, 14400, 14400, 14400, 14400, 14400, 14400}

// DeliverArgs is one delivery attempt series. The migration's trigger inserts these jobs.
type DeliverArgs struct {
	TenantID   uuid.UUID `json:"tenant_id"`
	DeliveryID uuid.UUID `json:"delivery_id"`
}

// Kind names the job.
func (DeliverArgs) Kind() string { return "webhook.deliver" }

// InsertOpts puts deliveries on their queue.
func (DeliverArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: Queue, MaxAttempts: MaxAttempts}
}

// WorkerConfig tunes the worker.
type WorkerConfig struct {
	// Unit scales Schedule (default a second; tests shorten it).
	Unit time.Duration
	// PerEndpoint caps the concurrent attempts to one endpoint on this node (default 4).
	PerEndpoint int
}

// Worker makes delivery attempts.
type Worker struct {
	river.WorkerDefaults[DeliverArgs]
	s       *Service
	client  *http.Client
	cfg     WorkerConfig
	results metric.Int64Counter

	mu     sync.Mutex
	active map[uuid.UUID]int
}

// NewWorker returns the worker and registers its metrics (gatehouse_webhook_deliveries_total
// by result; gatehouse_webhook_backlog, the deliveries waiting for an attempt).
func (s *Service) NewWorker(cfg WorkerConfig, mp metric.MeterProvider) (*Worker, error) {
	if cfg.Unit == 0 {
		cfg.Unit = time.Second
	}
	if cfg.PerEndpoint <= 0 {
		cfg.PerEndpoint = 4
	}
	c := s.out.HTTPClient()
	c.Timeout = RequestTimeout
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	m := mp.Meter("gatehouse/webhooks")
	w := &Worker{s: s, client: c, cfg: cfg, active: map[uuid.UUID]int{}}
	var err error
	if w.results, err = m.Int64Counter("gatehouse.webhook.deliveries",
		metric.WithDescription("Webhook delivery attempts by result: delivered, retry, failed, gone, skipped, held")); err != nil {
		return nil, err
	}
	backlog, err := m.Int64ObservableGauge("gatehouse.webhook.backlog",
		metric.WithDescription("Webhook deliveries waiting for an attempt (every tenant)"))
	if err != nil {
		return nil, err
	}
	if _, err := m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		var n int64
		// River's job table is global and holds ids only: one count for every tenant.
		if err := s.store.Pool().QueryRow(ctx, `SELECT count(*) FROM river_job WHERE queue = $1
			AND state IN ('available', 'scheduled', 'retryable', 'running')`, Queue).Scan(&n); err != nil {
			return nil // the gauge skips a beat rather than failing the scrape
		}
		o.ObserveInt64(backlog, n)
		return nil
	}, backlog); err != nil {
		return nil, err
	}
	return w, nil
}

// NextRetry follows Schedule.
func (w *Worker) NextRetry(job *river.Job[DeliverArgs]) time.Time {
	i := min(max(job.Attempt-1, 0), len(Schedule)-1)
	return time.Now().Add(time.Duration(Schedule[i]) * w.cfg.Unit)
}

// Timeout bounds one attempt (the request's bound plus the bookkeeping).
func (w *Worker) Timeout(*river.Job[DeliverArgs]) time.Duration {
	return RequestTimeout + 10*time.Second
}

func (w *Worker) acquire(id uuid.UUID) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.active[id] >= w.cfg.PerEndpoint {
		return false
	}
	w.active[id]++
	return true
}

func (w *Worker) release(id uuid.UUID) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.active[id]--; w.active[id] <= 0 {
		delete(w.active, id)
	}
}

// Payload is the body of every delivery (docs/events.md).
type Payload struct {
	ID         uuid.UUID       `json:"id"`
	Type       string          `json:"type"`
	Tenant     PayloadTenant   `json:"tenant"`
	OccurredAt time.Time       `json:"occurred_at"`
	Data       json.RawMessage `json:"data"`
}

// PayloadTenant labels the event with its tenant.
type PayloadTenant struct {
	ID   uuid.UUID `json:"id"`
	Slug string    `json:"slug"`
}

type attempt struct {
	work     sqlcgen.GetDeliveryWorkRow
	endpoint row
	tenant   uuid.UUID
	slug     string
	keys     [][]byte
}

// Work makes one attempt: 2xx delivered; 410 disables the endpoint; anything else is
// retried on Schedule, then the delivery is failed. A delivery of a user's event waits
// (held, no job) while an earlier delivery of the same endpoint and user is pending.
func (w *Worker) Work(ctx context.Context, job *river.Job[DeliverArgs]) error {
	a := job.Args
	var at attempt
	skip := ""
	err := w.s.store.InTenant(ctx, a.TenantID, func(q *sqlcgen.Queries) error {
		skip = ""
		d, err := q.GetDeliveryWork(ctx, a.DeliveryID)
		if errors.Is(err, store.ErrNotFound) {
			skip = "gone" // erased with its event (retention, a purge) or its endpoint
			return nil
		}
		if err != nil {
			return err
		}
		if d.State != "pending" {
			skip = "done"
			return nil
		}
		o := Owner{TenantID: a.TenantID}
		if d.Platform {
			o = Platform
		}
		ep, err := get(ctx, q, o, d.EndpointID)
		if errors.Is(err, ErrNotFound) {
			skip = "endpoint deleted"
			return q.RecordDeliveryAttempt(ctx, sqlcgen.RecordDeliveryAttemptParams{ID: d.ID, State: "failed", LastResponse: ptr("the endpoint was deleted")})
		}
		if err != nil {
			return err
		}
		if !ep.Enabled {
			skip = "endpoint disabled"
			return q.RecordDeliveryAttempt(ctx, sqlcgen.RecordDeliveryAttemptParams{ID: d.ID, State: "failed", LastResponse: ptr("the endpoint is disabled")})
		}
		if d.UserID != nil {
			// In order per (endpoint, user): park behind an earlier pending delivery; the
			// trigger of migration 000023 releases this one when that one ends.
			if err := q.LockDeliveryOrder(ctx, sqlcgen.LockDeliveryOrderParams{EndpointID: d.EndpointID, UserID: *d.UserID}); err != nil {
				return err
			}
			n, err := q.HoldBehindEarlier(ctx, d.ID)
			if err != nil {
				return err
			}
			if n > 0 {
				skip = "held"
				return nil
			}
		}
		t, err := q.GetTenantByID(ctx, a.TenantID)
		if err != nil {
			return err
		}
		at = attempt{work: d, endpoint: ep, tenant: a.TenantID, slug: t.Slug}
		return nil
	}, store.Idempotent())
	if store.Unavailable(err) {
		// PostgreSQL is away (a restart, a failover): wait for it without spending an
		// attempt, so an outage of the database does not push deliveries down the schedule.
		w.s.logger.WarnContext(ctx, "webhooks: database unavailable; the delivery waits", "delivery_id", a.DeliveryID, "err", err)
		return river.JobSnooze(time.Duration(Schedule[0]) * w.cfg.Unit)
	}
	if err != nil {
		return fmt.Errorf("webhook delivery: %w", err)
	}
	if skip == "held" {
		w.results.Add(ctx, 1, metric.WithAttributes(attribute.String("result", "held")))
		return nil
	}
	if skip != "" {
		w.results.Add(ctx, 1, metric.WithAttributes(attribute.String("result", "skipped")))
		return nil
	}
	if at.keys, err = w.keys(at.endpoint); err != nil {
		return fmt.Errorf("webhook delivery: %w", err)
	}
	if !w.acquire(at.endpoint.ID) {
		return river.JobSnooze(time.Second)
	}
	status, excerpt, latency, sendErr := w.send(ctx, at)
	w.release(at.endpoint.ID)
	return w.record(ctx, job, at, status, excerpt, latency, sendErr)
}

// keys are the HMAC keys that sign: the current secret, and the previous one during the
// rotation overlap.
func (w *Worker) keys(ep row) ([][]byte, error) {
	o := Owner{TenantID: ep.tenantID}
	plain, err := w.s.box.Open(ep.secretKeyID, ep.secretSealed, secretAAD(o))
	if err != nil {
		return nil, fmt.Errorf("open webhook secret: %w", err)
	}
	k, err := secretKey(string(plain))
	if err != nil {
		return nil, err
	}
	keys := [][]byte{k}
	if ep.previousKeyID != nil && ep.PreviousSecretUntil != nil && w.s.now().Before(*ep.PreviousSecretUntil) {
		prev, err := w.s.box.Open(*ep.previousKeyID, ep.previousSealed, secretAAD(o))
		if err != nil {
			return nil, fmt.Errorf("open previous webhook secret: %w", err)
		}
		if pk, err := secretKey(string(prev)); err == nil {
			keys = append(keys, pk)
		}
	}
	return keys, nil
}

func (w *Worker) send(ctx context.Context, at attempt) (status int, excerpt string, latency time.Duration, err error) {
	body, err := json.Marshal(Payload{ID: at.work.EventID, Type: at.work.Type, Tenant: PayloadTenant{ID: at.tenant, Slug: at.slug},
		OccurredAt: at.work.OccurredAt.UTC(), Data: at.work.Data})
	if err != nil {
		return 0, "", 0, err
	}
	u, err := w.s.out.CheckURL(at.endpoint.URL, "webhook URLs")
	if err != nil {
		return 0, outbound.Reason(err), 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return 0, "", 0, err
	}
	ts := w.s.now()
	id := at.work.EventID.String()
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Gatehouse-Webhooks/1")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
	req.Header.Set("webhook-signature", Signature(id, ts, body, at.keys...))
	start := time.Now()
	resp, err := w.client.Do(req)
	latency = time.Since(start)
	if err != nil {
		return 0, outbound.Reason(err), latency, err
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, responseExcerpt))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		// Never followed, whatever the switch: the Location could name any address.
		return resp.StatusCode, "the endpoint answered " + strconv.Itoa(resp.StatusCode) + ", a redirect: redirects are not followed", latency, nil
	}
	return resp.StatusCode, clipUTF8(head), latency, nil
}

func clipUTF8(b []byte) string {
	for len(b) > 0 && !utf8.Valid(b) {
		b = b[:len(b)-1]
	}
	return string(bytes.ToValidUTF8(b, nil))
}

func ptr[T any](v T) *T { return &v }

// record writes the attempt's outcome (retried across a database restart for a minute,
// like the mail outbox: the updates are idempotent) and tells River what comes next. When
// the outcome cannot be written, the job is snoozed and the delivery sent again.
func (w *Worker) record(ctx context.Context, job *river.Job[DeliverArgs], at attempt, status int, excerpt string,
	latency time.Duration, sendErr error) error {
	a := job.Args
	ms := int32(latency.Milliseconds())
	var st *int32
	if status != 0 {
		s := int32(status)
		st = &s
	}
	p := sqlcgen.RecordDeliveryAttemptParams{ID: a.DeliveryID, LastStatus: st, LastLatencyMs: &ms, LastResponse: &excerpt}
	result := ""
	var retErr error
	disable := ""
	switch {
	case sendErr == nil && status >= 200 && status <= 299:
		p.State, result = "delivered", "delivered"
	case sendErr == nil && status == http.StatusGone:
		p.State, result, disable = "failed", "gone", "gone"
	case job.Attempt >= job.MaxAttempts:
		p.State, result = "failed", "failed"
		retErr = river.JobCancel(fmt.Errorf("webhook delivery failed for good: %s", describe(status, sendErr)))
	default:
		p.State, result = "pending", "retry"
		next := w.NextRetry(job)
		p.NextAttemptAt = &next
		retErr = fmt.Errorf("webhook delivery: %s", describe(status, sendErr))
	}
	o := Owner{TenantID: a.TenantID}
	if at.endpoint.Platform {
		o = Platform
	}
	err := w.retrying(ctx, a.TenantID, func(q *sqlcgen.Queries) error {
		if err := q.RecordDeliveryAttempt(ctx, p); err != nil {
			return err
		}
		switch result {
		case "delivered":
			if err := endpointSucceeded(ctx, q, o, at.endpoint.ID); err != nil {
				return err
			}
			if at.work.Type == events.UserDeleted {
				return q.AcknowledgeDeletion(ctx, sqlcgen.AcknowledgeDeletionParams{EventID: &at.work.EventID, EndpointID: at.endpoint.ID,
					Platform: at.endpoint.Platform, URL: at.endpoint.URL})
			}
			return nil
		case "gone":
			return nil
		}
		since, err := endpointFailed(ctx, q, o, at.endpoint.ID)
		if err != nil {
			return err
		}
		if w.s.now().Sub(since) >= FailingFor {
			disable = "failing"
		}
		return nil
	})
	if disable != "" {
		w.disable(ctx, a.TenantID, o, at.endpoint, disable)
	}
	w.results.Add(ctx, 1, metric.WithAttributes(attribute.String("result", result)))
	if err != nil {
		// The database stayed away longer than the bookkeeping retries: the delivery is
		// still pending in the table. Finishing the job now would leave it pending with no
		// job (and, in order per user, hold back the user's later deliveries for good), so
		// the job comes back — not counted as an attempt — and sends again; the receiver
		// deduplicates by webhook-id.
		w.s.logger.ErrorContext(ctx, "webhooks: recording the outcome failed; the delivery will be sent again", "delivery_id", a.DeliveryID, "err", err)
		return river.JobSnooze(time.Duration(Schedule[0]) * w.cfg.Unit)
	}
	return retErr
}

func describe(status int, err error) string {
	if err != nil {
		return outbound.Reason(err)
	}
	return "the endpoint answered " + strconv.Itoa(status)
}

// retrying runs f in the tenant until it commits, for a minute (60 units of the schedule,
// at least 2 s, in tests that shorten the unit).
func (w *Worker) retrying(ctx context.Context, tenantID uuid.UUID, f func(q *sqlcgen.Queries) error) error {
	rctx := context.WithoutCancel(ctx)
	wait := 100 * time.Millisecond
	for deadline := time.Now().Add(max(60*w.cfg.Unit, 2*time.Second)); ; wait = min(2*wait, 5*time.Second) {
		err := w.s.store.InTenant(rctx, tenantID, f, store.Idempotent())
		if err == nil || time.Now().Add(wait).After(deadline) {
			return err
		}
		time.Sleep(wait)
	}
}

func endpointSucceeded(ctx context.Context, q *sqlcgen.Queries, o Owner, id uuid.UUID) error {
	if o.platform() {
		return q.PlatformEndpointSucceeded(ctx, id)
	}
	return q.EndpointSucceeded(ctx, id)
}

func endpointFailed(ctx context.Context, q *sqlcgen.Queries, o Owner, id uuid.UUID) (time.Time, error) {
	if o.platform() {
		return q.PlatformEndpointFailed(ctx, id)
	}
	return q.EndpointFailed(ctx, id)
}

// disable turns an endpoint off (410 Gone, or failing for FailingFor). A tenant's is audited
// and its owners are mailed in the same transaction; an operator's is reported in the log.
func (w *Worker) disable(ctx context.Context, tenantID uuid.UUID, o Owner, ep row, reason string) {
	disabled := false
	rctx := context.WithoutCancel(ctx)
	err := w.s.store.InTenantTx(rctx, tenantID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		disabled = false
		if o.platform() {
			n, err := q.DisablePlatformWebhookEndpoint(rctx, sqlcgen.DisablePlatformWebhookEndpointParams{ID: ep.ID, Reason: &reason})
			disabled = n > 0
			return err
		}
		n, err := q.DisableWebhookEndpoint(rctx, sqlcgen.DisableWebhookEndpointParams{ID: ep.ID, Reason: &reason})
		if err != nil || n == 0 {
			return err
		}
		disabled = true
		if err := audit.Record(rctx, q, audit.Who{ActorLabel: "system"}, audit.Event{Action: audit.WebhookDisabled, SubjectLabel: ep.URL,
			Details: map[string]any{"webhook_id": ep.ID, "reason": reason}}); err != nil {
			return err
		}
		t, err := q.GetTenantByID(rctx, tenantID)
		if err != nil {
			return err
		}
		owners, err := q.ListOwners(rctx)
		if err != nil {
			return err
		}
		why := "it answered 410 Gone"
		if reason == "failing" {
			why = "its deliveries have failed for three days"
		}
		name := t.Name
		if name == "" {
			name = t.Slug
		}
		for _, u := range owners {
			uid := u.ID
			if err := w.s.mail.Enqueue(rctx, tx, q, mail.Mail{TenantID: tenantID, UserID: &uid, To: u.Email, Template: mail.TplWebhookDisabled,
				Data: mail.Data{Tenant: name, Email: u.Email, Event: "A webhook endpoint was disabled",
					Detail: ep.URL + " was turned off because " + why + ".", Link: w.s.urls.Link(t.Slug, "/admin/webhooks", nil)}}); err != nil {
				return err
			}
		}
		return nil
	}, store.Idempotent())
	if err != nil {
		w.s.logger.ErrorContext(ctx, "webhooks: disabling an endpoint failed", "webhook_id", ep.ID, "err", err)
		return
	}
	if !disabled {
		return
	}
	if o.platform() {
		w.s.logger.ErrorContext(ctx, "operator webhook endpoint disabled", "webhook_id", ep.ID, "reason", reason)
		return
	}
	w.s.logger.WarnContext(ctx, "webhook endpoint disabled", "tenant_id", tenantID, "webhook_id", ep.ID, "reason", reason)
}
