package kit

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/google/uuid"
	"go.opentelemetry.io/otel/codes"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/web"
)

func testResponder(t *testing.T, logs *bytes.Buffer) *Responder {
	t.Helper()
	pages, err := web.NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	return &Responder{logger: slog.New(slog.NewJSONHandler(logs, nil)), pages: pages}
}

// TestPanicBecomesInternal: a panic answers 500 "internal" with the request id and nothing
// else; the panic value and stack go to the log only.
func TestPanicBecomesInternal(t *testing.T) {
	var logs bytes.Buffer
	rs := testResponder(t, &logs)
	h := WithRequestInfo(nil)(Recoverer(rs)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("secret database password in panic")
	})))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/v1/x", nil))
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("status %d", rec.Code)
	}
	var body struct {
		Error struct {
			Code    string         `json:"code"`
			Message string         `json:"message"`
			Details map[string]any `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatalf("body %s: %v", rec.Body, err)
	}
	rid := rec.Header().Get("X-Request-Id")
	if body.Error.Code != "internal" || body.Error.Details["request_id"] != rid || len(body.Error.Details) != 1 || rid == "" {
		t.Fatalf("body = %s (request id %q)", rec.Body, rid)
	}
	if strings.Contains(rec.Body.String(), "secret") || strings.Contains(rec.Body.String(), "goroutine") {
		t.Fatalf("panic detail leaked to the client: %s", rec.Body)
	}
	if !strings.Contains(logs.String(), "secret database password in panic") || !strings.Contains(logs.String(), rid) {
		t.Fatalf("panic not logged with the request id: %s", logs.String())
	}
}

// TestAccessLogOmitsQuery: links carry tokens in their query string; the log must not.
func TestAccessLogOmitsQuery(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	obs := NewObserver(logger, tracenoop.NewTracerProvider(), metricnoop.NewMeterProvider())
	h := WithRequestInfo(nil)(obs.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	})))
	r := httptest.NewRequest("GET", "/verify?token=SUPERSECRETTOKEN", nil)
	r.Header.Set("Authorization", "Bearer SUPERSECRETBEARER")
	h.ServeHTTP(httptest.NewRecorder(), r)
	out := logs.String()
	if strings.Contains(out, "SUPERSECRET") {
		t.Fatalf("secret in access log: %s", out)
	}
	if !strings.Contains(out, `"path":"/verify"`) || !strings.Contains(out, `"status":418`) {
		t.Fatalf("access log line incomplete: %s", out)
	}
}

// TestRequestSpans: with a recording tracer every request gets a server span named after
// its route, continuing an incoming W3C trace.
func TestRequestSpans(t *testing.T) {
	var logs bytes.Buffer
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	obs := NewObserver(slog.New(slog.NewJSONHandler(&logs, nil)), tp, metricnoop.NewMeterProvider())
	mux := chi.NewRouter()
	tid := uuid.New()
	mux.Get("/api/v1/things/{id}", func(w http.ResponseWriter, r *http.Request) {
		SetTenant(r.Context(), tenant.Tenant{ID: tid, Slug: "acme"})
		w.WriteHeader(http.StatusInternalServerError)
	})
	h := WithRequestInfo(nil)(obs.Middleware(mux))
	r := httptest.NewRequest("GET", "/api/v1/things/42", nil)
	r.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	h.ServeHTTP(httptest.NewRecorder(), r)
	spans := sr.Ended()
	if len(spans) != 1 {
		t.Fatalf("%d spans", len(spans))
	}
	s := spans[0]
	if s.Name() != "GET /api/v1/things/{id}" || s.SpanKind() != trace.SpanKindServer || s.Status().Code != codes.Error {
		t.Fatalf("span %q kind %v status %v", s.Name(), s.SpanKind(), s.Status())
	}
	attrs := map[string]string{}
	for _, kv := range s.Attributes() {
		attrs[string(kv.Key)] = kv.Value.Emit()
	}
	if attrs["gatehouse.tenant_id"] != tid.String() || len(attrs["gatehouse.request_id"]) < 8 {
		t.Fatalf("span lacks tenant and request ids: %v", attrs)
	}
	if s.SpanContext().TraceID().String() != "4bf92f3577b34da6a3ce929d0e0e4736" {
		t.Fatalf("incoming trace not continued: %s", s.SpanContext().TraceID())
	}
	if !strings.Contains(logs.String(), `"trace_id":"4bf92f3577b34da6a3ce929d0e0e4736"`) {
		t.Fatalf("log line lacks the trace id: %s", logs.String())
	}
}
