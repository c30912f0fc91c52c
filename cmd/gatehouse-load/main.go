// Command gatehouse-load drives a running Gatehouse over HTTP and measures it against the
// physical limits of the machine, measured in the same run (docs/performance.md;
// scripts/perf.sh runs everything with one command).
//
//	gatehouse-load setup -idp DIR -tenants-dir DIR -tenants 20   # load IdP + tenant files
//	gatehouse-load run -url http://127.0.0.1:8080 -idp DIR -mailbox DATA/mail -json r.json -svg r.svg
//	gatehouse-load scale -url … -admin-db-url … -json s.json     # 10 → 10,000 tenants, 1k → 1M users
//	gatehouse-load chart -json r.json -svg r.svg                 # re-render a chart
//	gatehouse-load run … -phases oidc                            # the OpenID Provider alone
//
// `run` measures the session check against a bare net/http handler serving the same JSON
// from memory, login against the argon2id hash rate, the SAML ACS against bare crewjam
// parsing of the same responses, sign-up with mail and confirmation, the OpenID Provider
// (code exchange and refresh against two RS256 signatures per token response, userinfo and
// introspection against a bare handler), webhooks (events per second from sign-ups to
// deliveries acknowledged by a verifying receiver in this process, and sign-up with an
// endpoint subscribed vs without), and a realistic mix over many tenants; per operation
// requests/s, p50/p95/p99 and errors.
//
// Without a subcommand it measures one session check (the older form):
//
//	gatehouse-load -url http://127.0.0.1:8080/api/v1/session -host acme.localhost -token T
//	gatehouse-load -bare -token T
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "gatehouse-load:", err)
		os.Exit(1)
	}
}

// Result is one measurement.
type Result struct {
	Label    string        `json:"label"`
	Requests int           `json:"requests"`
	Errors   int           `json:"errors"`
	RPS      float64       `json:"rps"`
	P50      time.Duration `json:"p50_ns"`
	P99      time.Duration `json:"p99_ns"`
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "setup":
			return runSetup(args[1:], out)
		case "run":
			return runReport(ctx, args[1:], out)
		case "scale":
			return runScale(ctx, args[1:], out)
		case "chart":
			return runChart(args[1:])
		case "session":
			return runSession(ctx, args[1:], out)
		case "bare-server":
			return runBareServer(os.Stdin, out)
		}
		return fmt.Errorf("unknown command %q: setup, run, scale, chart or session", args[0])
	}
	return runSession(ctx, args, out)
}

func runSession(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("gatehouse-load", flag.ContinueOnError)
	target := fs.String("url", "", "URL of the session check (GET /api/v1/session)")
	host := fs.String("host", "", "Host header (the tenant host)")
	tok := fs.String("token", "", "session token (bearer)")
	conc := fs.Int("c", 32, "concurrent connections")
	dur := fs.Duration("d", 20*time.Second, "duration")
	bare := fs.Bool("bare", false, "measure a bare net/http handler serving the same JSON from memory instead")
	label := fs.String("label", "", "label of the result line")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *tok == "" {
		return errors.New("-token is required")
	}
	if *dur <= 0 || *dur > 10*time.Minute || *conc < 1 || *conc > 1024 {
		return errors.New("-d must be in (0, 10m] and -c in [1, 1024]")
	}
	if *bare {
		u, stop, err := startBareMany(map[string]bool{*tok: true})
		if err != nil {
			return err
		}
		defer stop()
		*target = u
		if *label == "" {
			*label = "bare net/http"
		}
	}
	if *target == "" {
		return errors.New("-url is required (or -bare)")
	}
	if !isLoopback(*target) {
		return errors.New("-url must point at a loopback address: this tool loads only this machine")
	}
	if *label == "" {
		*label = *target
	}
	r, err := load(ctx, *target, *host, *tok, *conc, *dur)
	if err != nil {
		return err
	}
	r.Label = *label
	if *asJSON {
		return json.NewEncoder(out).Encode(r)
	}
	fmt.Fprintf(out, "%-28s %9.0f req/s  p50 %8s  p99 %8s  (%d requests, %d errors, %d connections, %s)\n",
		r.Label, r.RPS, r.P50.Round(time.Microsecond), r.P99.Round(time.Microsecond), r.Requests, r.Errors, *conc, *dur)
	return nil
}

func isLoopback(u string) bool {
	for _, p := range []string{"http://127.", "http://localhost:", "http://[::1]:"} {
		if strings.HasPrefix(u, p) {
			return true
		}
	}
	return false
}

