package telemetry_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/gatehouse-id/gatehouse/internal/telemetry"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestMain fails the package when a test leaves a goroutine running (see testutil.Main).
func TestMain(m *testing.M) { testutil.Main(m) }

// TestJobSpanContinuesRequestTrace: a sign-up over HTTP enqueues the verification mail;
// the mail job's span belongs to the sign-up request's trace (job → enqueue → server
// span), carries the job, tenant and request ids, has the worker's SQL spans as children,
// and no attribute anywhere holds the address.
func TestJobSpanContinuesRequestTrace(t *testing.T) {
	d := testutil.FreshDB(t)
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr)) // samples every root
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	addr := testutil.NewServerWithTelemetry(t, d, &telemetry.Telemetry{TracerProvider: tp, MeterProvider: metricnoop.NewMeterProvider()}).Addr
	ten := testutil.NewTenant(t, d, "trace")

	email := "trace-" + uuid.NewString()[:8] + "@example.test"
	body := `{"email":"` + email + `","password":"purple monkey dishwasher"}`
	req, err := http.NewRequest("POST", "http://"+addr+"/api/v1/signup", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = ten.Slug + ".localhost"
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("signup: status %d", resp.StatusCode)
	}
	requestID := resp.Header.Get("X-Request-Id")

	var server, job sdktrace.ReadOnlySpan
	spans := waitSpans(t, sr, func(s sdktrace.ReadOnlySpan) bool {
		return s.Name() == "POST /api/v1/signup" && s.SpanKind() == trace.SpanKindServer
	}, func(s sdktrace.ReadOnlySpan) bool {
		return s.Name() == "job mail.send"
	})
	byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		byID[s.SpanContext().SpanID()] = s
		switch {
		case s.Name() == "POST /api/v1/signup":
			server = s
		case s.Name() == "job mail.send":
			job = s
		}
	}

	if job.SpanKind() != trace.SpanKindConsumer || job.Status().Code == codes.Error {
		t.Fatalf("job span kind %v status %v", job.SpanKind(), job.Status())
	}
	if job.SpanContext().TraceID() != server.SpanContext().TraceID() {
		t.Fatalf("job span in trace %s, sign-up request in trace %s: trace context not propagated",
			job.SpanContext().TraceID(), server.SpanContext().TraceID())
	}
	// Parent/child all the way up: job → enqueue mail.send → … → the server span.
	var chain []string
	for s := job; s != server; {
		p, ok := byID[s.Parent().SpanID()]
		if !ok {
			t.Fatalf("span %q: parent %s not recorded (chain %v)", s.Name(), s.Parent().SpanID(), chain)
		}
		chain = append(chain, p.Name())
		s = p
	}
	if chain[0] != "enqueue mail.send" {
		t.Fatalf("job's parent chain %v, want it to start at the enqueue span", chain)
	}

	got := attrMap(job.Attributes())
	want := map[string]string{
		"gatehouse.job.kind":         "mail.send",
		"gatehouse.job.attempt":      "1",
		"gatehouse.job.outcome":      "completed",
		"messaging.system":           "river",
		"messaging.operation.type":   "process",
		"messaging.destination.name": "mail",
		"gatehouse.tenant_id":        ten.ID.String(),
		"gatehouse.request_id":       requestID,
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("job span %s = %q, want %q (all: %v)", k, got[k], v, got)
		}
	}
	if got["messaging.message.id"] == "" || requestID == "" {
		t.Errorf("job span lacks the job id or the response the request id: %v (X-Request-Id %q)", got, requestID)
	}

	var sql int
	for _, s := range spans {
		if s.Parent().SpanID() == job.SpanContext().SpanID() && s.SpanKind() == trace.SpanKindClient {
			sql++
		}
	}
	if sql < 2 { // read the outbox row, mark it sent
		t.Errorf("job span has %d SQL children, want the worker's queries under it", sql)
	}

	domain := email[strings.IndexByte(email, '@'):]
	for _, s := range spans {
		kvs := append([]attribute.KeyValue{}, s.Attributes()...)
		for _, e := range s.Events() {
			kvs = append(kvs, e.Attributes...)
		}
		for _, kv := range kvs {
			if v := kv.Value.Emit(); strings.Contains(v, domain) || strings.Contains(v, email[:14]) {
				t.Errorf("span %q attribute %s holds the address: %q", s.Name(), kv.Key, v)
			}
		}
	}
}

