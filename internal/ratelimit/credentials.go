package ratelimit

import (
	"context"
	"fmt"
	"maps"
	"net/netip"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// Every check of a password or a second-factor code (sign-in, its second step,
// re-authentication, password change, TOTP confirmation) is one Attempt: Begin before the
// check, which refuses with rate_limited while a counter says wait; then Failed (audited)
// or Passed (counters cleared). Begin counts the attempt before the check runs, under the
// counters' row locks, so guesses sent in parallel take turns instead of all passing the
// gate before the first failure is written.
//
// Two counters, both in login_failures:
//   - per client address (Check.Address): FreeFailures free, then 1 s doubling up to
//     MaxDelay; never a lockout.
//   - per account and secret (Check.Account), across every address, challenge and entry
//     point: AccountFreeFailures free, then 1 s doubling, and the AccountLockFailures-th
//     failure locks the secret for AccountLock (each later failure locks it again). A lock
//     that starts is audited (mfa.locked, user.password_locked) and the user is mailed.
//
// The password at sign-in counts per address only: anyone can type a known address, so a
// per-account count there would let strangers lock the owner out. The password checked
// for a signed-in user (re-authentication, password change) and every second-factor code
// count per account too: reaching those checks already takes a session or the password.

// Secret is what a check proves; an account's failures count per secret.
type Secret string

// Secrets.
const (
	Password     Secret = "password"
	SecondFactor Secret = "second_factor" // TOTP and recovery codes
	ClientSecret Secret = "client_secret" // an app's secret at the OpenID Provider (per app, across addresses)
)

// Per-account limits (see above).
const (
	AccountFreeFailures = 5
	AccountLockFailures = 10
	AccountLock         = 15 * time.Minute
)

func accountDelayAfter(failures int) time.Duration {
	switch {
	case failures < AccountFreeFailures:
		return 0
	case failures < AccountLockFailures:
		return time.Second << (failures - AccountFreeFailures)
	}
	return AccountLock
}

// Check describes one check of a secret.
type Check struct {
	Tenant tenant.Tenant
	Secret Secret
	// Address is the per-client-address counter, a Key of the entry point, the account
	// (or address typed) and the IP; "" for none.
	Address string
	// Account is the user whose secret is checked, counted across every address;
	// uuid.Nil for none (the password at sign-in).
	Account uuid.UUID
	// Notice mails the user when this check's failure locks Account's secret; nil: the
	// lock is audited only.
	Notice LockNotice
}

// AccountKey is the counter of one account's failures with secret.
func AccountKey(secret Secret, userID uuid.UUID) string {
	return Key("account", string(secret), userID.String())
}

// SignedInKey is the per-client-address counter of a signed-in user's password and code
// checks (re-authentication, password change).
func SignedInKey(userID uuid.UUID, ip netip.Addr) string {
	return Key("reauth", userID.String(), Addr(ip))
}

// LockNotice tells the user, in the transaction that audits the lock, that checks of
// c.Secret are refused until the given time.
type LockNotice func(ctx context.Context, tx pgx.Tx, q *sqlcgen.Queries, c Check, until time.Time) error

// Attempt is a check that Begin let through.
type Attempt struct {
	l        *Limiter
	c        Check
	at       time.Time
	failures int // of the account counter, this attempt included (0: not counted per account)
}

type counter struct {
	key   string
	delay func(failures int) time.Duration
}

func (c Check) counters() []counter {
	var cs []counter
	if c.Address != "" {
		cs = append(cs, counter{c.Address, delayAfter})
	}
	if c.Account != uuid.Nil {
		cs = append(cs, counter{AccountKey(c.Secret, c.Account), accountDelayAfter})
	}
	return cs
}

// Begin admits a check of c.Secret, counting it as a failure until Passed says otherwise.
// Errors: rate_limited (with retry_after_seconds) while a counter of c says wait.
func (l *Limiter) Begin(ctx context.Context, c Check) (*Attempt, error) {
	var a *Attempt
	var wait time.Duration
	err := l.store.InTenant(ctx, c.Tenant.ID, func(q *sqlcgen.Queries) error {
		var err error
		a, wait, err = l.BeginIn(ctx, q, c)
		return err
	})
	if err != nil {
		return nil, err
	}
	if wait > 0 {
		return nil, Limited(wait)
	}
	return a, nil
}

// BeginIn is Begin inside the caller's transaction in c.Tenant, for a caller that reads
// what the check needs in the same round (password sign-in: the account and its hash).
// It returns the attempt, or the wait (> 0) while a counter says wait, in which case
// nothing was counted; the caller commits either way, before the secret is checked, so
// that the count limits checking (a parallel guess waits on the counters' row locks until
// the commit). A transaction that is retried calls it again: it keeps no state of its own.
func (l *Limiter) BeginIn(ctx context.Context, q *sqlcgen.Queries, c Check) (*Attempt, time.Duration, error) {
	now := l.now()
	a := &Attempt{l: l, c: c, at: now}
	var wait time.Duration
	cs := c.counters()
	for _, k := range cs {
		row, err := q.LockLoginFailures(ctx, sqlcgen.LockLoginFailuresParams{Key: k.key, Now: now})
		if err != nil {
			return nil, 0, fmt.Errorf("credential failures: %w", err)
		}
		wait = max(wait, row.LastFailureAt.Add(k.delay(int(row.Failures))).Sub(now))
	}
	if wait > 0 {
		return nil, wait, nil // refused: not counted, so waiting it out is enough
	}
	for _, k := range cs {
		n, err := q.RecordLoginFailure(ctx, sqlcgen.RecordLoginFailureParams{Key: k.key, Now: now})
		if err != nil {
			return nil, 0, fmt.Errorf("credential failures: %w", err)
		}
		if c.Account != uuid.Nil && k.key == AccountKey(c.Secret, c.Account) {
			a.failures = int(n)
		}
	}
	return a, 0, nil
}

// Passed clears the attempt's counters inside the caller's transaction, the one that acts
// on the success.
func (a *Attempt) Passed(ctx context.Context, q *sqlcgen.Queries) error {
	for _, k := range a.c.counters() {
		if err := q.ClearLoginFailures(ctx, k.key); err != nil {
			return fmt.Errorf("clear credential failures: %w", err)
		}
	}
	return nil
}

// PassedAlone is Passed in a transaction of its own: for a right secret whose request is
// refused for another reason (a disabled account, say).
func (a *Attempt) PassedAlone(ctx context.Context) error {
	return a.l.store.InTenant(ctx, a.c.Tenant.ID, func(q *sqlcgen.Queries) error { return a.Passed(ctx, q) })
}

// Failed records a wrong secret: the caller's failure event ev (by who), and, when this
// failure locks the account's secret, the lock event and the user's mail, in one
// transaction. Begin already counted the attempt.
func (a *Attempt) Failed(ctx context.Context, who audit.Who, ev audit.Event) error {
	return a.l.store.InTenantTx(ctx, a.c.Tenant.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		ev.Details = maps.Clone(ev.Details)
		if a.failures > 0 {
			if ev.Details == nil {
				ev.Details = map[string]any{}
			}
			ev.Details["account_failures"] = a.failures
		}
		if err := audit.Record(ctx, q, who, ev); err != nil {
			return err
		}
		if a.failures < AccountLockFailures {
			return nil
		}
		until := a.at.Add(AccountLock)
		action := audit.MFALocked
		if a.c.Secret == Password {
			action = audit.UserPasswordLocked
		}
		if err := audit.Record(ctx, q, who, audit.Event{Action: action, SubjectID: a.c.Account, SubjectLabel: ev.SubjectLabel,
			Details: map[string]any{"failures": a.failures, "locked_until": until.UTC(), "lock_seconds": int(AccountLock.Seconds())}}); err != nil {
			return err
		}
		if a.c.Notice == nil {
			return nil
		}
		return a.c.Notice(ctx, tx, q, a.c, until)
	})
}

