package telemetry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.37.0"
	"go.opentelemetry.io/otel/trace"
)

// Job metadata keys under which the enqueuing side leaves its W3C trace context
// (traceparent, tracestate) and its request id.
const (
	metaTrace     = "gatehouse.trace"
	metaRequestID = "gatehouse.request_id"
)

// ContinueTraceWithin is how soon after being enqueued a job must start to continue the
// enqueuing trace as its child. A later one (a purge scheduled at the end of a grace
// period, a retry hours on) starts a trace of its own that links to the enqueuing span,
// so that a request's trace does not stay open for a month.
const ContinueTraceWithin = time.Hour

// Span attribute keys of jobs (queue and job id use the messaging conventions).
const (
	JobKindKey    = attribute.Key("gatehouse.job.kind")
	JobAttemptKey = attribute.Key("gatehouse.job.attempt")
	JobOutcomeKey = attribute.Key("gatehouse.job.outcome") // completed, retry, discarded, cancelled, snoozed, panic
	TenantIDKey   = attribute.Key("gatehouse.tenant_id")
	RequestIDKey  = attribute.Key("gatehouse.request_id")
)

// JobTracing is River middleware (river.Config.Middleware) that traces every job of the
// client. On insert it opens a producer span "enqueue <kind>" and stores that span's trace
// context and the request id in each job's metadata; on work it opens a consumer span
// "job <kind>" that continues the stored trace, and passes it to the worker in the
// context, so the worker's SQL spans are its children.
//
// Attributes are identifiers only: kind, queue, job id, attempt, outcome, the tenant id
// (the job args' "tenant_id", the convention of tenant jobs) and the request id. Error
// messages are recorded with email addresses removed.
type JobTracing struct {
	river.MiddlewareDefaults
	tracer    trace.Tracer
	prop      propagation.TraceContext
	requestID func(context.Context) string
}

var (
	_ rivertype.JobInsertMiddleware = (*JobTracing)(nil)
	_ rivertype.WorkerMiddleware    = (*JobTracing)(nil)
)

// NewJobTracing returns the middleware. requestID gives the id of the request being
// served in a context ("" outside one).
func NewJobTracing(tp trace.TracerProvider, requestID func(context.Context) string) *JobTracing {
	return &JobTracing{tracer: tp.Tracer("gatehouse/jobs"), requestID: requestID}
}

// InsertMany implements rivertype.JobInsertMiddleware.
func (j *JobTracing) InsertMany(ctx context.Context, params []*rivertype.JobInsertParams,
	doInner func(context.Context) ([]*rivertype.JobInsertResult, error)) ([]*rivertype.JobInsertResult, error) {
	if len(params) == 0 {
		return doInner(ctx)
	}
	kind, queue, tenantID := params[0].Kind, params[0].Queue, tenantOf(params[0].EncodedArgs)
	for _, p := range params[1:] {
		if p.Kind != kind {
			kind = ""
		}
		if p.Queue != queue {
			queue = ""
		}
		if tenantID != "" && tenantOf(p.EncodedArgs) != tenantID {
			tenantID = ""
		}
	}
	name := "enqueue"
	attrs := []attribute.KeyValue{semconv.MessagingSystemKey.String("river"), semconv.MessagingOperationTypeSend}
	if kind != "" {
		name += " " + kind
		attrs = append(attrs, JobKindKey.String(kind))
	}
	if queue != "" {
		attrs = append(attrs, semconv.MessagingDestinationName(queue))
	}
	if tenantID != "" {
		attrs = append(attrs, TenantIDKey.String(tenantID))
	}
	if len(params) > 1 {
		attrs = append(attrs, semconv.MessagingBatchMessageCount(len(params)))
	}
	ctx, span := j.tracer.Start(ctx, name, trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
	defer span.End()

	carrier := propagation.MapCarrier{}
	j.prop.Inject(ctx, carrier)
	requestID := j.requestID(ctx)
	if len(carrier) > 0 || requestID != "" {
		for _, p := range params {
			// Metadata River could not store fails the insert below anyway; tracing
			// never fails an insert on its own.
			if md, err := withTraceMetadata(p.Metadata, carrier, requestID); err == nil {
				p.Metadata = md
			}
		}
	}
	res, err := doInner(ctx)
	if err != nil {
		recordError(span, err)
	} else if len(res) == 1 && res[0].Job != nil {
		span.SetAttributes(semconv.MessagingMessageID(strconv.FormatInt(res[0].Job.ID, 10)))
	}
	return res, err
}

// Work implements rivertype.WorkerMiddleware.
func (j *JobTracing) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	md := readTraceMetadata(job.Metadata)
	attrs := []attribute.KeyValue{semconv.MessagingSystemKey.String("river"), semconv.MessagingOperationTypeProcess,
		semconv.MessagingDestinationName(job.Queue), semconv.MessagingMessageID(strconv.FormatInt(job.ID, 10)),
		JobKindKey.String(job.Kind), JobAttemptKey.Int(job.Attempt)}
	if tid := tenantOf(job.EncodedArgs); tid != "" {
		attrs = append(attrs, TenantIDKey.String(tid))
	}
	if md.RequestID != "" {
		attrs = append(attrs, RequestIDKey.String(md.RequestID))
	}
	opts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...)}
	if enq := trace.SpanContextFromContext(j.prop.Extract(context.Background(), propagation.MapCarrier(md.Trace))); enq.IsValid() {
		if time.Since(job.CreatedAt) <= ContinueTraceWithin {
			ctx = trace.ContextWithRemoteSpanContext(ctx, enq)
		} else {
			opts = append(opts, trace.WithNewRoot(), trace.WithLinks(trace.Link{SpanContext: enq}))
		}
	}
	ctx, span := j.tracer.Start(ctx, "job "+job.Kind, opts...)
	defer func() {
		if v := recover(); v != nil {
			// River recovers the panic and retries the job. The value may hold anything:
			// the span ends here, before re-panicking, so the SDK does not record it.
			span.SetAttributes(JobOutcomeKey.String("panic"))
			span.SetStatus(codes.Error, "panic")
			span.End()
			panic(v)
		}
		span.End()
	}()
	err := doInner(ctx)
	outcome := jobOutcome(job, err)
	span.SetAttributes(JobOutcomeKey.String(outcome))
	if err != nil && outcome != "snoozed" {
		recordError(span, err)
	}
	return err
}

