package account_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestPasswordLoginTransactions: a password sign-in is one transaction before the hash
// (SSO routing, per-address limit, login delay, account) and one after it (the sign-in,
// or the audited failure), whatever the outcome, so the hash is never queued behind round
// trips that could be one. It used to be five (the SSO gate, the limit and the delay each
// in a transaction of their own, then the account, then the outcome).
func TestPasswordLoginTransactions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(p *tenant.Policy) { p.Verification.Mode = "optional" })
	e.User(t, "tx@example.com")
	meta := session.Meta{IP: netip.MustParseAddr("192.0.2.44"), UserAgent: "test"}
	cases := []struct {
		name, email, password string
		want                  error
	}{
		{"right password", "tx@example.com", goodPassword, nil},
		{"wrong password", "tx@example.com", "not the password at all", account.ErrInvalidCredentials},
		{"unknown address", "nobody@example.com", "not the password at all", account.ErrInvalidCredentials},
	}
	for _, c := range cases {
		ctx, n := store.CountTransactions(context.Background())
		_, err := e.Srv.App.Accounts.Login(ctx, e.Tenant, c.email, c.password, meta)
		if !errors.Is(err, c.want) {
			t.Fatalf("%s: %v, want %v", c.name, err, c.want)
		}
		if got := n.Load(); got != 2 {
			t.Errorf("%s: %d transactions, want 2", c.name, got)
		}
	}
}

// TestLoginDelayOnTheClock: the login delay counted in the transaction before the hash,
// on an injected clock (TestLoginProgressiveDelay runs on the real one, so a hash slower
// than the one-second delay lets its sixth try through): five wrong passwords from one
// address, then even the right one waits, a second later it passes, and the per-address
// limit still counts refused requests.
func TestLoginDelayOnTheClock(t *testing.T) {
	t.Parallel()
	clk := testutil.NewClock()
	e := newEnv(t, nil, testutil.WithClock(clk))
	e.User(t, "clock@example.com")
	login := func(pw string) *testutil.Response {
		return e.Do(t, "POST", "/api/v1/login", "", map[string]string{"email": "clock@example.com", "password": pw}, "X-Forwarded-For", "203.0.113.60")
	}
	for range 5 {
		e.expect(t, login("not the password at all"), 401, "invalid_credentials")
	}
	r := login(goodPassword)
	e.expect(t, r, 429, "rate_limited")
	if r.Header.Get("Retry-After") != "1" {
		t.Fatalf("Retry-After %q, want 1", r.Header.Get("Retry-After"))
	}
	clk.Advance(time.Second)
	e.expect(t, login(goodPassword), 200, "")
}
