// Package ratelimit keeps rate limits and throttles in PostgreSQL, so they hold across every
// server process. Counters are fixed windows per (tenant, key); keys built from personal
// data (addresses, emails) are hashed before they are stored. Every check of a password or
// a second-factor code goes through one gate, Begin (credentials.go).
package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
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

// Addr is the part of a client address that rate limits count by: an IPv4 address as it
// is, an IPv6 address by its /64 (one subscriber's prefix: a client holds billions of
// addresses in it and could otherwise rotate through them to reset every counter).
func Addr(a netip.Addr) string {
	a = a.Unmap()
	if a.Is6() {
		p, err := a.Prefix(64)
		if err == nil {
			return p.String()
		}
	}
	return a.String()
}

// Key builds a counter key from parts, hashing them so no address or email is stored.
func Key(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(h[:16])
}

// Allow counts one event for key under every rule, in its own transaction (a refused
// request still counts), and reports whether all rules allow it, and if not, when to retry.
func (l *Limiter) Allow(ctx context.Context, tenantID uuid.UUID, key string, rules ...Rule) (bool, time.Duration, error) {
	var allowed bool
	var retry time.Duration
	err := l.store.InTenant(ctx, tenantID, func(q *sqlcgen.Queries) error {
		var err error
		allowed, retry, err = l.AllowIn(ctx, q, key, rules...)
		return err
	})
	return allowed, retry, err
}

// AllowIn is Allow inside the caller's tenant transaction, for a caller that reads more
// in the same round (password sign-in). The caller must commit even when AllowIn refuses,
// so that a refused request still counts.
func (l *Limiter) AllowIn(ctx context.Context, q *sqlcgen.Queries, key string, rules ...Rule) (bool, time.Duration, error) {
	now := l.now()
	allowed, retry := true, time.Duration(0)
	for _, r := range rules {
		ws := now.Truncate(r.Window)
		n, err := q.HitRateLimit(ctx, sqlcgen.HitRateLimitParams{
			Key: r.Name + ":" + key, WindowStart: ws, ExpiresAt: ws.Add(2 * r.Window),
		})
		if err != nil {
			return false, 0, fmt.Errorf("rate limit %s: %w", r.Name, err)
		}
		if int(n) > r.Limit {
			allowed = false
			retry = max(retry, ws.Add(r.Window).Sub(now))
		}
	}
	return allowed, retry, nil
}

// Limited is the error for a refused request.
func Limited(retry time.Duration) error {
	secs := int(math.Ceil(retry.Seconds()))
	if secs < 1 {
		secs = 1
	}
	return &LimitedError{RetryAfterSeconds: secs, app: apperr.New(apperr.RateLimited, "rate_limited", "Too many attempts. Try again in "+Wait(secs)+".").
		WithDetails(map[string]any{"retry_after_seconds": secs})}
}

// Wait says a wait of secs seconds in words, rounded up to what a person would wait:
// "1 second", "40 seconds", "2 minutes", "1 hour".
func Wait(secs int) string {
	unit := func(n int, one string) string {
		if n == 1 {
			return "1 " + one
		}
		return strconv.Itoa(n) + " " + one + "s"
	}
	switch {
	case secs < 60:
		return unit(max(secs, 1), "second")
	case secs < 3600:
		return unit((secs+59)/60, "minute")
	}
	return unit((secs+3599)/3600, "hour")
}

// LimitedError is a refusal by a limit (429 rate_limited): RetryAfterSeconds is when to
// try again (the Retry-After header).
type LimitedError struct {
	RetryAfterSeconds int
	app               *apperr.Error
}

func (e *LimitedError) Error() string { return e.app.Error() }

// Unwrap gives the apperr form (kind RateLimited, code rate_limited).
func (e *LimitedError) Unwrap() error { return e.app }

// RetryAfter returns the seconds to wait when err is a refusal by a limit.
func RetryAfter(err error) (int, bool) {
	var e *LimitedError
	if errors.As(err, &e) {
		return e.RetryAfterSeconds, true
	}
	return 0, false
}

// Progressive delays per client address (Check.Address): the first FreeFailures are free,
// then each further failure doubles the wait, up to MaxDelay. There is no hard lockout on
// an address counter, so nobody can lock a known address out from another network.
const (
	FreeFailures = 5
	MaxDelay     = 15 * time.Minute
)

func delayAfter(failures int) time.Duration {
	if failures < FreeFailures {
		return 0
	}
	d := time.Second << min(failures-FreeFailures, 20)
	return min(d, MaxDelay)
}
