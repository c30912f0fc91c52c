package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/password"
)

// ScaleResult is how the session check and login cost as the data grows.
type ScaleResult struct {
	Points []ScalePoint `json:"points"`
	Flat   []Ratio      `json:"flatness"`
}

// ScalePoint is one measurement at one size of the database.
type ScalePoint struct {
	Axis            string    `json:"axis"` // tenants or users
	Tenants         int       `json:"tenants"`
	Users           int       `json:"users"`
	Sessions        int       `json:"sessions"`
	SessionCheck    OpResult  `json:"session_check"`
	SessionUncached *OpResult `json:"session_check_uncached,omitempty"`
	Login           OpResult  `json:"login"`
}

const (
	scaleTenantPrefix = "scale-t"
	scaleUsersSlug    = "scale-users"
	usersPerTenant    = 5 // in each tenant of the tenants axis
)

// runScale grows the database (rows written directly with SQL, as a restore would) and
// measures the session check and login over HTTP at each size, at low concurrency so the
// latency is the service time and not a queue.
func runScale(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("scale", flag.ContinueOnError)
	target := fs.String("url", "", "Gatehouse (with GATEHOUSE_TRUSTED_PROXIES=127.0.0.1/32)")
	uncached := fs.String("uncached-url", "", "optional node on the same database with the session cache off")
	domain := fs.String("domain", "localhost", "base domain")
	adminURL := fs.String("admin-db-url", "", "PostgreSQL superuser connection to the same database, for seeding")
	tenantSteps := fs.String("tenant-steps", "10,100,1000,10000", "tenant counts to measure at")
	userSteps := fs.String("user-steps", "1000,10000,100000,1000000", "user counts (in one tenant) to measure at")
	dur := fs.Duration("d", 5*time.Second, "duration of each measurement")
	conc := fs.Int("c", 4, "concurrent clients of the session check (login uses half)")
	sample := fs.Int("sample", 20, "tenants (or users) signed in for the session check at each point")
	jsonOut := fs.String("json", "", "write the result as JSON; with an existing `run` report, added to it")
	svgOut := fs.String("svg", "", "write the chart (with the run report given by -json) to this SVG file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *target == "" || *adminURL == "" {
		return errors.New("scale needs -url and -admin-db-url")
	}
	ts, err := parseSteps(*tenantSteps)
	if err != nil {
		return fmt.Errorf("-tenant-steps: %w", err)
	}
	us, err := parseSteps(*userSteps)
	if err != nil {
		return fmt.Errorf("-user-steps: %w", err)
	}
	g, err := newGatehouse(*target, *domain, *conc)
	if err != nil {
		return err
	}
	defer g.close()
	var gu *gatehouse
	if *uncached != "" {
		if gu, err = newGatehouse(*uncached, *domain, *conc); err != nil {
			return err
		}
		defer gu.close()
	}
	db, err := pgx.Connect(ctx, *adminURL)
	if err != nil {
		return fmt.Errorf("-admin-db-url: %w", err)
	}
	defer db.Close(ctx)
	hash, err := password.NewHasher(password.OWASP).Hash(ctx, loadPassword)
	if err != nil {
		return err
	}
	s := &scaler{db: db, hash: hash, g: g, gu: gu, dur: *dur, conc: *conc, sample: *sample, out: out}
	res := &ScaleResult{}
	fmt.Fprintf(out, "scale: tenants %v (×%d users each), users %v in one tenant; %d clients, %s per measurement\n", ts, usersPerTenant, us, *conc, *dur)
	for _, n := range ts {
		if err := s.seedTenants(ctx, n); err != nil {
			return err
		}
		var users []*user
		for _, i := range sampleIndexes(n, *sample) {
			users = append(users, &user{slug: fmt.Sprintf("%s%05d", scaleTenantPrefix, i), email: "user0@scale.example", password: loadPassword})
		}
		p, err := s.measure(ctx, "tenants", users)
		if err != nil {
			return err
		}
		res.Points = append(res.Points, p)
	}
	if err := s.ensureTenant(ctx, scaleUsersSlug); err != nil {
		return err
	}
	for _, n := range us {
		if err := s.seedUsers(ctx, scaleUsersSlug, n); err != nil {
			return err
		}
		var users []*user
		for _, i := range sampleIndexes(n, *sample) {
			users = append(users, &user{slug: scaleUsersSlug, email: fmt.Sprintf("user%d@scale.example", i), password: loadPassword})
		}
		p, err := s.measure(ctx, "users", users)
		if err != nil {
			return err
		}
		res.Points = append(res.Points, p)
	}
	res.Flat = flatness(res.Points)
	printRatios(out, res.Flat)
	if *jsonOut == "" {
		return nil
	}
	rep := &Report{}
	if b, err := os.ReadFile(*jsonOut); err == nil {
		if err := json.Unmarshal(b, rep); err != nil {
			return fmt.Errorf("%s: %w", *jsonOut, err)
		}
	}
	rep.Scale = res
	return rep.write(*jsonOut, *svgOut)
}

