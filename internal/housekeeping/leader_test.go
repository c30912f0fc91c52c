package housekeeping_test

import (
	"context"
	"testing"
	"time"

	"github.com/riverqueue/river"

	"github.com/gatehouse-id/gatehouse/internal/housekeeping"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// startProbe is a periodic job of the test without unique options: its row appears each
// time a node becomes leader and enqueues the run-on-start jobs, in the same transaction as
// the housekeeping ones. That makes "the new leader tried, and was refused" observable.
type startProbe struct{}

func (startProbe) Kind() string                 { return "test.leader_started" }
func (startProbe) InsertOpts() river.InsertOpts { return river.InsertOpts{Queue: housekeeping.Queue} }

// TestPeriodicJobsOncePerPeriod: two nodes on one database, every housekeeping task is a
// periodic job that runs on start. Only the elected leader enqueues it, so each ran once;
// when the leader stops and the other node takes over within the same period, its
// run-on-start is refused as a duplicate of the period's job, so each still ran once.
func TestPeriodicJobsOncePerPeriod(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.FreshDB(t)
	a := newApp(t, d, nil)
	// One period longer than the test: every run here falls in the same one.
	const period = 365 * 24 * time.Hour
	began := time.Now()
	kinds := []string{housekeeping.TenantPurgeArgs{}.Kind(), housekeeping.RotationArgs{}.Kind(), housekeeping.MetadataRefreshArgs{}.Kind()}
	probe := startProbe{}.Kind()

	nodes := map[string]*node{}
	for _, id := range []string{"node-a", "node-b"} {
		w := workers(t, a, housekeeping.BatchSize)
		river.AddWorker(w, river.WorkFunc(func(context.Context, *river.Job[startProbe]) error { return nil }))
		periodic := append(housekeeping.PeriodicJobs(housekeeping.Schedule{Maintenance: period, MetadataRefresh: period}),
			river.NewPeriodicJob(river.PeriodicInterval(period), func() (river.JobArgs, *river.InsertOpts) { return startProbe{}, nil },
				&river.PeriodicJobOpts{RunOnStart: true}))
		nodes[id] = startNode(t, d, id, nil, w, periodic)
	}
	leader := func() string {
		t.Helper()
		var id string
		if err := d.Admin.QueryRow(ctx, `SELECT leader_id FROM river_leader`).Scan(&id); err != nil {
			t.Fatalf("river_leader: %v", err)
		}
		return id
	}
	exactlyOnce := func(when string) {
		t.Helper()
		if time.Now().Truncate(period) != began.Truncate(period) {
			t.Skip("the test straddled a period boundary; the counts below hold within one period")
		}
		for _, k := range kinds {
			if all, completed := jobs(t, d, k); all != 1 || completed != 1 {
				t.Errorf("%s: %d %s jobs (%d completed), want exactly 1", when, all, k, completed)
			}
		}
	}

	// Both nodes run; the leader enqueued and someone worked each task.
	waitCompleted(t, d, probe, 1)
	for _, k := range kinds {
		waitCompleted(t, d, k, 1)
	}
	first := leader()
	if all, _ := jobs(t, d, probe); all != 1 {
		t.Fatalf("%d leader starts with two nodes running, want 1: only the leader enqueues", all)
	}
	exactlyOnce("two nodes")

	// The leader stops; the other node is elected and enqueues its run-on-start jobs.
	nodes[first].stop(t)
	waitCompleted(t, d, probe, 2)
	if second := leader(); second == first {
		t.Fatalf("leader still %s after it stopped", first)
	}
	exactlyOnce("after a leader change in the same period")
}
