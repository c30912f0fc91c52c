package oidcop_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/oidcop"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// machineToken gets a client_credentials access token (a JWT signed by the tenant's
// current key) and returns it with its kid.
func (e *env) machineToken(t *testing.T, clientID, secret string) (string, string) {
	t.Helper()
	ctx := oidc.ClientContext(context.Background(), e.hc)
	cc := clientcredentials.Config{ClientID: clientID, ClientSecret: secret, TokenURL: e.issuer + "/oauth2/token"}
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatalf("client_credentials on %s: %v", e.Tenant.Slug, err)
	}
	return tok.AccessToken, kidOf(t, tok.AccessToken)
}

func kidOf(t *testing.T, jwt string) string {
	t.Helper()
	head, _, _ := strings.Cut(jwt, ".")
	b, err := base64.RawURLEncoding.DecodeString(head)
	var h struct {
		Kid string `json:"kid"`
	}
	if err != nil || json.Unmarshal(b, &h) != nil || h.Kid == "" {
		t.Fatalf("not a JWT with a kid: %q", jwt)
	}
	return h.Kid
}

// jwks returns the kids the tenant's JWKS publishes.
func (e *env) jwks(t *testing.T) []string {
	t.Helper()
	resp, err := e.hc.Get(e.issuer + "/oauth2/jwks")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(b, &set) != nil {
		t.Fatalf("jwks: %d %s", resp.StatusCode, b)
	}
	var out []string
	for _, k := range set.Keys {
		out = append(out, k.Kid)
	}
	slices.Sort(out)
	return out
}

// verifies says whether jwt's signature verifies against the tenant's JWKS, fetched anew
// (as a verifier does on an unknown kid).
func (e *env) verifies(jwt string) bool {
	ctx := oidc.ClientContext(context.Background(), e.hc)
	_, err := oidc.NewRemoteKeySet(ctx, e.issuer+"/oauth2/jwks").VerifySignature(ctx, jwt)
	return err == nil
}

func sorted(s ...string) []string { slices.Sort(s); return s }

