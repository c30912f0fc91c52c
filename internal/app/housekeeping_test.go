package app_test

import (
	"context"
	"testing"
	"time"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/gatehouse-id/gatehouse/internal/housekeeping"
	"github.com/gatehouse-id/gatehouse/internal/telemetry"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestMain fails the package when a test leaves a goroutine running (see testutil.Main).
func TestMain(m *testing.M) { testutil.Main(m) }

// TestHousekeepingOncePerCluster: two servers on one database, wired as `serve` is. Every
// housekeeping task runs when the leader starts, once for the cluster, not once per node:
// exactly one job of each kind, worked by one of the nodes and traced there by the job
// middleware. (The rotation, tenant purge and metadata refresh themselves are tested in
// internal/housekeeping.)
func TestHousekeepingOncePerCluster(t *testing.T) {
	t.Parallel()
	d := testutil.FreshDB(t) // a job queue of its own
	began := time.Now()
	var recorders []*tracetest.SpanRecorder
	for range 2 {
		sr := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
		t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		testutil.NewServerWithTelemetry(t, d, &telemetry.Telemetry{TracerProvider: tp, MeterProvider: metricnoop.NewMeterProvider()})
		recorders = append(recorders, sr)
	}
	kinds := []string{housekeeping.TenantPurgeArgs{}.Kind(), housekeeping.RotationArgs{}.Kind(), housekeeping.MetadataRefreshArgs{}.Kind()}
	jobs := func(kind string) (all, completed int) {
		t.Helper()
		if err := d.Admin.QueryRow(context.Background(), `SELECT count(*), count(*) FILTER (WHERE state = 'completed')
			FROM river_job WHERE kind = $1`, kind).Scan(&all, &completed); err != nil {
			t.Fatal(err)
		}
		return all, completed
	}
	spans := func(kind string) (n int) {
		for _, sr := range recorders {
			for _, s := range sr.Ended() {
				if s.Name() == "job "+kind {
					n++
				}
			}
		}
		return n
	}
	for _, k := range kinds {
		for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			if _, completed := jobs(k); completed >= 1 && spans(k) >= 1 {
				break
			}
			if time.Now().After(deadline) {
				all, completed := jobs(k)
				t.Fatalf("%s: %d jobs, %d completed, %d spans after 20 s; want a completed, traced run", k, all, completed, spans(k))
			}
		}
	}
	// The next run is a minute after the first (the metadata refresh's, six hours).
	if time.Since(began) > 50*time.Second {
		t.Skip("too slow to tell a second period's run from a duplicate")
	}
	for _, k := range kinds {
		if all, _ := jobs(k); all != 1 || spans(k) != 1 {
			t.Errorf("%s: %d jobs and %d job spans on two nodes, want exactly 1", k, all, spans(k))
		}
	}
}
