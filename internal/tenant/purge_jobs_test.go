package tenant_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestPurgeRemovesTenantJobs: after `tenant delete --grace 0` no River job row names the
// tenant — neither the finished mail jobs (River keeps completed rows for a day) nor one
// still scheduled — while another tenant's job rows stay (issue 15).
func TestPurgeRemovesTenantJobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.FreshDB(t) // its own job queue: the server below works only these jobs
	srv := testutil.NewServer(t, d)
	gone := testutil.NewTenant(t, d, "jobsgone")
	kept := testutil.NewTenant(t, d, "jobskept")

	for _, ten := range []tenant.Tenant{gone, kept} {
		email := "signup-" + uuid.NewString()[:8] + "@example.test"
		r := srv.Do(t, testutil.Request{Method: "POST", Host: ten.Slug + ".localhost", Path: "/api/v1/signup",
			Body: map[string]string{"email": email, "password": "purple monkey dishwasher"}})
		if r.StatusCode != 202 {
			t.Fatalf("signup in %s: status %d %s", ten.Slug, r.StatusCode, r.Body)
		}
		srv.WaitMail(t, email, "")
	}
	// Wait until River has recorded the mail jobs as completed.
	jobs := func(id uuid.UUID) (all, unfinished int) {
		t.Helper()
		if err := d.Admin.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE state <> 'completed')
			FROM river_job WHERE args::text LIKE '%' || $1 || '%'`, id.String()).Scan(&all, &unfinished); err != nil {
			t.Fatal(err)
		}
		return all, unfinished
	}
	for _, ten := range []tenant.Tenant{gone, kept} {
		for deadline := time.Now().Add(15 * time.Second); ; {
			all, unfinished := jobs(ten.ID)
			if all > 0 && unfinished == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("tenant %s: %d job rows, %d not completed; want the signup mail job completed", ten.Slug, all, unfinished)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	// And a job still waiting for its time, as an account deletion's purge job would be.
	if _, err := d.Admin.Exec(ctx, `INSERT INTO river_job (args, kind, max_attempts, queue, state, scheduled_at)
		VALUES (jsonb_build_object('tenant_id', $1::text), 'account.purge_due', 25, 'default', 'scheduled', now() + interval '7 days')`,
		gone.ID.String()); err != nil {
		t.Fatal(err)
	}
	keptBefore, _ := jobs(kept.ID)

	// What `gatehouse tenant delete SLUG --grace 0` runs.
	if _, err := tenant.NewService(d.Store, time.Now).Delete(ctx, gone.Slug, 0); err != nil {
		t.Fatalf("delete with grace 0: %v", err)
	}
	assertGone(t, d, gone.Slug, gone.ID.String())
	if all, _ := jobs(gone.ID); all != 0 {
		var rows []string
		rs, err := d.Admin.Query(ctx, `SELECT kind || ' ' || state || ' ' || args::text FROM river_job WHERE args::text LIKE '%' || $1 || '%'`, gone.ID.String())
		if err == nil {
			for rs.Next() {
				var s string
				_ = rs.Scan(&s)
				rows = append(rows, s)
			}
			rs.Close()
		}
		t.Fatalf("after the purge %d River job rows still name tenant %s: %v", all, gone.ID, rows)
	}
	if all, _ := jobs(kept.ID); all != keptBefore {
		t.Fatalf("the purge of %s changed another tenant's job rows: %d, want %d", gone.Slug, all, keptBefore)
	}
}
