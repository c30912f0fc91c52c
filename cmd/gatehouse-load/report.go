package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/password"
)

// Report is everything one `gatehouse-load run` measured, written as JSON.
type Report struct {
	Machine Machine        `json:"machine"`
	Started time.Time      `json:"started"`
	Config  map[string]any `json:"config"`
	Bounds  []Bound        `json:"bounds"`
	Phases  []PhaseResult  `json:"phases"`
	Ratios  []Ratio        `json:"ratios"`
	Scale   *ScaleResult   `json:"scale,omitempty"`
	// Webhooks is the webhooks run (events per second, the sign-up's added cost).
	Webhooks *WebhookResult `json:"webhooks,omitempty"`
}

// Ratio compares the product with its physical limit measured in the same run.
type Ratio struct {
	Name     string  `json:"name"`
	Product  float64 `json:"product"`
	Limit    float64 `json:"limit"`
	Ratio    float64 `json:"ratio"`
	Target   string  `json:"target"`
	Met      *bool   `json:"met,omitempty"`
	Unit     string  `json:"unit"`
	Footnote string  `json:"footnote,omitempty"`
}

// Machine states the conditions of the run.
type Machine struct {
	Cores   int    `json:"cores"`
	CPU     string `json:"cpu"`
	MemGiB  int    `json:"mem_gib"`
	Go      string `json:"go"`
	LoadAvg string `json:"loadavg_before"`
}

func readMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), Go: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int
		fmt.Sscanf(string(b), "MemTotal: %d kB", &kb)
		m.MemGiB = (kb + 512*1024) / (1024 * 1024)
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		m.LoadAvg = strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return m
}

type runFlags struct {
	url, uncachedURL, domain, prefix, idpDir, mailDir, jsonOut, svgOut, phases, mix string
	pprofURL, pprofOut                                                              string
	tenants, perTenant, conc, concLogin, acsN, employees                            int
	dur                                                                             time.Duration
	argon                                                                           password.Params
	prof                                                                            profiler
}

