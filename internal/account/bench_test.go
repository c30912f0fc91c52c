package account_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/config"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// BenchmarkLogin is a full successful login (lookup, argon2id verify, session insert)
// through the service against the real database. Compare with BenchmarkArgon2id in
// internal/password, run in the same `make bench`.
func BenchmarkLogin(b *testing.B) {
	e := newEnv(b, func(p *tenant.Policy) { p.Verification.Mode = "optional" }, noFloor)
	ctx := context.Background()
	e.User(b, "bench@example.com")
	i := 0
	for b.Loop() {
		i++
		// A fresh client address per iteration keeps the per-address login limit out of the measurement.
		meta := session.Meta{IP: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), UserAgent: "bench"}
		if _, err := e.Srv.App.Accounts.Login(ctx, e.Tenant, "bench@example.com", goodPassword, meta); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSignup is a full signup (checks, argon2id hash, user, credential, token, outbox
// row and job in one transaction), without the response floor.
func BenchmarkSignup(b *testing.B) {
	e := newEnv(b, nil, noFloor)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		meta := session.Meta{IP: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})}
		in := account.SignupInput{Email: fmt.Sprintf("bench%d@example.com", i), Password: goodPassword}
		if err := e.Srv.App.Accounts.Signup(ctx, e.Tenant, in, meta); err != nil {
			b.Fatal(err)
		}
	}
}

var noFloor = testutil.WithConfig(func(c *config.Config) { c.ResponseFloor = 0 })
