package oidcop

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
)

var errClientCredentials = errors.New("oidc: invalid client credentials")

// authorizeClient checks a confidential app's secret through the shared credential
// limiter: failures count per app and address (a growing delay) and per app across
// addresses (a lock after ratelimit.AccountLockFailures), and each one is audited.
func (st storage) authorizeClient(ctx context.Context, clientID, secret string) (sqlcgen.App, error) {
	t, err := tenantFrom(ctx)
	if err != nil {
		return sqlcgen.App{}, err
	}
	who := callerFrom(ctx)
	var app sqlcgen.App
	err = st.s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		var err error
		app, err = q.GetAppByClientID(ctx, clientID)
		return err
	}, store.ReadOnly(), store.Idempotent())
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return app, oidc.ErrServerError().WithParent(err)
	}
	account := uuid.Nil
	if err == nil {
		account = app.ID
	}
	attempt, lerr := st.s.limit.Begin(ctx, ratelimit.Check{Tenant: t, Secret: ratelimit.ClientSecret,
		Address: ratelimit.Key("oidc_client", clientID, ratelimit.Addr(who.IP)), Account: account})
	if lerr != nil {
		if secs, ok := ratelimit.RetryAfter(lerr); ok {
			return app, oidc.ErrInvalidClient().WithDescription("too many failed attempts: try again in %s", ratelimit.Wait(secs))
		}
		return app, oidc.ErrServerError().WithParent(lerr)
	}
	reason := ""
	switch {
	case err != nil:
		reason = "unknown_client"
	case app.Type != "confidential":
		reason = "public_client"
	case !st.secretMatches(app, secret):
		reason = "wrong_secret"
	}
	if reason == "" {
		if err := attempt.PassedAlone(ctx); err != nil {
			return app, oidc.ErrServerError().WithParent(err)
		}
		return app, nil
	}
	who.ActorLabel = "client " + clipID(clientID)
	if ferr := attempt.Failed(ctx, who, audit.Event{Action: audit.OIDCClientAuthFailed, SubjectID: account, SubjectLabel: app.Name,
		Details: map[string]any{"client_id": clipID(clientID), "reason": reason}}); ferr != nil {
		return app, oidc.ErrServerError().WithParent(fmt.Errorf("recording a failed client authentication: %w", ferr))
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