// load runs conc workers for dur, each on its own keep-alive connection.
func load(ctx context.Context, target, host, tok string, conc int, dur time.Duration) (Result, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc, DisableCompression: true}
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	defer tr.CloseIdleConnections()
	// One request first: fail fast on a wrong token or URL.
	if code, err := get(client, target, host, tok); err != nil || code != 200 {
		return Result{}, fmt.Errorf("probe request: status %d, %v", code, err)
	}
	deadline := time.Now().Add(dur)
	lat := make([][]time.Duration, conc)
	errs := make([]int, conc)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range conc {
		wg.Go(func() {
			l := make([]time.Duration, 0, 1<<16)
			for time.Now().Before(deadline) && ctx.Err() == nil {
				t0 := time.Now()
				code, err := get(client, target, host, tok)
				if err != nil || code != 200 {
					errs[i]++
					continue
				}
				l = append(l, time.Since(t0))
			}
			lat[i] = l
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	var all []time.Duration
	r := Result{}
	for i := range conc {
		all = append(all, lat[i]...)
		r.Errors += errs[i]
	}
	slices.Sort(all)
	r.Requests = len(all)
	r.RPS = float64(len(all)) / elapsed.Seconds()
	if len(all) > 0 {
		r.P50 = all[len(all)/2]
		r.P99 = all[len(all)*99/100]
	}
	return r, nil
}

func get(c *http.Client, target, host, tok string) (int, error) {
	req, err := http.NewRequest(http.MethodGet, target, nil)
	if err != nil {
		return 0, err
	}
	if host != "" {
		req.Host = host
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// startBareMany serves GET /api/v1/session from a map in memory with a whoami body of the
// same shape and size as Gatehouse's, for each of the tokens.
func startBareMany(tokens map[string]bool) (string, func(), error) { return startBare(tokens, nil) }

// startBare is startBareMany that also answers each path of answers (the OpenID
// Provider's userinfo and introspection) with that body, for the same tokens: as a bearer
// token (userinfo), or as the form's token with client credentials (introspection).
func startBare(tokens map[string]bool, answers map[string][]byte) (string, func(), error) {
	body := map[string]any{
		"session": map[string]any{"id": "0b0f6c1e-6a8e-4f53-9d7e-1d2b7c3a4e5f", "created_at": time.Now(), "last_active_at": time.Now(),
			"expires_at": time.Now().Add(12 * time.Hour), "auth_time": time.Now(), "methods": []string{"password"}, "aal": "aal1"},
		"user": map[string]any{"id": "5a6b7c8d-1e2f-4a5b-8c9d-0e1f2a3b4c5d", "email": "user@acme.example", "name": "Demo User",
			"status": "active", "email_verified": true, "email_verified_at": time.Now(), "created_at": time.Now()},
		"tenant": map[string]any{"slug": "acme", "name": "Acme"},
	}
	// The answer is encoded once: the bare handler is a map lookup and a write, the least a
	// server can do per request (encoding it per request with encoding/json cost more than
	// Gatehouse's hand-written encoder, which made the "bound" slower than the product
	// under the lean client).
	encoded, err := json.Marshal(body)
	if err != nil {
		return "", nil, err
	}
	encoded = append(encoded, '\n')
	sessions := map[string][]byte{}
	for tok := range tokens {
		sessions[tok] = encoded
	}
	contentType := []string{"application/json; charset=utf-8"}
	var mu sync.RWMutex
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a, ok := answers[r.URL.Path]; ok {
			serveBareOIDC(w, r, tokens, a)
			return
		}
		t, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		mu.RLock()
		b, ok := sessions[t]
		mu.RUnlock()
		if !ok {
			http.Error(w, `{"error":{"code":"unauthenticated"}}`, 401)
			return
		}
		w.Header()["Content-Type"] = contentType
		_, _ = w.Write(b)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String() + "/api/v1/session", func() { _ = srv.Close() }, nil
}

// serveBareOIDC answers a userinfo (bearer token) or introspection request (form token,
// client credentials) for a known token with the body captured from Gatehouse.
func serveBareOIDC(w http.ResponseWriter, r *http.Request, tokens map[string]bool, body []byte) {
	t, bearer := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !bearer {
		if _, _, ok := r.BasicAuth(); !ok || r.ParseForm() != nil {
			http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
			return
		}
		t = r.PostForm.Get("token")
	}
	if !tokens[t] {
		http.Error(w, `{"error":"invalid_token"}`, http.StatusUnauthorized)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(body)
}
