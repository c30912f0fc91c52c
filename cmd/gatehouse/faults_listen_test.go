package main_test

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// send is one request to a node, without failing the test (it runs on load goroutines).
func send(c *http.Client, n *node, method, host, path, bearer, xff string, body any) (int, []byte, error) {
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d%s", n.port, path), r)
	req.Host = host
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b, nil
}

// check is one session check on B, as the analysis needs it.
type check struct {
	tok        int
	start, end time.Time
	code       int // 0: transport error
}

// victim is a session revoked during the test.
type victim struct {
	token, id, owner string
	class            string    // what the listeners were doing around the revoke
	sent, resp       time.Time // the revoke request went out; A answered it
	refused          time.Time // the first refusal on B seen by the prober
	refusalRTT       time.Duration
	accepted         int // checks of the prober B accepted after A's answer
}

// TestFaultListenKilled: two nodes; B answers a session-check load from a cache that
// revocations invalidate through LISTEN/NOTIFY. The LISTEN connections of both nodes are
// killed (pg_terminate_backend) again and again — just before, during and just after
// revocations made through A, while they are down and right after they reconnect. Every
// revoked token is refused by B within 100 ms of A's answer, no check on B accepts it
// after that, B refuses no live token, and nothing answers 5xx.
func TestFaultListenKilled(t *testing.T) {
	faultsOnly(t)
	const bound = 100 * time.Millisecond
	const users, perUser, loaders, cycles = 5, 45, 6, 11
	ctx := context.Background()
	bin := buildBinary(t)
	d := testutil.FreshDB(t)
	p := tenant.DefaultPolicy()
	p.Verification.Mode = tenant.VerificationOptional
	p.Sessions.NewDeviceNotice = false
	ten, err := tenant.NewService(d.Store, time.Now).Create(ctx, tenant.CreateInput{Slug: testutil.UniqueSlug("listen"), Name: "Listen", Policy: &p})
	if err != nil {
		t.Fatal(err)
	}
	host := ten.Tenant.Slug + ".localhost"
	// Cheap hashes: hundreds of logins set the test up; hashing is not what it measures.
	env := []string{"GATEHOUSE_TRUSTED_PROXIES=127.0.0.1", "GATEHOUSE_ARGON2_MEMORY_KIB=8192", "GATEHOUSE_ARGON2_ITERATIONS=1"}
	a, b := startServe(t, bin, "A", d.AppURL, env...), startServe(t, bin, "B", d.AppURL, env...)
	client := &http.Client{Timeout: 5 * time.Second}

	setup := time.Now()
	// Sessions: users × perUser victims, and one session per user that revokes the others.
	var ip atomic.Int64
	xff := func() string { i := ip.Add(1); return fmt.Sprintf("10.9.%d.%d", i/250%250, i%250+1) }
	type sess struct{ token, id string }
	login := func(n *node, email string) (sess, error) {
		code, body, err := send(client, n, "POST", host, "/api/v1/login", "", xff(), map[string]string{"email": email, "password": "purple monkey dishwasher"})
		if err != nil || code != 200 {
			return sess{}, fmt.Errorf("login %s on %s: %d %v %s", email, n.name, code, err, body)
		}
		var r struct{ Session struct{ ID, Token string } }
		if err := json.Unmarshal(body, &r); err != nil || r.Session.Token == "" {
			return sess{}, fmt.Errorf("login: %v %s", err, body)
		}
		return sess{r.Session.Token, r.Session.ID}, nil
	}
	var victims []*victim
	var owners []string
	for u := range users {
		email := fmt.Sprintf("listen%d@example.com", u)
		if code, body, err := send(client, a, "POST", host, "/api/v1/signup", "", xff(), map[string]string{"email": email, "password": "purple monkey dishwasher"}); err != nil || code != 202 {
			t.Fatalf("signup: %d %v %s", code, err, body)
		}
		owner, err := login(a, email)
		if err != nil {
			t.Fatal(err)
		}
		owners = append(owners, owner.token)
		vs := make([]*victim, perUser)
		var wg sync.WaitGroup
		var lerr atomic.Value
		for w := range 4 {
			wg.Go(func() {
				for i := w; i < perUser; i += 4 {
					s, err := login([]*node{a, b}[i%2], email)
					if err != nil {
						lerr.Store(err)
						return
					}
					vs[i] = &victim{token: s.token, id: s.id, owner: owner.token}
				}
			})
		}
		wg.Wait()
		if err, _ := lerr.Load().(error); err != nil {
			t.Fatal(err)
		}
		victims = append(victims, vs...)
	}
	// Token i < len(victims) is victims[i]; the owners follow.
	tokens := make([]string, 0, len(victims)+len(owners))
	for _, v := range victims {
		tokens = append(tokens, v.token)
	}
	tokens = append(tokens, owners...)
	rand.Shuffle(len(victims), func(i, j int) {
		victims[i], victims[j] = victims[j], victims[i]
		tokens[i], tokens[j] = tokens[j], tokens[i]
	})

	// The load on B: half the checks on the session being revoked (or just revoked), half
	// on any session.
	var hot atomic.Int64
	hot.Store(-1)
	loadClient := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2 * loaders}}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	logs := make([][]check, loaders+1) // the last one is the prober's
	for g := range loaders {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := int(hot.Load())
				if i < 0 || rand.IntN(2) == 0 {
					i = rand.IntN(len(tokens))
				}
				c := check{tok: i, start: time.Now()}
				c.code, _, _ = send(loadClient, b, "GET", host, "/api/v1/session", tokens[i], "", nil)
				c.end = time.Now()
				logs[g] = append(logs[g], c)
				time.Sleep(time.Millisecond) // a steady load, not a flood that starves the host
			}
		})
	}
	defer func() { // on an early t.Fatal too
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	probe := func(i int) check {
		c := check{tok: i, start: time.Now()}
		c.code, _, _ = send(client, b, "GET", host, "/api/v1/session", tokens[i], "", nil)
		c.end = time.Now()
		logs[loaders] = append(logs[loaders], c)
		return c
	}

	// The listeners: killed with pg_terminate_backend; up again when both nodes' new
	// connections have run LISTEN (killed backends can linger in pg_stat_activity a moment).
	killedPIDs := []int32{} // not nil: pid <> ALL(NULL) is never true
	var kills []time.Time
	kill := func() int {
		var pids []int32
		err := d.Admin.QueryRow(ctx, `SELECT coalesce(array_agg(pid) FILTER (WHERE pg_terminate_backend(pid)), '{}') FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = 'gatehouse-listener'`).Scan(&pids)
		if err != nil {
			t.Error(err)
		}
		killedPIDs = append(killedPIDs, pids...)
		kills = append(kills, time.Now())
		return len(pids)
	}
	listenersUp := func() bool {
		var n int
		err := d.Admin.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
			AND application_name = 'gatehouse-listener' AND query LIKE 'LISTEN%' AND pid <> ALL($1)`, killedPIDs).Scan(&n)
		if err != nil {
			t.Error(err)
		}
		return n >= 2
	}

	next := 0
	revoke := func(class string, before, after func()) bool {
		if next >= len(victims) {
			return false
		}
		i := next
		v := victims[i]
		next++
		for range 2 { // B has it, cached when its listener is up
			if c := probe(i); c.code != 200 {
				t.Errorf("%s: B refuses a live session before its revocation: %d", class, c.code)
			}
		}
		hot.Store(int64(i))
		v.class = class
		if before != nil {
			before()
		}
		v.sent = time.Now()
		code, body, err := send(client, a, "DELETE", host, "/api/v1/sessions/"+v.id, v.owner, "", nil)
		v.resp = time.Now()
		if err != nil || code != 204 {
			t.Errorf("%s: revoke on A: %d %v %s", class, code, err, body)
		}
		if after != nil {
			after()
		}
		for {
			c := probe(i)
			if c.code == 401 {
				v.refused, v.refusalRTT = c.end, c.end.Sub(c.start)
				return true
			}
			v.accepted++
			if c.code != 200 || c.end.Sub(v.resp) > 5*time.Second {
				t.Errorf("%s: B still answers %d for a session revoked %v ago", class, c.code, c.end.Sub(v.resp))
				return true
			}
			time.Sleep(time.Millisecond)
		}
	}

	t.Logf("%d sessions of %d users set up in %v", len(tokens), users, time.Since(setup).Round(time.Millisecond))
	var reconnects []time.Duration
	start := time.Now()
	for !listenersUp() {
		if time.Since(start) > 15*time.Second {
			t.Fatal("the listeners are not up")
		}
		time.Sleep(5 * time.Millisecond)
	}
	for cyc := range cycles {
		time.Sleep(time.Duration(rand.IntN(300)) * time.Millisecond) // the load fills B's cache
		revoke("connected", nil, nil)
		var n int
		switch cyc % 3 {
		case 0:
			revoke("killed just before", func() { n = kill() }, nil)
		case 1:
			var kw sync.WaitGroup
			revoke("killed during", func() {
				kw.Go(func() { time.Sleep(time.Duration(rand.IntN(4000)) * time.Microsecond); n = kill() })
			}, nil)
			kw.Wait()
		case 2:
			revoke("killed just after", nil, func() { n = kill() })
		}
		if n < 2 {
			t.Errorf("cycle %d: killed %d listener connections, want both nodes'", cyc, n)
		}
		// While they are down (as long as sessions are left for the cycles to come), then
		// as soon as they are back.
		killed := kills[len(kills)-1]
		var lastDown time.Time
		for !listenersUp() {
			if time.Since(killed) > 15*time.Second {
				t.Fatalf("cycle %d: the listeners did not reconnect within 15 s", cyc)
			}
			if time.Since(lastDown) > 200*time.Millisecond && len(victims)-next > (cycles-cyc)*4 {
				revoke("listener down", nil, nil)
				lastDown = time.Now()
			}
			time.Sleep(5 * time.Millisecond)
		}
		reconnects = append(reconnects, time.Since(killed))
		revoke("just reconnected", nil, nil)
	}
	time.Sleep(300 * time.Millisecond) // the load goes on checking the last revoked tokens
	close(stop)
	wg.Wait()
	elapsed := time.Since(start)

	// Latencies: A's answer → the prober's first refusal on B.
	byClass := map[string][]time.Duration{}
	var all []time.Duration
	revoked := 0
	for _, v := range victims {
		if v.sent.IsZero() || v.refused.IsZero() {
			continue
		}
		revoked++
		l := v.refused.Sub(v.resp)
		all = append(all, l)
		byClass[v.class] = append(byClass[v.class], l)
		if l > bound {
			t.Errorf("%s: B refused the revoked session %v after A's answer; the bound is %v", v.class, l.Round(time.Microsecond), bound)
		}
	}
	worst := slices.Clone(victims[:next])
	slices.SortFunc(worst, func(x, y *victim) int { return cmp.Compare(y.refused.Sub(y.resp), x.refused.Sub(x.resp)) })
	for _, v := range worst[:min(3, len(worst))] {
		t.Logf("slowest: %s refused after %v (that check took %v; %d checks accepted before)", v.class, v.refused.Sub(v.resp).Round(time.Microsecond), v.refusalRTT.Round(time.Microsecond), v.accepted)
	}
	// Every check on B: no revoked token accepted after the bound or after B refused it
	// once, no live token refused, no 5xx.
	var checks, afterRevoke, late, resurrected, falseRefusals, fiveXX, errs, other int
	var stale time.Duration // the latest acceptance of a revoked token, after A's answer
	for _, l := range logs {
		for _, c := range l {
			checks++
			switch {
			case c.code == 0:
				errs++
				continue
			case c.code >= 500:
				fiveXX++
				continue
			case c.code != 200 && c.code != 401:
				other++
				continue
			}
			var v *victim
			if c.tok < len(victims) && !victims[c.tok].sent.IsZero() {
				v = victims[c.tok]
			}
			if c.code == 401 && (v == nil || c.end.Before(v.sent)) {
				falseRefusals++
			}
			if v == nil || c.start.Before(v.resp) {
				continue
			}
			afterRevoke++
			if c.code != 200 {
				continue
			}
			stale = max(stale, c.start.Sub(v.resp))
			if c.start.After(v.resp.Add(bound)) {
				late++
			}
			if !v.refused.IsZero() && c.start.After(v.refused) {
				resurrected++
			}
		}
	}
	t.Logf("%d listener kills over %v; reconnected after %v", len(kills), elapsed.Round(time.Millisecond), roundAll(reconnects))
	for _, class := range []string{"connected", "killed just before", "killed during", "killed just after", "listener down", "just reconnected"} {
		ls := byClass[class]
		t.Logf("revoked %s: %d, refused on B after median %v, max %v", class, len(ls), median(ls), maxDuration(ls))
	}
	t.Logf("revocations %d: A's answer → refused on B median %v, max %v (bound %v); B last accepted a revoked token %v after A's answer",
		revoked, median(all), maxDuration(all), bound, stale.Round(time.Microsecond))
	t.Logf("checks on B %d (%d on revoked tokens after A's answer): accepted after the bound %d, accepted after a refusal %d, live tokens refused %d, 5xx %d, transport errors %d, other answers %d",
		checks, afterRevoke, late, resurrected, falseRefusals, fiveXX, errs, other)
	if revoked < cycles*3 {
		t.Errorf("only %d revocations measured", revoked)
	}
	for _, class := range []string{"killed just before", "killed during", "killed just after", "listener down"} {
		if len(byClass[class]) == 0 {
			t.Errorf("no revocation %s: the fault was not exercised", class)
		}
	}
	if late != 0 || resurrected != 0 {
		t.Errorf("B accepted revoked tokens: %d checks after the %v bound, %d after it had refused the token", late, bound, resurrected)
	}
	if falseRefusals != 0 {
		t.Errorf("B refused live sessions %d times", falseRefusals)
	}
	if fiveXX != 0 || errs != 0 || other != 0 {
		t.Errorf("%d answers 5xx, %d transport errors, %d answers neither 200 nor 401", fiveXX, errs, other)
	}
	if t.Failed() {
		for _, n := range []*node{a, b} {
			out := n.out.String()
			if len(out) > 4000 {
				out = "…" + out[len(out)-4000:]
			}
			t.Logf("%s output (tail):\n%s", n.name, out)
		}
	}
}

func roundAll(ds []time.Duration) []time.Duration {
	out := slices.Clone(ds)
	for i := range out {
		out[i] = out[i].Round(time.Millisecond)
	}
	return out
}
