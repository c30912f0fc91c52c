package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// BenchmarkTenantRequest measures the whole middleware chain (request id, tracing, logging,
// security headers, cross-origin check, tenant resolution) plus a small JSON handler,
// in-process, against the real database.
func BenchmarkTenantRequest(b *testing.B) {
	d := testutil.PackageDB(b)
	srv := testutil.NewServer(b, d)
	ten := testutil.NewTenant(b, d, "bench")
	h := srv.App.Handler
	req := httptest.NewRequest(http.MethodGet, "/api/v1/tenant", nil)
	req.Host = ten.Slug + ".localhost"
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}