// jobOutcome is what River does with the job after this attempt.
func jobOutcome(job *rivertype.JobRow, err error) string {
	var cancel *rivertype.JobCancelError
	var snooze *rivertype.JobSnoozeError
	switch {
	case err == nil:
		return "completed"
	case errors.As(err, &cancel):
		return "cancelled"
	case errors.As(err, &snooze):
		return "snoozed"
	case job.Attempt >= job.MaxAttempts:
		return "discarded"
	default:
		return "retry"
	}
}

// emailAddress matches anything shaped like an address: providers' rejections often quote
// the recipient.
var emailAddress = regexp.MustCompile(`[^\s<>()\[\]"',;:@]+@[^\s<>()\[\]"',;:@]+`)

// redactEmails replaces every email address in s.
func redactEmails(s string) string { return emailAddress.ReplaceAllString(s, "[email]") }

// recordError records err as the span's exception and error status, without addresses.
func recordError(span trace.Span, err error) {
	msg := redactEmails(err.Error())
	span.AddEvent(semconv.ExceptionEventName, trace.WithAttributes(
		semconv.ExceptionTypeKey.String(fmt.Sprintf("%T", err)), semconv.ExceptionMessageKey.String(msg)))
	span.SetStatus(codes.Error, msg)
}

// tenantOf returns the job args' tenant_id ("" when there is none).
func tenantOf(encodedArgs []byte) string {
	var args struct {
		TenantID string `json:"tenant_id"`
	}
	if json.Unmarshal(encodedArgs, &args) != nil {
		return ""
	}
	id, err := uuid.Parse(args.TenantID)
	if err != nil || id == uuid.Nil {
		return ""
	}
	return id.String()
}

type traceMetadata struct {
	Trace     map[string]string `json:"gatehouse.trace"`
	RequestID string            `json:"gatehouse.request_id"`
}

func readTraceMetadata(md []byte) traceMetadata {
	var m traceMetadata
	_ = json.Unmarshal(md, &m) // no or unreadable trace metadata: a job of its own trace
	return m
}

// withTraceMetadata adds the trace context and request id to a job's metadata object,
// keeping its other keys.
func withTraceMetadata(md []byte, carrier propagation.MapCarrier, requestID string) ([]byte, error) {
	var m map[string]json.RawMessage
	if len(md) > 0 {
		if err := json.Unmarshal(md, &m); err != nil {
			return nil, err
		}
	}
	if m == nil {
		m = map[string]json.RawMessage{}
	}
	if len(carrier) > 0 {
		b, err := json.Marshal(map[string]string(carrier))
		if err != nil {
			return nil, err
		}
		m[metaTrace] = b
	}
	if requestID != "" {
		b, err := json.Marshal(requestID)
		if err != nil {
			return nil, err
		}
		m[metaRequestID] = b
	}
	return json.Marshal(m)
}