// runReport measures a running Gatehouse: each hot path against its physical limit in the
// same run, then a realistic mix; prints a table, writes JSON and an SVG chart.
func runReport(ctx context.Context, args []string, out io.Writer) error {
	f := runFlags{argon: password.OWASP}
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.StringVar(&f.url, "url", "", "Gatehouse, e.g. http://127.0.0.1:8080 (with GATEHOUSE_TRUSTED_PROXIES=127.0.0.1/32)")
	fs.StringVar(&f.uncachedURL, "uncached-url", "", "optional second node on the same database with GATEHOUSE_SESSION_CACHE_SIZE=0")
	fs.StringVar(&f.domain, "domain", "localhost", "base domain: tenants are {slug}.{domain}")
	fs.StringVar(&f.prefix, "prefix", "load", "tenant slug prefix given to setup")
	fs.IntVar(&f.tenants, "tenants", 20, "number of load tenants given to setup")
	fs.StringVar(&f.idpDir, "idp", "", "the load IdP directory written by setup")
	fs.StringVar(&f.mailDir, "mailbox", "", "the directory mailer's directory (gatehouse dev: DATA/mail)")
	fs.IntVar(&f.perTenant, "users", 5, "users signed up per tenant before the timed runs")
	fs.IntVar(&f.employees, "employees", 20, "distinct SSO users per tenant")
	fs.IntVar(&f.conc, "c", 32, "concurrent clients")
	fs.IntVar(&f.concLogin, "c-login", 2*runtime.NumCPU(), "concurrent clients for the login run (more only queue for the hash)")
	fs.IntVar(&f.acsN, "acs-n", 5000, "SSO sign-ins prepared for the ACS run (answers are valid for 90 s)")
	fs.DurationVar(&f.dur, "d", 20*time.Second, "duration of each timed run")
	fs.StringVar(&f.phases, "phases", "session,login,acs,signup,oidc,webhooks,mix", "runs to do")
	fs.StringVar(&f.mix, "mix", "session_check=70,session_list=10,login=8,saml_acs=8,signup_verify=4", "operation weights of the mix")
	fs.StringVar(&f.prof.url, "pprof-url", "", "Gatehouse's GATEHOUSE_PPROF_ADDR as a URL: capture CPU and allocation profiles of the lean session check and login runs")
	fs.StringVar(&f.prof.dir, "profile-dir", "", "directory for the profiles of -pprof-url (session-lean.*.pprof, login.*.pprof)")
	fs.StringVar(&f.pprofURL, "acs-pprof-url", "", "the server's GATEHOUSE_PPROF_ADDR listener (http://127.0.0.1:PORT): CPU and allocation profiles of the timed ACS run")
	fs.StringVar(&f.pprofOut, "acs-pprof-out", "", "file name prefix of those profiles (PREFIX-cpu.pprof, PREFIX-allocs.pprof)")
	fs.StringVar(&f.jsonOut, "json", "", "write the report as JSON to this file")
	fs.StringVar(&f.svgOut, "svg", "", "write a chart of the report to this SVG file")
	argonM := fs.Uint("argon2-memory-kib", uint(password.OWASP.MemoryKiB), "the server's GATEHOUSE_ARGON2_MEMORY_KIB")
	argonT := fs.Uint("argon2-iterations", uint(password.OWASP.Iterations), "the server's GATEHOUSE_ARGON2_ITERATIONS")
	if err := fs.Parse(args); err != nil {
		return err
	}
	f.argon.MemoryKiB, f.argon.Iterations = uint32(*argonM), uint32(*argonT)
	if f.url == "" || f.idpDir == "" || f.mailDir == "" {
		return errors.New("run needs -url, -idp and -mailbox (see scripts/perf.sh)")
	}
	if f.dur <= 0 || f.conc < 1 || f.conc > 1024 || f.tenants < 1 || f.perTenant < 1 || f.employees < 1 || f.acsN < 1 {
		return errors.New("-d, -c, -tenants, -users, -employees and -acs-n must be positive (-c ≤ 1024)")
	}
	weights, err := parseMix(f.mix)
	if err != nil {
		return err
	}
	rep := &Report{Machine: readMachine(), Started: time.Now().UTC(), Config: map[string]any{
		"concurrency": f.conc, "login_concurrency": f.concLogin, "seconds_per_run": f.dur.Seconds(), "tenants": f.tenants,
		"users_per_tenant": f.perTenant, "sso_users_per_tenant": f.employees, "mix": f.mix}}
	w, err := f.workload(ctx)
	if err != nil {
		return err
	}
	defer w.g.close()
	logf := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }
	logf("machine: %d cores (%s), %d GiB, %s, load before: %s", rep.Machine.Cores, rep.Machine.CPU, rep.Machine.MemGiB, rep.Machine.Go, rep.Machine.LoadAvg)
	logf("preparing: %d tenants × %d users (sign-up, mail, confirm, sign-in over HTTP)", f.tenants, f.perTenant)
	if err := w.prepareUsers(ctx, f.perTenant, 8); err != nil {
		return err
	}
	has := func(p string) bool { return strings.Contains(","+f.phases+",", ","+p+",") }
	if has("session") {
		if err := f.sessionPhase(ctx, w, rep, logf); err != nil {
			return err
		}
	}
	if has("login") {
		if err := f.loginPhase(ctx, w, rep, logf); err != nil {
			return err
		}
	}
	if has("acs") {
		if err := f.acsPhase(ctx, w, rep, logf); err != nil {
			return err
		}
	}
	if has("signup") {
		p := runOps(ctx, "signup+verify", []op{{name: "signup_verify", weight: 1, fn: func(ctx context.Context, r *rand.Rand) error {
			_, err := w.signupVerify(ctx, w.randomTenant(r))
			return err
		}}}, f.conc, f.dur)
		rep.Phases = append(rep.Phases, p)
		printPhase(out, p)
		if b := rep.bound("argon2id"); b != nil {
			o := p.op("signup_verify")
			rep.Ratios = append(rep.Ratios, Ratio{Name: "signup+verify vs argon2id bound", Product: o.RPS, Limit: b.RPS,
				Ratio: o.RPS / b.RPS, Target: "none (one hash per sign-up)", Unit: "req/s"})
		}
	}
	if has("oidc") {
		if err := f.oidcPhase(ctx, w, rep, logf); err != nil {
			return err
		}
	}
	if has("webhooks") {
		if err := f.webhooksPhase(ctx, w, rep, logf); err != nil {
			return err
		}
	}
	if has("mix") {
		if err := f.mixPhase(ctx, w, weights, rep, out); err != nil {
			return err
		}
	}
	if w.mail.dupes > 0 {
		logf("WARNING: %d addresses received a second verification mail", w.mail.dupes)
	}
	printRatios(out, rep.Ratios)
	return rep.write(f.jsonOut, f.svgOut)
}

