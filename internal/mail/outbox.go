package mail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
)

// SendArgs is the River job that delivers one outbox row. It carries ids only: the
// content stays in the tenant-scoped outbox, under RLS, and goes with the tenant or user.
type SendArgs struct {
	TenantID uuid.UUID `json:"tenant_id"`
	OutboxID uuid.UUID `json:"outbox_id"`
}

// Kind names the job.
func (SendArgs) Kind() string { return "mail.send" }

// Queue is the River queue of mail jobs.
const Queue = "mail"

// InsertOpts puts mail jobs on their own queue.
func (SendArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: Queue, MaxAttempts: 20}
}

// Inserter is the part of the River client the outbox needs.
type Inserter interface {
	InsertTx(ctx context.Context, tx pgx.Tx, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
}

// Outbox renders mails and enqueues them in the caller's transaction.
type Outbox struct {
	templates *Templates
	from      string
	inserter  Inserter
}

// NewOutbox returns an outbox. from is the default sender ("Name <addr>" or "addr"); ins
// inserts the delivery jobs (an insert-only River client is enough).
func NewOutbox(t *Templates, from string, ins Inserter) (*Outbox, error) {
	if t == nil || ins == nil || from == "" {
		return nil, errors.New("mail: templates, a sender address and a job inserter are required")
	}
	return &Outbox{templates: t, from: from, inserter: ins}, nil
}

// Mail is one mail to enqueue.
type Mail struct {
	TenantID uuid.UUID
	UserID   *uuid.UUID // the user the mail belongs to (deleted with them); nil for none
	To       string
	Template string
	Data     Data
}

// Enqueue stores the rendered mail and its send job in tx: both commit with the change
// that caused them, or neither does.
func (o *Outbox) Enqueue(ctx context.Context, tx pgx.Tx, q *sqlcgen.Queries, m Mail) error {
	subject, text, html, err := o.templates.Render(m.Template, m.Data)
	if err != nil {
		return err
	}
	id, err := q.InsertOutboxMail(ctx, sqlcgen.InsertOutboxMailParams{
		UserID: m.UserID, Template: m.Template, ToAddress: m.To, Subject: subject, TextBody: &text, HTMLBody: &html,
	})
	if err != nil {
		return fmt.Errorf("insert outbox mail: %w", err)
	}
	if _, err := o.inserter.InsertTx(ctx, tx, SendArgs{TenantID: m.TenantID, OutboxID: id}, nil); err != nil {
		return fmt.Errorf("enqueue mail job: %w", err)
	}
	return nil
}

// Schedule inserts a job to run at a time, in tx.
func (o *Outbox) Schedule(ctx context.Context, tx pgx.Tx, args river.JobArgs, at time.Time) error {
	_, err := o.inserter.InsertTx(ctx, tx, args, &river.InsertOpts{ScheduledAt: at})
	return err
}

// From is the default sender.
func (o *Outbox) From() string { return o.from }

// Worker delivers outbox rows.
type Worker struct {
	river.WorkerDefaults[SendArgs]
	store  *store.Store
	sender Sender
	from   FromFunc
	logger *slog.Logger
	sent   metric.Int64Counter
	failed metric.Int64Counter
	retry  metric.Int64Counter
}

// FromFunc gives the sender address and SES configuration set of a tenant's mail.
type FromFunc func(ctx context.Context, tenantID uuid.UUID) (from, configurationSet string)

// NewWorker returns the send worker.
func NewWorker(st *store.Store, sender Sender, from FromFunc, logger *slog.Logger, mp metric.MeterProvider) (*Worker, error) {
	m := mp.Meter("gatehouse/mail")
	w := &Worker{store: st, sender: sender, from: from, logger: logger}
	var err error
	if w.sent, err = m.Int64Counter("gatehouse.mail.sent", metric.WithDescription("Mails accepted by the provider")); err != nil {
		return nil, err
	}
	if w.failed, err = m.Int64Counter("gatehouse.mail.failed", metric.WithDescription("Mails given up (permanent rejection or attempts exhausted)")); err != nil {
		return nil, err
	}
	if w.retry, err = m.Int64Counter("gatehouse.mail.retried", metric.WithDescription("Delivery attempts that failed and will be retried")); err != nil {
		return nil, err
	}
	return w, nil
}

// Timeout bounds one delivery attempt.
func (w *Worker) Timeout(*river.Job[SendArgs]) time.Duration { return time.Minute }

// Work sends one mail. Temporary failures return the error (River retries with backoff);
// permanent rejections cancel the job. Either way the outbox row records what happened.
func (w *Worker) Work(ctx context.Context, job *river.Job[SendArgs]) error {
	tid, oid := job.Args.TenantID, job.Args.OutboxID
	var msg Message
	var tpl string
	pending := false
	err := w.store.InTenant(ctx, tid, func(q *sqlcgen.Queries) error {
		row, err := q.GetOutboxMail(ctx, oid)
		if errors.Is(err, store.ErrNotFound) {
			return nil // the tenant or user was deleted meanwhile: nothing to send
		}
		if err != nil {
			return err
		}
		if row.Status != "pending" || row.TextBody == nil {
			return nil // already delivered (a retried job after a lost acknowledgement)
		}
		pending, tpl = true, row.Template
		msg = Message{To: row.ToAddress, Subject: row.Subject, Text: *row.TextBody, TenantID: tid}
		if row.HTMLBody != nil {
			msg.HTML = *row.HTMLBody
		}
		return nil
	}, store.ReadOnly(), store.Idempotent())
	if err != nil || !pending {
		return err
	}
	msg.From, msg.ConfigurationSet = w.from(ctx, tid)
	attrs := metric.WithAttributes(attribute.String("template", tpl))
	providerID, sendErr := w.sender.Send(ctx, msg)
	// The outcome must reach the outbox even across a database restart: a "sent" that is
	// not recorded would leave the row pending with its one-time link kept. The updates are
	// idempotent, so they are retried with backoff for up to a minute.
	record := func(f func(q *sqlcgen.Queries) error) {
		rctx := context.WithoutCancel(ctx)
		wait := 100 * time.Millisecond
		for deadline := time.Now().Add(time.Minute); ; wait = min(2*wait, 5*time.Second) {
			err := w.store.InTenant(rctx, tid, f, store.Idempotent())
			if err == nil {
				return
			}
			if time.Now().Add(wait).After(deadline) {
				w.logger.ErrorContext(ctx, "mail: recording the outcome failed", "outbox_id", oid, "err", err)
				return
			}
			w.logger.WarnContext(ctx, "mail: recording the outcome failed, retrying", "outbox_id", oid, "err", err, "retry_in", wait)
			time.Sleep(wait)
		}
	}
	switch {
	case sendErr == nil:
		w.sent.Add(ctx, 1, attrs)
		record(func(q *sqlcgen.Queries) error {
			return q.MarkOutboxSent(ctx, sqlcgen.MarkOutboxSentParams{ID: oid, ProviderID: &providerID})
		})
		return nil
	case IsPermanent(sendErr) || job.Attempt >= job.MaxAttempts:
		w.failed.Add(ctx, 1, attrs)
		w.logger.ErrorContext(ctx, "mail: delivery failed for good", "outbox_id", oid, "template", tpl,
			"attempt", job.Attempt, "permanent", IsPermanent(sendErr), "err", sendErr)
		msgErr := sendErr.Error()
		record(func(q *sqlcgen.Queries) error {
			return q.MarkOutboxFailed(ctx, sqlcgen.MarkOutboxFailedParams{ID: oid, LastError: &msgErr})
		})
		return river.JobCancel(sendErr)
	default:
		w.retry.Add(ctx, 1, attrs)
		w.logger.WarnContext(ctx, "mail: delivery failed, will retry", "outbox_id", oid, "template", tpl,
			"attempt", job.Attempt, "err", sendErr)
		msgErr := sendErr.Error()
		record(func(q *sqlcgen.Queries) error {
			return q.MarkOutboxAttemptFailed(ctx, sqlcgen.MarkOutboxAttemptFailedParams{ID: oid, LastError: &msgErr})
		})
		return sendErr
	}
}

// RetryPolicy backs off exponentially from Base (doubling, with jitter) up to Max.
type RetryPolicy struct {
	Base time.Duration
	Max  time.Duration
}

// NextRetry implements river.ClientRetryPolicy.
func (p RetryPolicy) NextRetry(job *rivertype.JobRow) time.Time {
	d := p.Base << min(max(job.Attempt-1, 0), 20)
	if d > p.Max || d <= 0 {
		d = p.Max
	}
	d += time.Duration(rand.Int64N(int64(d)/5 + 1))
	return time.Now().Add(d)
}