// TestJobSpanOutcome: a failed attempt sets the error status and records the error with
// addresses removed; the outcome says what River does next.
func TestJobSpanOutcome(t *testing.T) {
	rejected := errors.New("550 5.1.1 <bob@example.com>: mailbox unavailable")
	for _, tc := range []struct {
		name        string
		attempt     int
		err         error
		panics      bool
		wantOutcome string
		wantStatus  codes.Code
	}{
		{name: "completed", attempt: 1, wantOutcome: "completed", wantStatus: codes.Unset},
		{name: "retry", attempt: 1, err: rejected, wantOutcome: "retry", wantStatus: codes.Error},
		{name: "discarded", attempt: 3, err: rejected, wantOutcome: "discarded", wantStatus: codes.Error},
		{name: "cancelled", attempt: 1, err: river.JobCancel(rejected), wantOutcome: "cancelled", wantStatus: codes.Error},
		{name: "snoozed", attempt: 1, err: river.JobSnooze(time.Minute), wantOutcome: "snoozed", wantStatus: codes.Unset},
		{name: "panic", attempt: 1, panics: true, wantOutcome: "panic", wantStatus: codes.Error},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sr := tracetest.NewSpanRecorder()
			jt := telemetry.NewJobTracing(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr)), noRequest)
			job := &rivertype.JobRow{ID: 7, Kind: "mail.send", Queue: "mail", Attempt: tc.attempt, MaxAttempts: 3,
				CreatedAt: time.Now(), EncodedArgs: []byte(`{"tenant_id":"` + uuid.NewString() + `"}`), Metadata: []byte(`{}`)}
			func() {
				defer func() {
					if v := recover(); (v != nil) != tc.panics {
						t.Fatalf("recovered %v", v)
					}
				}()
				err := jt.Work(context.Background(), job, func(context.Context) error {
					if tc.panics {
						panic("boom for bob@example.com")
					}
					return tc.err
				})
				if err != tc.err {
					t.Fatalf("Work returned %v, want the worker's %v", err, tc.err)
				}
			}()
			s := onlySpan(t, sr)
			if got := attrMap(s.Attributes())["gatehouse.job.outcome"]; got != tc.wantOutcome {
				t.Errorf("outcome %q, want %q", got, tc.wantOutcome)
			}
			if s.Status().Code != tc.wantStatus {
				t.Errorf("status %v, want %v", s.Status(), tc.wantStatus)
			}
			text := s.Status().Description
			for _, e := range s.Events() {
				for _, kv := range e.Attributes {
					text += " " + kv.Value.Emit()
				}
			}
			if strings.Contains(text, "bob@") || strings.Contains(text, "example.com") {
				t.Errorf("address recorded: %s", text)
			}
			if tc.err != nil && tc.wantStatus == codes.Error && !strings.Contains(text, "mailbox unavailable") {
				t.Errorf("error not recorded: %q", text)
			}
		})
	}
}