type scaler struct {
	db     *pgx.Conn
	hash   string
	g, gu  *gatehouse
	dur    time.Duration
	conc   int
	sample int
	out    io.Writer
}

func (s *scaler) ensureTenant(ctx context.Context, slug string) error {
	_, err := s.db.Exec(ctx, `INSERT INTO tenants (slug, name) VALUES ($1, $1) ON CONFLICT (slug) DO NOTHING`, slug)
	return err
}

// seedTenants makes scale-t00000 … up to n tenants exist, each with usersPerTenant users.
func (s *scaler) seedTenants(ctx context.Context, n int) error {
	t0 := time.Now()
	_, err := s.db.Exec(ctx, `
WITH t AS (
  INSERT INTO tenants (slug, name)
  SELECT $1 || lpad(g::text, 5, '0'), 'Scale ' || g FROM generate_series(0, $2 - 1) g
  ON CONFLICT (slug) DO NOTHING RETURNING id),
u AS (
  INSERT INTO users (tenant_id, email, email_verified_at)
  SELECT t.id, 'user' || k || '@scale.example', now() FROM t, generate_series(0, $3 - 1) k RETURNING tenant_id, id),
p AS (
  INSERT INTO password_credentials (tenant_id, user_id, hash) SELECT tenant_id, id, $4 FROM u)
INSERT INTO sessions (tenant_id, user_id, token_hash, idle_timeout, expires_at)
SELECT tenant_id, id, sha256(gen_random_uuid()::text::bytea), interval '1 hour', now() + interval '12 hours' FROM u`,
		scaleTenantPrefix, n, usersPerTenant, s.hash)
	if err != nil {
		return fmt.Errorf("seed %d tenants: %w", n, err)
	}
	if err := s.settle(ctx); err != nil {
		return err
	}
	fmt.Fprintf(s.out, "  seeded up to %d tenants in %s\n", n, time.Since(t0).Round(time.Millisecond))
	return nil
}

// seedUsers makes users user0@ … up to n exist in the tenant, each with one session.
func (s *scaler) seedUsers(ctx context.Context, slug string, n int) error {
	t0 := time.Now()
	var have int
	if err := s.db.QueryRow(ctx, `SELECT count(*) FROM users WHERE tenant_id = (SELECT id FROM tenants WHERE slug = $1)`, slug).Scan(&have); err != nil {
		return err
	}
	for from := have; from < n; from += 100000 {
		to := min(from+100000, n)
		_, err := s.db.Exec(ctx, `
WITH u AS (
  INSERT INTO users (tenant_id, email, email_verified_at)
  SELECT (SELECT id FROM tenants WHERE slug = $1), 'user' || g || '@scale.example', now()
  FROM generate_series($2::int, $3::int - 1) g RETURNING tenant_id, id),
p AS (
  INSERT INTO password_credentials (tenant_id, user_id, hash) SELECT tenant_id, id, $4 FROM u)
INSERT INTO sessions (tenant_id, user_id, token_hash, idle_timeout, expires_at)
SELECT tenant_id, id, sha256(gen_random_uuid()::text::bytea), interval '1 hour', now() + interval '12 hours' FROM u`,
			slug, from, to, s.hash)
		if err != nil {
			return fmt.Errorf("seed users %d–%d: %w", from, to, err)
		}
	}
	if err := s.settle(ctx); err != nil {
		return err
	}
	fmt.Fprintf(s.out, "  seeded up to %d users in %s in %s\n", n, slug, time.Since(t0).Round(time.Millisecond))
	return nil
}

// settle brings the database to a steady state before a measurement: the seeded tables
// vacuumed and analysed (otherwise autovacuum starts on them in the middle of the next
// measurement), no autovacuum worker running, the pages written out (CHECKPOINT, then the
// operating system's dirty pages) and the disk quiet — a sign-in commits three times and
// each commit waits for the disk.
func (s *scaler) settle(ctx context.Context) error {
	if _, err := s.db.Exec(ctx, "VACUUM ANALYZE tenants, users, password_credentials, sessions"); err != nil {
		return err
	}
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); {
		var n int
		if err := s.db.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'").Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			break
		}
		if err := sleepCtx(ctx, 500*time.Millisecond); err != nil {
			return err
		}
	}
	if _, err := s.db.Exec(ctx, "CHECKPOINT"); err != nil {
		return err
	}
	syscall.Sync() // the database is on this machine
	return sleepCtx(ctx, 3*time.Second)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// measure signs the sample in (which also warms nothing but their own sessions) and runs
