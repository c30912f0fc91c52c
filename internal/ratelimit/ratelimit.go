// Package ratelimit keeps rate limits and throttles in PostgreSQL, so they hold across every
// server process. Counters are fixed windows per (tenant, key); keys built from personal
// data (addresses, emails) are hashed before they are stored.
package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
)

// Rule is at most Limit events per Window.
type Rule struct {
	Name   string
	Limit  int
	Window time.Duration
}

// Limiter counts events.
type Limiter struct {
	store *store.Store
	now   func() time.Time
}

// New returns a limiter.
func New(st *store.Store, now func() time.Time) *Limiter { return &Limiter{store: st, now: now} }

// Key builds a counter key from parts, hashing them so no address or email is stored.
func Key(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:16])
}

// Allow counts one event for key under every rule, in its own transaction (a refused
// request still counts), and reports whether all rules allow it, and if not, when to retry.
func (l *Limiter) Allow(ctx context.Context, tenantID uuid.UUID, key string, rules ...Rule) (bool, time.Duration, error) {
	now := l.now()
	allowed, retry := true, time.Duration(0)
	err := l.store.InTenant(ctx, tenantID, func(q *sqlcgen.Queries) error {
		allowed, retry = true, 0
		for _, r := range rules {
			ws := now.Truncate(r.Window)
			n, err := q.HitRateLimit(ctx, sqlcgen.HitRateLimitParams{
				Key: r.Name + ":" + key, WindowStart: ws, ExpiresAt: ws.Add(2 * r.Window),
			})
			if err != nil {
				return fmt.Errorf("rate limit %s: %w", r.Name, err)
			}
			if int(n) > r.Limit {
				allowed = false
				retry = max(retry, ws.Add(r.Window).Sub(now))
			}
		}
		return nil
	})
	return allowed, retry, err
}

// Limited is the error for a refused request.
func Limited(retry time.Duration) error {
	secs := int(math.Ceil(retry.Seconds()))
	if secs < 1 {
		secs = 1
	}
	return apperr.New(apperr.RateLimited, "rate_limited", "Too many attempts. Try again later.").
		WithDetails(map[string]any{"retry_after_seconds": secs})
}

// Progressive delays after failed logins, per account and client address: the first
// FreeFailures are free, then each further failure doubles the wait, up to MaxDelay. There
// is no hard lockout, so nobody can lock a known address out from another network.
const (
	FreeFailures = 5
	MaxDelay     = 15 * time.Minute
)

// LoginDelay reports how long key must wait before its next login attempt (0: none).
func (l *Limiter) LoginDelay(ctx context.Context, tenantID uuid.UUID, key string) (time.Duration, error) {
	var wait time.Duration
	err := l.store.InTenant(ctx, tenantID, func(q *sqlcgen.Queries) error {
		row, err := q.GetLoginFailures(ctx, key)
		if store.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("login failures: %w", err)
		}
		// Both ends in database time: last_failure_at was written by its clock.
		until := row.LastFailureAt.Add(delayAfter(int(row.Failures)))
		if d := until.Sub(row.DbNow); d > 0 {
			wait = d
		}
		return nil
	}, store.ReadOnly(), store.Idempotent())
	return wait, err
}

func delayAfter(failures int) time.Duration {
	if failures < FreeFailures {
		return 0
	}
	d := time.Second << min(failures-FreeFailures, 20)
	return min(d, MaxDelay)
}

// RecordLoginFailure counts a failed login for key.
func (l *Limiter) RecordLoginFailure(ctx context.Context, tenantID uuid.UUID, key string) error {
	return l.store.InTenant(ctx, tenantID, func(q *sqlcgen.Queries) error {
		_, err := q.RecordLoginFailure(ctx, key)
		return err
	})
}

// ClearLoginFailures forgets key's failures after a successful login.
func ClearLoginFailures(ctx context.Context, q *sqlcgen.Queries, key string) error {
	return q.ClearLoginFailures(ctx, key)
}
