package oidcop

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
)

var errClientCredentials = errors.New("oidc: invalid client credentials")

// authorizeClient checks a confidential app's secret through the shared credential
// limiter: failures count per app and address (a growing delay) and per app across
// addresses (a lock after ratelimit.AccountLockFailures), and each one is audited. A
// client secret is 256 random bits, so it is compared first and only a wrong one is
// counted (ratelimit.Peek): a right one costs one read, and an app's concurrent requests
// never count against it.
func (st storage) authorizeClient(ctx context.Context, clientID, secret string) (sqlcgen.App, error) {
	t, err := tenantFrom(ctx)
	if err != nil {
		return sqlcgen.App{}, err
	}
	// A right secret of an app the limiter had nothing against when this node last
	// checked: no transaction. A failure counted anywhere drops that (notifyApp).
	e, ok, epoch := st.s.cache.app(t.ID, clientID, st.s.now())
	if ok && e.clean && e.app.Type == "confidential" && st.secretMatches(e.app, secret) {
		return e.app, nil
	}
	who := callerFrom(ctx)
	check := ratelimit.Check{Tenant: t, Secret: ratelimit.ClientSecret, Address: ratelimit.Key("oidc_client", clientID, ratelimit.Addr(who.IP))}
	var app sqlcgen.App
	var found, counted bool
	var wait time.Duration
	err = st.s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		var err error
		app, err = q.GetAppByClientID(ctx, clientID)
		found = err == nil
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if found {
			check.Account = app.ID
		}
		wait, counted, err = st.s.limit.Peek(ctx, q, check)
		return err
	}, store.ReadOnly(), store.Idempotent())
	if err != nil {
		return app, oidc.ErrServerError().WithParent(err)
	}
	if wait > 0 {
		return app, oidc.ErrInvalidClient().WithDescription("too many failed attempts: try again in %s", ratelimit.Wait(int(wait.Seconds())+1))
	}
	reason := ""
	switch {
	case !found:
		reason = "unknown_client"
	case app.Type != "confidential":
		reason = "public_client"
	case !st.secretMatches(app, secret):
		reason = "wrong_secret"
	}
	if reason == "" {
		if counted {
			if err := st.s.limit.Clear(ctx, check); err != nil {
				return app, oidc.ErrServerError().WithParent(err)
			}
		}
		st.s.cache.putApp(t.ID, app, true, epoch, st.s.now())
		return app, nil
	}
	// Count the wrong secret (under the counters' lock, so parallel guesses are all seen),
	// then audit it.
	attempt, lerr := st.s.limit.Begin(ctx, check)
	if lerr != nil {
		if _, ok := ratelimit.RetryAfter(lerr); ok {
			return app, errClientCredentials
		}
		return app, oidc.ErrServerError().WithParent(lerr)
	}
	who.ActorLabel = "client " + clipID(clientID)
	if ferr := attempt.Failed(ctx, who, audit.Event{Action: audit.OIDCClientAuthFailed, SubjectID: check.Account, SubjectLabel: app.Name,
		Details: map[string]any{"client_id": clipID(clientID), "reason": reason}}); ferr != nil {
		return app, oidc.ErrServerError().WithParent(fmt.Errorf("recording a failed client authentication: %w", ferr))
	}
	if found { // every node checks the limiter again for this app
		st.s.cache.dropApp(app.ID)
		if err := st.s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error { return notifyRevoked(ctx, q, notifyApp+app.ID.String()) }); err != nil {
			return app, oidc.ErrServerError().WithParent(fmt.Errorf("notify the app caches: %w", err))
		}
	}
	return app, errClientCredentials
}

// clipID keeps a caller-supplied client id short in the audit log.
func clipID(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}