// the session check on the cached node (and the uncached one) and login.
func (s *scaler) measure(ctx context.Context, axis string, users []*user) (ScalePoint, error) {
	w := &workload{g: s.g, users: users}
	for _, u := range users {
		if err := w.login(u); err != nil {
			return ScalePoint{}, fmt.Errorf("sign-in of %s in %s: %w", u.email, u.slug, err)
		}
	}
	p := ScalePoint{Axis: axis}
	if err := s.db.QueryRow(ctx, `SELECT (SELECT count(*) FROM tenants), (SELECT count(*) FROM users), (SELECT count(*) FROM sessions)`).Scan(&p.Tenants, &p.Users, &p.Sessions); err != nil {
		return p, err
	}
	check := func(g *gatehouse) []op {
		return []op{{name: "session_check", weight: 1, fn: func(_ context.Context, r *rand.Rand) error {
			u := w.randomUser(r)
			return g.checkSession(u.slug, *u.token.Load())
		}}}
	}
	// Unmeasured first: the sample's sessions enter the cache and the first requests after a
	// quiet period (connections, scheduler, garbage collector) do not land in the figure.
	runOps(ctx, "warm-up", check(s.g), s.conc, 2*time.Second)
	if s.gu != nil {
		runOps(ctx, "warm-up", check(s.gu), s.conc, time.Second)
	}
	p.SessionCheck = runOps(ctx, "session", check(s.g), s.conc, s.dur).Ops[0]
	if s.gu != nil {
		o := runOps(ctx, "session uncached", check(s.gu), s.conc, s.dur).Ops[0]
		p.SessionUncached = &o
	}
	p.Login = runOps(ctx, "login", []op{{name: "login", weight: 1, fn: func(_ context.Context, r *rand.Rand) error {
		return w.login(w.randomUser(r))
	}}}, max(1, s.conc/2), s.dur).Ops[0]
	line := fmt.Sprintf("  %-7s %6d tenants %8d users %8d sessions: session p50 %.2f ms p99 %.2f ms",
		axis, p.Tenants, p.Users, p.Sessions, p.SessionCheck.P50ms, p.SessionCheck.P99ms)
	if p.SessionUncached != nil {
		line += fmt.Sprintf(" | uncached p50 %.2f ms p99 %.2f ms", p.SessionUncached.P50ms, p.SessionUncached.P99ms)
	}
	fmt.Fprintf(s.out, "%s | login p50 %.1f ms p99 %.1f ms (errors %d/%d/%d)\n", line, p.Login.P50ms, p.Login.P99ms,
		p.SessionCheck.Errors, opErrors(p.SessionUncached), p.Login.Errors)
	return p, nil
}

func opErrors(o *OpResult) int {
	if o == nil {
		return 0
	}
	return o.Errors
}

// flatness compares p50 at the largest size with p50 at the smallest, per axis and op.
func flatness(points []ScalePoint) []Ratio {
	var out []Ratio
	for _, axis := range []string{"tenants", "users"} {
		var first, last *ScalePoint
		for i := range points {
			if points[i].Axis == axis {
				if first == nil {
					first = &points[i]
				}
				last = &points[i]
			}
		}
		if first == nil || first == last {
			continue
		}
		size := func(p *ScalePoint) int {
			if axis == "tenants" {
				return p.Tenants
			}
			return p.Users
		}
		add := func(name string, a, b float64) {
			out = append(out, Ratio{Name: fmt.Sprintf("%s p50 at %d vs %d %s", name, size(last), size(first), axis),
				Product: b, Limit: a, Ratio: b / a, Target: "≤ 1.20", Met: ptr(b/a <= 1.20), Unit: "ms"})
		}
		add("session check", first.SessionCheck.P50ms, last.SessionCheck.P50ms)
		if first.SessionUncached != nil && last.SessionUncached != nil {
			add("uncached check", first.SessionUncached.P50ms, last.SessionUncached.P50ms)
		}
		add("login", first.Login.P50ms, last.Login.P50ms)
	}
	return out
}

func parseSteps(s string) ([]int, error) {
	var out []int
	for _, part := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || n < 1 || n > 10_000_000 || (len(out) > 0 && n <= out[len(out)-1]) {
			return nil, fmt.Errorf("%q: want increasing positive counts", s)
		}
		out = append(out, n)
	}
	return out, nil
}

// sampleIndexes picks k distinct indexes spread over [0, n).
func sampleIndexes(n, k int) []int {
	k = min(k, n)
	out := make([]int, 0, k)
	for i := range k {
		out = append(out, i*n/k+(n/k)/2)
	}
	return out
}