// Peek reports, inside the caller's read, the wait c's counters impose now and whether
// any counter exists, without counting or locking. It is for secrets that cannot be
// guessed (an app's 256-bit client secret): the caller compares first, counts a wrong one
// with Begin and Failed, and clears the counters with Clear after a right one when Peek
// saw any. Concurrent requests of one app then never count against it, which Begin's
// count-first design would do (an app with more requests in flight than the free failures
// would lock itself out).
func (l *Limiter) Peek(ctx context.Context, q *sqlcgen.Queries, c Check) (wait time.Duration, counted bool, err error) {
	now := l.now()
	cs := c.counters()
	keys := make([]string, 0, len(cs))
	delay := map[string]func(int) time.Duration{}
	for _, k := range cs {
		keys = append(keys, k.key)
		delay[k.key] = k.delay
	}
	rows, err := q.PeekLoginFailures(ctx, keys)
	if err != nil {
		return 0, false, fmt.Errorf("credential failures: %w", err)
	}
	for _, r := range rows {
		if r.Failures > 0 {
			counted = true
		}
		wait = max(wait, r.LastFailureAt.Add(delay[r.Key](int(r.Failures))).Sub(now))
	}
	return wait, counted, nil
}

// Clear removes c's counters (after a right secret that Peek saw counted).
func (l *Limiter) Clear(ctx context.Context, c Check) error {
	return l.store.InTenant(ctx, c.Tenant.ID, func(q *sqlcgen.Queries) error {
		for _, k := range c.counters() {
			if err := q.ClearLoginFailures(ctx, k.key); err != nil {
				return fmt.Errorf("clear credential failures: %w", err)
			}
		}
		return nil
	})
}
