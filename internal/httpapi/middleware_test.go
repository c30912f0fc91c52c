package httpapi

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/web"
)

func testResponder(t *testing.T, logs *bytes.Buffer) *responder {
	t.Helper()
	pages, err := web.NewRenderer()
	if err != nil {
		t.Fatal(err)
	}
	return &responder{logger: slog.New(slog.NewJSONHandler(logs, nil)), pages: pages}
}

// TestPanicBecomesInternal: a panic answers 500 "internal" with the request id and nothing
// else; the panic value and stack go to the log only.
func TestPanicBecomesInternal(t *testing.T) {
	var logs bytes.Buffer
	rs := testResponder(t, &logs)
	h := requestInfo(nil)(recoverer(rs)(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
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
	h := requestInfo(nil)(accessLog(logger)(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
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
