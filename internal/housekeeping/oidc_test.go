package housekeeping_test

import (
	"context"
	"crypto/rand"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/config"
	"github.com/gatehouse-id/gatehouse/internal/housekeeping"
	"github.com/gatehouse-id/gatehouse/internal/oidcop"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestRotationMaintainsOIDC: the rotation job deletes the OpenID Provider's authorization
// requests and tokens that expired more than a day ago (and keeps those within the day, so
// a replay shortly after expiry is still seen as a reuse), retires a signing key once its
// successor signs, and deletes it once the grace after that has passed.
func TestRotationMaintainsOIDC(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	d := testutil.FreshDB(t) // the job visits every tenant of the database
	clk := testutil.NewClock()
	clk.Advance(-time.Duration(clk.Now().Nanosecond() % 1000))
	a := newApp(t, d, nil, func(c *config.Config) { c.Now = clk.Now })
	ten := testutil.NewTenant(t, d, "hk-oidc")
	name := "Batch"
	app, err := a.OIDC.CreateApp(ctx, ten, oidcop.AppInput{Name: &name, GrantTypes: &[]string{"client_credentials"}}, audit.Who{ActorLabel: "test"})
	if err != nil {
		t.Fatal(err)
	}
	who := audit.Who{ActorLabel: "operator"}
	first, err := a.OIDC.RotateKeys(ctx, ten, who)
	if err != nil || !first.First {
		t.Fatalf("first key: %+v %v", first, err)
	}
	second, err := a.OIDC.RotateKeys(ctx, ten, who)
	if err != nil || second.First || second.PreviousUntil == nil {
		t.Fatalf("second key: %+v %v", second, err)
	}

	now := clk.Now()
	requests := map[string]time.Time{"long expired": now.Add(-25 * time.Hour), "within the day": now.Add(-23 * time.Hour), "live": now.Add(5 * time.Minute)}
	for label, exp := range requests {
		if _, err := d.Admin.Exec(ctx, `INSERT INTO oidc_auth_requests (tenant_id, app_id, params, expires_at) VALUES ($1, $2, $3, $4)`,
			ten.ID, app.App.ID, `{"label":"`+label+`"}`, exp); err != nil {
			t.Fatal(err)
		}
		for _, kind := range []string{"access", "refresh"} {
			hash := make([]byte, 32)
			_, _ = rand.Read(hash)
			if _, err := d.Admin.Exec(ctx, `INSERT INTO oidc_tokens (tenant_id, kind, app_id, token_hash, family_id, scopes, expires_at, used_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, ten.ID, kind, app.App.ID, hash, uuid.New(), []string{label}, exp, exp.Add(-time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
	}

	n := startNode(t, d, "oidc-keeper", nil, workers(t, a, housekeeping.BatchSize), nil)
	kind := housekeeping.RotationArgs{}.Kind()
	runs := 0
	run := func() {
		t.Helper()
		if _, err := n.client.Insert(ctx, housekeeping.RotationArgs{}, nil); err != nil {
			t.Fatal(err)
		}
		runs++
		waitCompleted(t, d, kind, runs)
	}
	type key struct {
		Kid              string
		Retired, Expires *time.Time
	}
	keys := func() []key {
		t.Helper()
		rows, err := d.Admin.Query(ctx, `SELECT kid, retired_at, expires_at FROM oidc_keys WHERE tenant_id = $1 ORDER BY active_from`, ten.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []key
		for rows.Next() {
			var k key
			if err := rows.Scan(&k.Kid, &k.Retired, &k.Expires); err != nil {
				t.Fatal(err)
			}
			out = append(out, k)
		}
		return out
	}
	labels := func(query string) []string {
		t.Helper()
		rows, err := d.Admin.Query(ctx, query, ten.ID)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var s string
			if err := rows.Scan(&s); err != nil {
				t.Fatal(err)
			}
			out = append(out, s)
		}
		slices.Sort(out)
		return out
	}
	kept := []string{"live", "within the day"}

	// Within the publish lead: the first key still signs, nothing is retired; the rows
	// that expired more than a day ago are gone, exactly those.
	run()
	if got := labels(`SELECT params->>'label' FROM oidc_auth_requests WHERE tenant_id = $1`); !slices.Equal(got, kept) {
		t.Fatalf("authorization requests after the sweep: %v, want %v", got, kept)
	}
	for _, k := range []string{"access", "refresh"} {
		if got := labels(`SELECT scopes[1] || ' ` + k + `' FROM oidc_tokens WHERE tenant_id = $1 AND kind = '` + k + `'`); !slices.Equal(got, []string{"live " + k, "within the day " + k}) {
			t.Fatalf("%s tokens after the sweep: %v", k, got)
		}
	}
	if ks := keys(); len(ks) != 2 || ks[0].Retired != nil || ks[0].Expires != nil || ks[1].Retired != nil {
		t.Fatalf("keys within the lead: %+v", ks)
	}

	// The successor signs: the first key is retired and stays published for the grace.
	clk.Advance(3 * time.Minute)
	run()
	ks := keys()
	if len(ks) != 2 || ks[0].Kid != first.Kid || ks[0].Retired == nil || !ks[0].Retired.Equal(second.SignsFrom) ||
		ks[0].Expires == nil || !ks[0].Expires.Equal(*second.PreviousUntil) || ks[1].Kid != second.Kid || ks[1].Retired != nil {
		t.Fatalf("keys after the successor took over: %+v (first %s, second %+v)", ks, first.Kid, second)
	}

	// A day on: the rows that were within the day are past it now; the live ones too.
	clk.Advance(second.PreviousUntil.Sub(clk.Now()) + time.Second)
	run()
	if ks := keys(); len(ks) != 1 || ks[0].Kid != second.Kid {
		t.Fatalf("keys after the grace: %+v, want only %s", ks, second.Kid)
	}
	if got := labels(`SELECT params->>'label' FROM oidc_auth_requests WHERE tenant_id = $1`); len(got) != 0 {
		t.Fatalf("authorization requests a day on: %v", got)
	}
	if got := labels(`SELECT scopes[1] FROM oidc_tokens WHERE tenant_id = $1`); len(got) != 0 {
		t.Fatalf("tokens a day on: %v", got)
	}
}