// TestKeyRotation: an on-demand rotation publishes the new key at once and signs with it
// only after the publish lead; a token signed by the previous key verifies against the
// JWKS (which holds both) until housekeeping removes the previous key, a grace after the
// new one took over; a scheduled rotation comes near the end of a key's lifetime even
// without traffic; a token of another tenant's key never verifies on this tenant.
func TestKeyRotation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := testutil.NewClock()
	clk.Advance(-time.Duration(clk.Now().Nanosecond() % 1000)) // whole microseconds, as PostgreSQL stores times
	d := testutil.FreshDB(t)                                   // the test moves the clock by days: no other server's housekeeping on its tenants
	srv := testutil.NewServer(t, d, testutil.WithClock(clk))
	e := newEnv(t, srv, "keys")
	other := newEnv(t, srv, "keys-other")
	body := map[string]any{"name": "Batch", "type": "confidential", "grant_types": []string{"client_credentials"}}
	id, secret := e.app(t, body)
	otherID, otherSecret := other.app(t, body)
	svc := srv.App.OIDC

	// A tenant that never signed has no key, and housekeeping gives it none.
	if m, err := svc.MaintainKeys(ctx, e.Tenant); err != nil || m.Rotated != "" || m.Retired != 0 || m.Deleted != 0 {
		t.Fatalf("maintenance of a tenant without keys: %+v %v", m, err)
	}
	if n := keyRows(t, d, e); n != 0 {
		t.Fatalf("%d keys before the first token", n)
	}

	old, kid1 := e.machineToken(t, id, secret)
	foreign, otherKid := other.machineToken(t, otherID, otherSecret)
	if !slices.Equal(e.jwks(t), []string{kid1}) || kid1 == otherKid {
		t.Fatalf("jwks %v, want only %s (other tenant's kid %s)", e.jwks(t), kid1, otherKid)
	}

	rot, err := svc.RotateKeys(ctx, e.Tenant, audit.Who{ActorLabel: "operator"})
	if err != nil {
		t.Fatal(err)
	}
	if !rot.SignsFrom.Equal(clk.Now().Add(2*time.Minute)) || rot.First || rot.PreviousUntil == nil ||
		!rot.PreviousUntil.Equal(rot.SignsFrom.Add(24*time.Hour+5*time.Minute)) {
		t.Fatalf("rotation %+v at %v", rot, clk.Now())
	}
	if got := e.jwks(t); !slices.Equal(got, sorted(kid1, rot.Kid)) {
		t.Fatalf("jwks right after the rotation: %v, want both %s and %s", got, kid1, rot.Kid)
	}
	if _, kid := e.machineToken(t, id, secret); kid != kid1 {
		t.Fatalf("signed with %s within the publish lead, want the previous key %s", kid, kid1)
	}
	var actor, action string
	if err := d.Admin.QueryRow(ctx, `SELECT actor_label, action FROM audit_events WHERE tenant_id = $1 AND action = 'oidc.keys_rotated'
		AND details->>'kid' = $2 AND details->>'reason' = 'on demand'`, e.Tenant.ID, rot.Kid).Scan(&actor, &action); err != nil || actor != "operator" {
		t.Fatalf("audit of the rotation: %q %v", actor, err)
	}

	clk.Advance(2*time.Minute + time.Second)
	fresh, kid := e.machineToken(t, id, secret)
	if kid != rot.Kid {
		t.Fatalf("signed with %s after the publish lead, want the new key %s", kid, rot.Kid)
	}
	if !e.verifies(old) || !e.verifies(fresh) {
		t.Fatalf("after the rotation: the old token verifies %v, the new one %v; want both", e.verifies(old), e.verifies(fresh))
	}

	// Housekeeping retires the superseded key: it stays published for the grace. (The
	// server's own housekeeping may run meanwhile, on the same clock: the checks are on
	// the rows, which depend only on the clock.)
	if _, err := svc.MaintainKeys(ctx, e.Tenant); err != nil {
		t.Fatal(err)
	}
	var retired, expires time.Time
	if err := d.Admin.QueryRow(ctx, `SELECT retired_at, expires_at FROM oidc_keys WHERE tenant_id = $1 AND kid = $2`, e.Tenant.ID, kid1).
		Scan(&retired, &expires); err != nil || !retired.Equal(rot.SignsFrom) || !expires.Equal(*rot.PreviousUntil) {
		t.Fatalf("previous key: retired %v expires %v (%v), want %v and %v", retired, expires, err, rot.SignsFrom, rot.PreviousUntil)
	}
	if m, err := svc.MaintainKeys(ctx, e.Tenant); err != nil || m != (oidcop.KeyMaintenance{}) {
		t.Fatalf("a second maintenance run changed %+v %v", m, err)
	}
	clk.Advance(rot.PreviousUntil.Sub(clk.Now()) - time.Second)
	if _, err := svc.MaintainKeys(ctx, e.Tenant); err != nil || keyRows(t, d, e) != 2 || !slices.Equal(e.jwks(t), sorted(kid1, rot.Kid)) || !e.verifies(old) {
		t.Fatalf("a second before the grace ends: %v, %d key rows, jwks %v", err, keyRows(t, d, e), e.jwks(t))
	}
	clk.Advance(2 * time.Second)
	if _, err := svc.MaintainKeys(ctx, e.Tenant); err != nil {
		t.Fatal(err)
	}
	clk.Advance(31 * time.Second) // past this node's key cache
	if got := e.jwks(t); !slices.Equal(got, []string{rot.Kid}) || e.verifies(old) || keyRows(t, d, e) != 1 {
		t.Fatalf("after the grace: jwks %v, old token verifies %v, %d key rows; want only %s", got, e.verifies(old), keyRows(t, d, e), rot.Kid)
	}

	// Another tenant's token never verifies here, though it does on its own issuer.
	if e.verifies(foreign) || !other.verifies(foreign) || slices.Contains(e.jwks(t), otherKid) {
		t.Fatalf("the other tenant's token: here %v, there %v", e.verifies(foreign), other.verifies(foreign))
	}

	// Near the end of the key's lifetime (30 days), housekeeping publishes its successor
	// though nothing was signed meanwhile; it signs after the lead.
	clk.Advance(rot.SignsFrom.Add(30*24*time.Hour - 2*time.Minute).Sub(clk.Now()))
	if _, err := svc.MaintainKeys(ctx, e.Tenant); err != nil {
		t.Fatal(err)
	}
	var next string
	var from time.Time
	if err := d.Admin.QueryRow(ctx, `SELECT k.kid, k.active_from, e.actor_label FROM oidc_keys k JOIN audit_events e ON e.tenant_id = k.tenant_id
		AND e.action = 'oidc.keys_rotated' AND e.details->>'kid' = k.kid AND e.details->>'reason' = 'scheduled'
		WHERE k.tenant_id = $1 AND k.kid <> $2`, e.Tenant.ID, rot.Kid).Scan(&next, &from, &actor); err != nil ||
		!from.Equal(clk.Now().Add(2*time.Minute)) || actor != "system" {
		t.Fatalf("scheduled key: signs from %v (%v) by %q, want %v", from, err, actor, clk.Now().Add(2*time.Minute))
	}
	if again, err := svc.MaintainKeys(ctx, e.Tenant); err != nil || again.Rotated != "" || keyRows(t, d, e) != 2 {
		t.Fatalf("a successor is already waiting, yet: %+v %v (%d keys)", again, err, keyRows(t, d, e))
	}
	if got := e.jwks(t); !slices.Equal(got, sorted(rot.Kid, next)) {
		t.Fatalf("jwks with the successor waiting: %v, want %s and %s", got, rot.Kid, next)
	}
}

func keyRows(t *testing.T, d *testutil.DB, e *env) int {
	t.Helper()
	var n int
	if err := d.Admin.QueryRow(context.Background(), `SELECT count(*) FROM oidc_keys WHERE tenant_id = $1`, e.Tenant.ID).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