func (f runFlags) workload(ctx context.Context) (*workload, error) {
	g, err := newGatehouse(f.url, f.domain, f.conc)
	if err != nil {
		return nil, err
	}
	idp, err := loadIdP(f.idpDir)
	if err != nil {
		return nil, err
	}
	mb, err := newMailbox(f.mailDir)
	if err != nil {
		return nil, err
	}
	go mb.run(ctx)
	w := &workload{g: g, mail: mb, idp: idp, employees: f.employees, run: strconv.FormatInt(time.Now().UnixNano()%1e9, 36)}
	for i := range f.tenants {
		w.tenants = append(w.tenants, tenantSlug(f.prefix, i))
	}
	if err := w.fetchSP(); err != nil {
		return nil, err
	}
	return w, nil
}

func (f runFlags) sessionPhase(ctx context.Context, w *workload, rep *Report, logf func(string, ...any)) error {
	tokens := map[string]bool{}
	for _, u := range w.users {
		tokens[*u.token.Load()] = true
	}
	check := func(g *gatehouse) []op {
		return []op{{name: "session_check", weight: 1, fn: func(_ context.Context, r *rand.Rand) error {
			u := w.randomUser(r)
			return g.checkSession(u.slug, *u.token.Load())
		}}}
	}
	bareRun := func(name string, start func() (string, func(), error)) (PhaseResult, error) {
		u, stop, err := start()
		if err != nil {
			return PhaseResult{}, err
		}
		defer stop()
		g, err := newGatehouse(strings.TrimSuffix(u, "/api/v1/session"), f.domain, f.conc)
		if err != nil {
			return PhaseResult{}, err
		}
		defer g.close()
		return runOps(ctx, name, check(g), f.conc, f.dur), nil
	}
	logf("session check: bare net/http (in the load generator's process, then in a process of its own), then Gatehouse; then the bare process and Gatehouse under the lean client; %d clients, %s each", f.conc, f.dur)
	pin, err := bareRun("bare net/http session check (in-process)", func() (string, func(), error) { return startBareMany(tokens) })
	if err != nil {
		return err
	}
	pb, err := bareRun("bare net/http session check", func() (string, func(), error) { return startBareProcess(ctx, tokens) })
	if err != nil {
		return err
	}
	pg := runOps(ctx, "session check (cached)", check(w.g), f.conc, f.dur)
	rep.Phases = append(rep.Phases, pin, pb, pg)
	for _, p := range []PhaseResult{pin, pb, pg} {
		printPhase(logWriter{logf}, p)
	}
	// The same comparison with the lean client (lean.go): prebuilt requests, kept-alive
	// connections, minimal parsing, like wrk.
	reqs := leanRequests(w)
	bareURL, stopBare, err := startBareProcess(ctx, tokens)
	if err != nil {
		return err
	}
	bu, err := url.Parse(bareURL)
	if err != nil {
		stopBare()
		return err
	}
	plb := runLean(ctx, "bare net/http session check (lean client)", "session_check", bu.Host, reqs, f.conc, f.dur)
	stopBare()
	waitProf := f.prof.during(ctx, "session-lean", f.dur)
	plg := runLean(ctx, "session check (cached, lean client)", "session_check", w.g.base.Host, reqs, f.conc, f.dur)
	if err := waitProf(); err != nil {
		return err
	}
	rep.Phases = append(rep.Phases, plb, plg)
	for _, p := range []PhaseResult{plb, plg} {
		printPhase(logWriter{logf}, p)
	}
	bi, b, c := pin.op("session_check"), pb.op("session_check"), pg.op("session_check")
	lb, lc := plb.op("session_check"), plg.op("session_check")
	rep.Bounds = append(rep.Bounds, Bound{Name: "bare net/http", RPS: b.RPS,
		Note: "a net/http server process answering the same JSON from a map in memory, same clients (like Gatehouse: a process of its own)"},
		Bound{Name: "bare net/http, in-process", RPS: bi.RPS,
			Note: "the same handler inside the load generator's process (one Go runtime instead of two)"},
		Bound{Name: "bare net/http, lean client", RPS: lb.RPS,
			Note: "the bare handler process under the lean HTTP/1.1 client (prebuilt requests, keep-alive, minimal parsing, like wrk)"})
	rep.Ratios = append(rep.Ratios,
		Ratio{Name: "session check vs bare handler (req/s)", Product: c.RPS, Limit: b.RPS, Ratio: c.RPS / b.RPS, Target: "≥ 0.80", Met: ptr(c.RPS/b.RPS >= 0.80), Unit: "req/s"},
		Ratio{Name: "session check p99 vs bare p99", Product: c.P99ms, Limit: b.P99ms, Ratio: c.P99ms / b.P99ms, Target: "≤ 1.5", Met: ptr(c.P99ms/b.P99ms <= 1.5), Unit: "ms"},
		Ratio{Name: "session check vs bare, lean client (req/s)", Product: lc.RPS, Limit: lb.RPS, Ratio: lc.RPS / lb.RPS, Target: "≥ 0.80", Met: ptr(lc.RPS/lb.RPS >= 0.80), Unit: "req/s"},
		Ratio{Name: "session check p99 vs bare p99, lean client", Product: lc.P99ms, Limit: lb.P99ms, Ratio: lc.P99ms / lb.P99ms, Target: "≤ 1.5", Met: ptr(lc.P99ms/lb.P99ms <= 1.5), Unit: "ms"},
		Ratio{Name: "session check vs in-process bare (req/s)", Product: c.RPS, Limit: bi.RPS, Ratio: c.RPS / bi.RPS, Target: "(≥ 0.80)", Unit: "req/s",
			Footnote: "stricter: the bare handler shares the load generator's Go runtime"},
		Ratio{Name: "session check p99 vs in-process bare p99", Product: c.P99ms, Limit: bi.P99ms, Ratio: c.P99ms / bi.P99ms, Target: "(≤ 1.5)", Unit: "ms"})
	if f.uncachedURL != "" {
		u, err := newGatehouse(f.uncachedURL, f.domain, f.conc)
		if err != nil {
			return err
		}
		defer u.close()
		pu := runOps(ctx, "session check (uncached node)", check(u), f.conc, f.dur)
		rep.Phases = append(rep.Phases, pu)
		printPhase(logWriter{logf}, pu)
	}
	return nil
}

