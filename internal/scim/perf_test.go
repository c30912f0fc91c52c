package scim_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestEqualityFiltersByIndex: the filters answered from an index (userName eq, externalId
// eq) give what the Go evaluation gives: userName without regard to case, for a linked
// user and for an account the directory does not manage (its address); externalId exactly.
func TestEqualityFiltersByIndex(t *testing.T) {
	srv := testutil.NewServer(t, testutil.PackageDB(t))
	d := newDir(t, srv, "scimeq", nil)
	d.Site.User(t, "plain.account@example.com", "member")
	body := oktaUser("eq.user@example.com", "Eq", "User")
	body["externalId"] = "Ext-42"
	r, u := d.scim(http.MethodPost, "/Users", body)
	d.want(r, 201, "")
	for filter, want := range map[string]int{
		`userName eq "EQ.User@example.com"`:                                            1,
		`urn:ietf:params:scim:schemas:core:2.0:User:userName eq "eq.user@example.com"`: 1,
		`userName eq "plain.ACCOUNT@example.com"`:                                      1,
		`userName eq "nobody@example.com"`:                                             0,
		`externalId eq "Ext-42"`:                                                       1,
		`externalId eq "ext-42"`:                                                       0,
		`externalId eq "Ext-4"`:                                                        0,
	} {
		r, list := d.scim(http.MethodGet, "/Users?filter="+url.QueryEscape(filter), nil)
		d.want(r, 200, "")
		if list["totalResults"] != float64(want) {
			t.Errorf("%s: totalResults %v, want %d", filter, list["totalResults"], want)
		}
		if res, _ := list["Resources"].([]any); want == 1 && len(res) == 1 && filter[0] == 'e' {
			if res[0].(map[string]any)["id"] != u["id"] {
				t.Errorf("%s: found %v", filter, res[0])
			}
		}
	}
}

// TestSCIMPerformance measures an initial sync through /scim/v2 and the latency of
// list-with-filter in a large tenant (docs/performance.md). It is a measurement, not a
// gate: it runs only when SCIM_PERF=1 (users from SCIM_PERF_USERS, default 10000; the
// large tenant from SCIM_PERF_TENANT_USERS, default 100000), and fails only on errors.
func TestSCIMPerformance(t *testing.T) {
	if os.Getenv("SCIM_PERF") != "1" {
		t.Skip("set SCIM_PERF=1 to measure (docs/performance.md)")
	}
	envInt := func(k string, def int) int {
		if n, err := strconv.Atoi(os.Getenv(k)); err == nil && n > 0 {
			return n
		}
		return def
	}
	nUsers, nTenant, workers := envInt("SCIM_PERF_USERS", 10000), envInt("SCIM_PERF_TENANT_USERS", 100000), envInt("SCIM_PERF_WORKERS", 4)
	db := testutil.PackageDB(t)
	srv := testutil.NewServer(t, db)

	// Initial sync: nUsers users, then 200 groups with their members, as an IdP pushes them.
	ctx := context.Background()
	unlimited := func(d *dir) {
		if _, err := db.Admin.Exec(ctx, `UPDATE directories SET rate_per_minute = 100000 WHERE id = $1`, d.id); err != nil {
			t.Fatal(err)
		}
	}
	d := newDir(t, srv, "scimperf", nil)
	unlimited(d)
	ids := make([]string, nUsers)
	start := time.Now()
	parallel(t, workers, nUsers, func(i int) error {
		r, u := d.scim(http.MethodPost, "/Users", oktaUser(fmt.Sprintf("sync%06d@example.com", i), "Sync", strconv.Itoa(i)))
		if r.StatusCode != http.StatusCreated {
			return fmt.Errorf("user %d: %d %s", i, r.StatusCode, r.Body)
		}
		ids[i] = u["id"].(string)
		return nil
	})
	usersTook := time.Since(start)
	const groups = 200
	gStart := time.Now()
	parallel(t, workers, groups, func(i int) error {
		var members []any
		for j := i; j < nUsers; j += groups {
			members = append(members, map[string]any{"value": ids[j]})
		}
		r, _ := d.scim(http.MethodPost, "/Groups", map[string]any{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:Group"},
			"displayName": fmt.Sprintf("Group %03d", i), "members": members})
		if r.StatusCode != http.StatusCreated {
			return fmt.Errorf("group %d: %d %s", i, r.StatusCode, r.Body)
		}
		return nil
	})
	groupsTook := time.Since(gStart)
	t.Logf("initial sync: %d users in %s (%.0f users/s, %d workers); %d groups with %d members each in %s; total %s",
		nUsers, usersTook.Round(time.Millisecond), float64(nUsers)/usersTook.Seconds(), workers,
		groups, nUsers/groups, groupsTook.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))

	// A tenant of nTenant users, seeded by SQL (accounts and their directory records), then
	// the look-ups an IdP makes, through HTTP.
	big := newDir(t, srv, "scimbig", map[string]any{"name": "Entra", "provider": "entra"})
	unlimited(big)
	seed := time.Now()
	if _, err := db.Admin.Exec(ctx, `
		WITH u AS (
			INSERT INTO users (tenant_id, email, name, email_verified_at)
			SELECT $1, 'big' || lpad(i::text, 7, '0') || '@example.com', 'Big ' || i, now() FROM generate_series(1, $3::int) i
			RETURNING id, email)
		INSERT INTO directory_users (tenant_id, user_id, directory_id, user_name, external_id, attributes)
		SELECT $1, u.id, $2, u.email, 'ext-' || split_part(u.email, '@', 1),
		       jsonb_build_object('emails', jsonb_build_array(jsonb_build_object('value', u.email, 'primary', true, 'type', 'work'),
		           jsonb_build_object('value', 'Home.' || u.email, 'type', 'home')))
		FROM u`, big.Tenant.ID, big.id, nTenant); err != nil {
		t.Fatalf("seed: %v", err)
	}
	// The address keys the application writes with every record (migration 000024).
	if _, err := db.Admin.Exec(ctx, `INSERT INTO directory_user_emails (tenant_id, user_id, value_key)
		SELECT du.tenant_id, du.user_id, lower(e->>'value') FROM directory_users du, jsonb_array_elements(du.attributes->'emails') e
		WHERE du.tenant_id = $1`, big.Tenant.ID); err != nil {
		t.Fatalf("seed keys: %v", err)
	}
	if _, err := db.Admin.Exec(ctx, `ANALYZE users; ANALYZE directory_users; ANALYZE directory_user_emails`); err != nil {
		t.Fatal(err)
	}
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		t.Logf("load average before the look-ups: %s", strings.TrimSpace(string(la)))
	}
	t.Logf("seeded %d users by SQL in %s", nTenant, time.Since(seed).Round(time.Millisecond))
	for _, q := range []struct{ name, filter string }{
		{"userName eq", `userName eq "BIG%07d@example.com"`},
		{"externalId eq", `externalId eq "ext-big%07d"`},
		{"emails.value eq", `emails.value eq "HOME.big%07d@example.com"`},
		{"emails[type eq \"work\"].value eq", `emails[type eq "work"].value eq "big%07d@example.com"`},
		{"userName eq or emails.value eq", `userName eq "big%07d@example.com" or emails.value eq "home.big0000001@example.com"`},
		{"displayName co (Go evaluation)", `displayName co "Big %d"`},
		{"emails.value co (Go evaluation)", `emails.value co "big%07d@"`},
	} {
		n := 200
		if strings.HasSuffix(q.name, "(Go evaluation)") {
			n = 5
		}
		var lat []time.Duration
		for i := 0; i < n; i++ {
			f := q.filter
			if strings.Contains(f, "%") {
				f = fmt.Sprintf(q.filter, 1+(i*7919)%nTenant)
			}
			t0 := time.Now()
			r, list := big.scim(http.MethodGet, "/Users?count=10&filter="+url.QueryEscape(f), nil)
			lat = append(lat, time.Since(t0))
			if r.StatusCode != 200 {
				t.Fatalf("%s: %d %s", f, r.StatusCode, r.Body)
			}
			if tr, _ := list["totalResults"].(float64); tr < 1 {
				t.Fatalf("%s: no match: %s", f, r.Body)
			}
		}
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		t.Logf("list with filter %s at %d users: %d requests, p50 %s, p95 %s, max %s", q.name, nTenant, n,
			lat[n/2].Round(10*time.Microsecond), lat[n*95/100].Round(10*time.Microsecond), lat[n-1].Round(10*time.Microsecond))
	}
	if la, err := os.ReadFile("/proc/loadavg"); err == nil {
		t.Logf("load average after the look-ups: %s", strings.TrimSpace(string(la)))
	}
}

// parallel runs f(0…n-1) on workers goroutines and fails the test on the first error.
func parallel(t *testing.T, workers, n int, f func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	next := make(chan int)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := f(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	if first != nil {
		t.Fatal(first)
	}
}
