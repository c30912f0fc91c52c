package account_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
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
