package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// BenchmarkSessionCheck is GET /api/v1/session with a bearer token through the whole
// handler chain, in-process (no network), session cache on.
func BenchmarkSessionCheck(b *testing.B) {
	d := testutil.PackageDB(b)
	srv := testutil.NewServer(b, d)
	ten := testutil.NewTenant(b, d, "bsess")
	ctx := context.Background()
	if _, err := srv.App.Accounts.CreateVerifiedUser(ctx, ten, "b@example.com", "purple monkey dishwasher", ""); err != nil {
		b.Fatal(err)
	}
	res, err := srv.App.Accounts.Login(ctx, ten, "b@example.com", "purple monkey dishwasher", session.Meta{})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/api/v1/session", nil)
	req.Host = ten.Slug + ".localhost"
	req.Header.Set("Authorization", "Bearer "+res.Session.Token)
	h := srv.App.Handler
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}
