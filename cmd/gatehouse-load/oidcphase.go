package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
)

// codeMaxAge is how old a prepared code may be when the exchange run sends it: codes are
// single-use for 60 s, so the run stops using them a little before.
const codeMaxAge = 50 * time.Second

// oidcPhase measures the OpenID Provider: the token endpoint (code exchange, refresh)
// against two RS256 signatures per response on every core, and userinfo and
// introspection against a bare handler in a process of its own, as for the session check.
func (f runFlags) oidcPhase(ctx context.Context, w *workload, rep *Report, logf func(string, ...any)) error {
	logf("OpenID Provider: registering a confidential first-party app on each of %d tenants through the admin API", len(w.tenants))
	if err := w.registerApps(ctx, 8); err != nil {
		return err
	}
	b, err := signingBound(f.dur / 2)
	if err != nil {
		return err
	}
	rep.Bounds = append(rep.Bounds, b)
	logf("  bound: %.0f token responses/s (%s; one alone: %.2f ms)", b.RPS, b.Note, b.PerOpMs)

	// The browser's part, timed as a run of its own: authorize with the session cookie,
	// the redirects, the code. Its codes feed the exchange run, which therefore times the
	// token endpoint alone.
	prep := min(f.dur, 20*time.Second)
	codes := make(chan pendingCode, 1<<16)
	pa := runOps(ctx, "OIDC authorize (to the code)", []op{{name: "oidc_authorize", weight: 1, fn: func(_ context.Context, r *rand.Rand) error {
		p, err := w.authorizeCode(w.randomUser(r))
		if err == nil {
			select {
			case codes <- p:
			default:
			}
		}
		return err
	}}}, f.conc, prep)
	close(codes)
	printPhase(logWriter{logf}, pa)

	var mu sync.Mutex
	var got []issued
	pe := runOps(ctx, "OIDC token exchange", []op{{name: "oidc_code", weight: 1, fn: func(context.Context, *rand.Rand) error {
		p, ok := <-codes
		if !ok || time.Since(p.at) > codeMaxAge {
			return errExhausted
		}
		t, err := w.exchange(p)
		if err == nil {
			mu.Lock()
			if len(got) < 4096 {
				got = append(got, t)
			}
			mu.Unlock()
		}
		return err
	}}}, f.conc, min(f.dur, codeMaxAge-prep))
	printPhase(logWriter{logf}, pe)
	if len(got) < f.conc {
		return errors.New("the exchange run issued fewer tokens than there are clients")
	}

	// Refresh: one rotating chain per client, each started by a code of the exchange run.
	chains := make(chan issued, f.conc)
	for _, t := range got[:f.conc] {
		chains <- t
	}
	pr := runOps(ctx, "OIDC refresh", []op{{name: "oidc_refresh", weight: 1, fn: func(context.Context, *rand.Rand) error {
		t := <-chains
		next, err := w.refresh(t)
		if err == nil {
			t = next
		}
		chains <- t
		return err
	}}}, f.conc, f.dur)
	printPhase(logWriter{logf}, pr)

	// Userinfo and introspection of the access tokens the exchange run issued (not the
	// refresh run's: their predecessors are rotated out, the tokens stay valid).
	access := got[f.conc:]
	if len(access) > 256 {
		access = access[:256]
	}
	if len(access) == 0 {
		access = got[:1]
	}
	uiBody, err := w.g.userinfo(access[0].app.slug, access[0].access)
	if err != nil {
		return err
	}
	inBody, err := w.g.introspect(access[0].app, access[0].access)
	if err != nil {
		return err
	}
	tokens := map[string]bool{}
	for _, t := range access {
		tokens[t.access] = true
	}
	userinfoOps := func(g *gatehouse) []op {
		return []op{{name: "oidc_userinfo", weight: 1, fn: func(_ context.Context, r *rand.Rand) error {
			t := access[r.IntN(len(access))]
			_, err := g.userinfo(t.app.slug, t.access)
			return err
		}}}
	}
	introspectOps := func(g *gatehouse) []op {
		return []op{{name: "oidc_introspect", weight: 1, fn: func(_ context.Context, r *rand.Rand) error {
			t := access[r.IntN(len(access))]
			_, err := g.introspect(t.app, t.access)
			return err
		}}}
	}
	u, stop, err := startBareProcessWith(ctx, tokens, map[string][]byte{"/oauth2/userinfo": uiBody, "/oauth2/introspect": inBody})
	if err != nil {
		return err
	}
	bare, err := newGatehouse(strings.TrimSuffix(u, "/api/v1/session"), f.domain, f.conc)
	if err != nil {
		stop()
		return err
	}
	logf("userinfo and introspection: bare net/http (a process of its own, the same answers from a map), then Gatehouse; %d clients, %s each", f.conc, f.dur)
	bu := runOps(ctx, "bare net/http userinfo", userinfoOps(bare), f.conc, f.dur)
	bi := runOps(ctx, "bare net/http introspection", introspectOps(bare), f.conc, f.dur)
	bare.close()
	stop()
	gu := runOps(ctx, "OIDC userinfo", userinfoOps(w.g), f.conc, f.dur)
	gi := runOps(ctx, "OIDC introspection", introspectOps(w.g), f.conc, f.dur)
	for _, p := range []PhaseResult{bu, bi, gu, gi} {
		printPhase(logWriter{logf}, p)
	}
	rep.Phases = append(rep.Phases, pa, pe, pr, bu, bi, gu, gi)
	bur, bir := bu.op("oidc_userinfo"), bi.op("oidc_introspect")
	rep.Bounds = append(rep.Bounds,
		Bound{Name: "bare net/http userinfo", RPS: bur.RPS, Note: "a net/http server process answering Gatehouse's userinfo JSON for the bearer token from a map in memory, same clients"},
		Bound{Name: "bare net/http introspection", RPS: bir.RPS, Note: "the same process answering Gatehouse's introspection JSON for the form's token (client credentials present, not checked)"})
	ratio := func(name string, product, limit float64, target float64) Ratio {
		q := Ratio{Name: name, Product: product, Limit: limit, Target: fmt.Sprintf("≥ %.2f", target), Unit: "req/s"}
		if limit > 0 {
			q.Ratio = product / limit
			q.Met = ptr(q.Ratio >= target)
		}
		return q
	}
	e, r := pe.op("oidc_code"), pr.op("oidc_refresh")
	rep.Ratios = append(rep.Ratios,
		ratio("OIDC code exchange vs RS256 ×2", e.RPS, b.RPS, 0.70),
		ratio("OIDC refresh vs RS256 ×2", r.RPS, b.RPS, 0.70),
		ratio("OIDC userinfo vs bare handler", gu.op("oidc_userinfo").RPS, bur.RPS, 0.60),
		ratio("OIDC introspection vs bare handler", gi.op("oidc_introspect").RPS, bir.RPS, 0.60))
	return nil
}