func (f runFlags) loginPhase(ctx context.Context, w *workload, rep *Report, logf func(string, ...any)) error {
	logf("login: argon2id bound, then Gatehouse, %d clients, %s each", f.concLogin, f.dur)
	b, err := argon2Bound(f.argon, f.dur/2)
	if err != nil {
		return err
	}
	rep.Bounds = append(rep.Bounds, b)
	logf("  bound: %.1f hashes/s (%s)", b.RPS, b.Note)
	waitProf := f.prof.during(ctx, "login", f.dur)
	p := runOps(ctx, "login", []op{{name: "login", weight: 1, fn: func(_ context.Context, r *rand.Rand) error {
		return w.login(w.randomUser(r))
	}}}, f.concLogin, f.dur)
	if err := waitProf(); err != nil {
		return err
	}
	rep.Phases = append(rep.Phases, p)
	printPhase(logWriter{logf}, p)
	o := p.op("login")
	rep.Ratios = append(rep.Ratios, Ratio{Name: "login vs argon2id bound", Product: o.RPS, Limit: b.RPS, Ratio: o.RPS / b.RPS,
		Target: "≥ 0.90", Met: ptr(o.RPS/b.RPS >= 0.90), Unit: "req/s"})
	return nil
}

func (f runFlags) acsPhase(ctx context.Context, w *workload, rep *Report, logf func(string, ...any)) error {
	// Every employee signs in once first, so the timed run measures returning users (an
	// identity lookup), not account creation.
	warm, err := w.prepareSSO(f.tenants*f.employees, 8)
	if err != nil {
		return err
	}
	for _, p := range warm {
		if err := w.postACS(p); err != nil {
			return fmt.Errorf("first SSO sign-in: %w", err)
		}
	}
	logf("SAML ACS: preparing %d SP-initiated sign-ins (start at Gatehouse, signed answer)", f.acsN)
	items, err := w.prepareSSO(f.acsN, 8)
	if err != nil {
		return err
	}
	b, err := crewjamBound(w.idp, w.sp, items, min(f.dur/2, 10*time.Second))
	if err != nil {
		return err
	}
	rep.Bounds = append(rep.Bounds, b)
	logf("  bound: %.0f responses/s (%s)", b.RPS, b.Note)
	var next = make(chan pendingSSO, len(items))
	for _, it := range items {
		next <- it
	}
	close(next)
	prof := f.startACSProfiles(ctx, f.dur, logf)
	p := runOps(ctx, "SAML ACS", []op{{name: "saml_acs", weight: 1, fn: func(context.Context, *rand.Rand) error {
		it, ok := <-next
		if !ok {
			return errExhausted
		}
		return w.postACS(it)
	}}}, f.conc, f.dur)
	if err := prof(); err != nil {
		return err
	}
	rep.Phases = append(rep.Phases, p)
	printPhase(logWriter{logf}, p)
	o := p.op("saml_acs")
	rep.Ratios = append(rep.Ratios, Ratio{Name: "SAML ACS vs bare crewjam", Product: o.RPS, Limit: b.RPS, Ratio: o.RPS / b.RPS,
		Target: "≥ 0.80", Met: ptr(o.RPS/b.RPS >= 0.80), Unit: "req/s"})
	return nil
}