// TestEnqueueStoresTraceContext: the insert side keeps the job's other metadata and adds
// the enqueue span's traceparent and the request id; a job worked within the hour
// continues that trace, a later one starts its own trace linked to it.
func TestEnqueueStoresTraceContext(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	jt := telemetry.NewJobTracing(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr)),
		func(context.Context) string { return "req-123" })
	params := &rivertype.JobInsertParams{Kind: "account.purge_due", Queue: "default",
		EncodedArgs: []byte(`{"tenant_id":"` + uuid.NewString() + `"}`), Metadata: []byte(`{"keep":true}`)}
	_, err := jt.InsertMany(context.Background(), []*rivertype.JobInsertParams{params},
		func(context.Context) ([]*rivertype.JobInsertResult, error) {
			return []*rivertype.JobInsertResult{{Job: &rivertype.JobRow{ID: 42}}}, nil
		})
	if err != nil {
		t.Fatal(err)
	}
	enqueue := onlySpan(t, sr)
	var md map[string]any
	if err := json.Unmarshal(params.Metadata, &md); err != nil {
		t.Fatal(err)
	}
	tp, _ := md["gatehouse.trace"].(map[string]any)["traceparent"].(string)
	if md["keep"] != true || md["gatehouse.request_id"] != "req-123" ||
		!strings.Contains(tp, enqueue.SpanContext().TraceID().String()+"-"+enqueue.SpanContext().SpanID().String()) {
		t.Fatalf("metadata %s (enqueue span %s)", params.Metadata, enqueue.SpanContext().SpanID())
	}
	if enqueue.Name() != "enqueue account.purge_due" || enqueue.SpanKind() != trace.SpanKindProducer ||
		attrMap(enqueue.Attributes())["messaging.message.id"] != "42" {
		t.Fatalf("enqueue span %q kind %v attrs %v", enqueue.Name(), enqueue.SpanKind(), attrMap(enqueue.Attributes()))
	}

	for _, tc := range []struct {
		name  string
		age   time.Duration
		child bool
	}{
		{"soon", time.Second, true},
		{"late", telemetry.ContinueTraceWithin + time.Minute, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sr := tracetest.NewSpanRecorder()
			jt := telemetry.NewJobTracing(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr)), noRequest)
			job := &rivertype.JobRow{ID: 42, Kind: params.Kind, Queue: params.Queue, Attempt: 1, MaxAttempts: 25,
				CreatedAt: time.Now().Add(-tc.age), EncodedArgs: params.EncodedArgs, Metadata: params.Metadata}
			if err := jt.Work(context.Background(), job, func(context.Context) error { return nil }); err != nil {
				t.Fatal(err)
			}
			s := onlySpan(t, sr)
			if got := attrMap(s.Attributes())["gatehouse.request_id"]; got != "req-123" {
				t.Errorf("request id %q", got)
			}
			sameTrace := s.SpanContext().TraceID() == enqueue.SpanContext().TraceID()
			isChild := sameTrace && s.Parent().SpanID() == enqueue.SpanContext().SpanID()
			linked := len(s.Links()) == 1 && s.Links()[0].SpanContext.SpanID() == enqueue.SpanContext().SpanID()
			if tc.child && !isChild {
				t.Errorf("job span not a child of the enqueue span (parent %s)", s.Parent().SpanID())
			}
			if !tc.child && (sameTrace || s.Parent().IsValid() || !linked) {
				t.Errorf("late job: same trace %v, parent %v, links %v; want a new trace linked to the enqueue span",
					sameTrace, s.Parent().SpanID(), s.Links())
			}
		})
	}
}

func noRequest(context.Context) string { return "" }

func attrMap(kvs []attribute.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.Emit()
	}
	return m
}

func onlySpan(t *testing.T, sr *tracetest.SpanRecorder) sdktrace.ReadOnlySpan {
	t.Helper()
	spans := sr.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans, want 1", len(spans))
	}
	return spans[0]
}

// waitSpans waits (up to 10 s) until every predicate matches an ended span, and returns
// all ended spans.
func waitSpans(t *testing.T, sr *tracetest.SpanRecorder, preds ...func(sdktrace.ReadOnlySpan) bool) []sdktrace.ReadOnlySpan {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		spans := sr.Ended()
		missing := 0
		for _, p := range preds {
			found := false
			for _, s := range spans {
				found = found || p(s)
			}
			if !found {
				missing++
			}
		}
		if missing == 0 {
			return spans
		}
		if time.Now().After(deadline) {
			var names []string
			for _, s := range spans {
				names = append(names, s.Name())
			}
			t.Fatalf("%d expected spans did not end; ended: %v", missing, names)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