func (f runFlags) mixPhase(ctx context.Context, w *workload, weights map[string]int, rep *Report, out io.Writer) error {
	fns := map[string]func(ctx context.Context, r *rand.Rand) error{
		"session_check": func(_ context.Context, r *rand.Rand) error { return w.sessionCheck(w.randomUser(r)) },
		"session_list":  func(_ context.Context, r *rand.Rand) error { return w.sessionList(w.randomUser(r)) },
		"login":         func(_ context.Context, r *rand.Rand) error { return w.login(w.randomUser(r)) },
		"signup_verify": func(ctx context.Context, r *rand.Rand) error {
			_, err := w.signupVerify(ctx, w.randomTenant(r))
			return err
		},
		// In the mix an SSO sign-in is the whole browser round: start at Gatehouse, the
		// IdP's signed answer, the ACS.
		"saml_acs": func(_ context.Context, r *rand.Rand) error {
			p, err := w.startSSO(w.randomTenant(r), r.IntN(w.employees))
			if err != nil {
				return err
			}
			return w.postACS(p)
		},
	}
	var ops []op
	for _, name := range []string{"session_check", "session_list", "login", "saml_acs", "signup_verify"} {
		if n := weights[name]; n > 0 {
			ops = append(ops, op{name: name, weight: n, fn: fns[name]})
		}
	}
	fmt.Fprintf(out, "mix: %s, %d clients, %s\n", f.mix, f.conc, f.dur)
	p := runOps(ctx, "mix", ops, f.conc, f.dur)
	rep.Phases = append(rep.Phases, p)
	printPhase(out, p)
	return nil
}

func parseMix(s string) (map[string]int, error) {
	known := map[string]bool{"session_check": true, "session_list": true, "login": true, "saml_acs": true, "signup_verify": true}
	out := map[string]int{}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(v)
		if !ok || err != nil || n < 0 || !known[k] {
			return nil, fmt.Errorf("-mix: %q: want op=weight with op one of session_check, session_list, login, saml_acs, signup_verify", part)
		}
		out[k] = n
	}
	return out, nil
}

func (r *Report) bound(name string) *Bound {
	for i := range r.Bounds {
		if r.Bounds[i].Name == name {
			return &r.Bounds[i]
		}
	}
	return nil
}

func (r *Report) write(jsonOut, svgOut string) error {
	r.finite()
	if jsonOut != "" {
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(jsonOut, append(b, '\n'), 0o644); err != nil {
			return err
		}
	}
	if svgOut != "" {
		if err := os.WriteFile(svgOut, renderSVG(r), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func printPhase(out io.Writer, p PhaseResult) {
	for _, o := range p.Ops {
		errs := ""
		if o.Errors > 0 {
			b, _ := json.Marshal(o.ErrorKinds)
			errs = " errors " + string(b)
		}
		fmt.Fprintf(out, "  %-32s %-14s %8.1f req/s  p50 %7.2f ms  p95 %7.2f ms  p99 %7.2f ms  (%d ok, %d errors)%s\n",
			p.Name, o.Op, o.RPS, o.P50ms, o.P95ms, o.P99ms, o.Requests, o.Errors, errs)
	}
}

func printRatios(out io.Writer, rs []Ratio) {
	fmt.Fprintln(out, "ratios to the physical limit, same run:")
	for _, r := range rs {
		met := ""
		if r.Met != nil {
			met = map[bool]string{true: "met", false: "MISSED"}[*r.Met]
		}
		fmt.Fprintf(out, "  %-40s %10.2f / %10.2f %-6s = %.2f  target %s %s\n", r.Name, r.Product, r.Limit, r.Unit, r.Ratio, r.Target, met)
	}
}

type logWriter struct{ logf func(string, ...any) }

func (l logWriter) Write(b []byte) (int, error) {
	l.logf("%s", strings.TrimSuffix(string(b), "\n"))
	return len(b), nil
}

func ptr[T any](v T) *T { return &v }

// finite makes a ratio with nothing to divide (a run that completed no request, a bound
// of zero) a 0 that is not met, instead of the NaN or infinity that JSON cannot carry.
func (r *Report) finite() {
	for i := range r.Ratios {
		q := &r.Ratios[i]
		if math.IsNaN(q.Ratio) || math.IsInf(q.Ratio, 0) {
			q.Ratio = 0
			if q.Met != nil {
				q.Met = ptr(false)
			}
			q.Footnote = strings.TrimSpace(q.Footnote + " no ratio: the run or its bound completed nothing")
		}
	}
}
