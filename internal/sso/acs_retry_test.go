package sso_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/sso"
)

// signInAttempts records where the ACS sign-in transaction passed the test hook and fails
// the first attempt just before it commits with a serialization failure, which the store
// retries. onRetry, when set, runs at the start of the second attempt.
type signInAttempts struct {
	mu      sync.Mutex
	points  []string
	onRetry func() error
}

func (a *signInAttempts) hook(point string) error {
	a.mu.Lock()
	a.points = append(a.points, point)
	n := len(a.points)
	a.mu.Unlock()
	switch {
	case point == "commit" && n == 2:
		return &pgconn.PgError{Code: "40001", Message: "could not serialize access (test)"}
	case point == "begin" && n == 3 && a.onRetry != nil:
		return a.onRetry()
	}
	return nil
}

func (a *signInAttempts) seen() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.points...)
}

// TestACSSignInRetried: the ACS sign-in transaction fails once with a serialization
// failure after it did all its work (JIT user, session, attempt row, audit), and the
// store runs it again. The outcome is that of the attempt that committed: every trace
// step once, one user, one session, one attempt row, no duplicated audit event.
func TestACSSignInRetried(t *testing.T) {
	t.Parallel()
	srv, d := newServer(t)
	s := newSite(t, srv, d)
	idp := mustIdP(t, "https://idp.example/retry-"+s.t.Slug)
	c := s.connect(t, idp, nil)
	wantSteps := []string{"decode", "xml_shape", "request", "signature_and_conditions", "issuer", "audience", "name_id", "user"}

	t.Run("jit provisioning", func(t *testing.T) {
		var at signInAttempts
		sso.SetSignInHook(srv.App.SSO, at.hook)
		defer sso.SetSignInHook(srv.App.SSO, nil)

		p := s.start(t, "/sso/saml/"+c.Slug+"/login?return_to=/account", "")
		r := s.post(t, c.Slug, response(t, idp, c, p.RequestID, "jit@example.org", nil), p.Relay, p.Browser)
		if r.StatusCode != http.StatusSeeOther || sessionToken(r) == "" {
			t.Fatalf("ACS: %d %s", r.StatusCode, r.Body)
		}
		if diff := cmp.Diff([]string{"begin", "commit", "begin", "commit"}, at.seen()); diff != "" {
			t.Fatalf("the sign-in transaction was not retried once (-want +got):\n%s", diff)
		}
		attempts := s.attempts(t, c.ID)
		if len(attempts) != 1 || !attempts[0].Success {
			t.Fatalf("attempt rows: %+v", attempts)
		}
		if diff := cmp.Diff(wantSteps, stepNames(attempts[0].Report)); diff != "" {
			t.Fatalf("trace steps (-want +got):\n%s", diff)
		}
		if got := attempts[0].Report.Steps[len(wantSteps)-1].Detail; got != "provisioned just in time with role member" {
			t.Fatalf("user step: %q", got)
		}
		userID := s.userID(t, "jit@example.org")
		if got := s.countRows(t, `SELECT count(*) FROM users WHERE tenant_id = $1 AND lower(email) = 'jit@example.org'`); got != 1 {
			t.Fatalf("%d users", got)
		}
		if got := s.countRows(t, `SELECT count(*) FROM sso_identities WHERE tenant_id = $1 AND user_id = $2`, userID); got != 1 {
			t.Fatalf("%d identities", got)
		}
		if got := s.countRows(t, `SELECT count(*) FROM sessions WHERE tenant_id = $1 AND user_id = $2`, userID); got != 1 {
			t.Fatalf("%d sessions", got)
		}
		if got := s.countRows(t, `SELECT count(*) FROM role_bindings WHERE tenant_id = $1 AND user_id = $2`, userID); got != 1 {
			t.Fatalf("%d role bindings", got)
		}
		for action, want := range map[string]int{audit.SSOLogin: 1, audit.SSOUserProvisioned: 1, audit.SSOLoginFailed: 0} {
			if got := s.countRows(t, `SELECT count(*) FROM audit_events WHERE tenant_id = $1 AND action = $2`, action); got != want {
				t.Errorf("%d %s audit events, want %d", got, action, want)
			}
		}
	})

	// The failed attempt provisioned the user; before the retry another sign-in of the same
	// person committed (user and identity), so the attempt that commits finds a known
	// identity. Nothing of the failed attempt may survive in the outcome.
	t.Run("known identity on the retry", func(t *testing.T) {
		const email = "race@example.org"
		var raced string
		at := signInAttempts{onRetry: func() error {
			ctx := context.Background()
			if err := d.Admin.QueryRow(ctx, `INSERT INTO users (tenant_id, email, name) VALUES ($1, $2, 'Concurrent') RETURNING id`,
				s.t.ID, email).Scan(&raced); err != nil {
				return err
			}
			_, err := d.Admin.Exec(ctx, `INSERT INTO sso_identities (tenant_id, connection_id, name_id, user_id) VALUES ($1, $2, $3, $4)`,
				s.t.ID, c.ID, email, raced)
			return err
		}}
		sso.SetSignInHook(srv.App.SSO, at.hook)
		defer sso.SetSignInHook(srv.App.SSO, nil)
		before := len(s.attempts(t, c.ID))
		provisioned := s.countRows(t, `SELECT count(*) FROM audit_events WHERE tenant_id = $1 AND action = $2`, audit.SSOUserProvisioned)

		p := s.start(t, "/sso/saml/"+c.Slug+"/login", "")
		doc := response(t, idp, c, p.RequestID, email, nil)
		res, err := srv.App.SSO.ACS(t.Context(), s.t, sso.ACSInput{Slug: c.Slug, SAMLResponse: base64.StdEncoding.EncodeToString(doc),
			RelayState: p.Relay, Browser: p.Browser})
		if err != nil {
			t.Fatalf("ACS: %v", err)
		}
		if diff := cmp.Diff([]string{"begin", "commit", "begin", "commit"}, at.seen()); diff != "" {
			t.Fatalf("the sign-in transaction was not retried once (-want +got):\n%s", diff)
		}
		if res.Provisioned {
			t.Fatal("Provisioned is set from the attempt that was rolled back")
		}
		if res.Report == nil {
			t.Fatal("no report")
		}
		if diff := cmp.Diff(wantSteps, stepNames(*res.Report)); diff != "" {
			t.Fatalf("reported steps (-want +got):\n%s", diff)
		}
		if res.Issued.Session.UserID.String() != raced {
			t.Fatalf("session of %s, want the concurrently created user %s", res.Issued.Session.UserID, raced)
		}
		attempts := s.attempts(t, c.ID)
		if len(attempts) != before+1 {
			t.Fatalf("%d new attempt rows, want 1", len(attempts)-before)
		}
		last := attempts[0]
		if diff := cmp.Diff(wantSteps, stepNames(last.Report)); diff != "" {
			t.Fatalf("trace steps (-want +got):\n%s", diff)
		}
		if got := last.Report.Steps[len(wantSteps)-1].Detail; got != "known identity" {
			t.Fatalf("user step: %q", got)
		}
		if got := s.countRows(t, `SELECT count(*) FROM users WHERE tenant_id = $1 AND lower(email) = $2`, email); got != 1 {
			t.Fatalf("%d users", got)
		}
		if got := s.countRows(t, `SELECT count(*) FROM sessions WHERE tenant_id = $1 AND user_id = $2`, raced); got != 1 {
			t.Fatalf("%d sessions", got)
		}
		if got := s.countRows(t, `SELECT count(*) FROM role_bindings WHERE tenant_id = $1 AND user_id = $2`, raced); got != 0 {
			t.Fatalf("%d role bindings granted to a user nobody provisioned here", got)
		}
		if got := s.countRows(t, `SELECT count(*) FROM audit_events WHERE tenant_id = $1 AND action = $2`, audit.SSOUserProvisioned); got != provisioned {
			t.Fatalf("%d new sso.user_provisioned events", got-provisioned)
		}
	})
}

// attemptRow is one row of sso_attempts with its stored trace.
type attemptRow struct {
	Success bool
	Reason  string
	Report  sso.Report
}

// attempts returns the connection's recorded attempts, newest first.
func (s *site) attempts(t testing.TB, connID string) []attemptRow {
	t.Helper()
	rows, err := s.d.Admin.Query(context.Background(), `SELECT success, reason, details FROM sso_attempts
		WHERE tenant_id = $1 AND connection_id = $2 ORDER BY created_at DESC, id DESC`, s.t.ID, connID)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []attemptRow
	for rows.Next() {
		var a attemptRow
		var details []byte
		if err := rows.Scan(&a.Success, &a.Reason, &details); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(details, &a.Report); err != nil {
			t.Fatal(err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func stepNames(r sso.Report) []string {
	var out []string
	for _, st := range r.Steps {
		out = append(out, st.Name)
	}
	return out
}

// countRows runs a count query whose first parameter is the site's tenant.
func (s *site) countRows(t testing.TB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := s.d.Admin.QueryRow(context.Background(), query, append([]any{s.t.ID}, args...)...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func (s *site) userID(t testing.TB, email string) string {
	t.Helper()
	var id string
	if err := s.d.Admin.QueryRow(context.Background(), `SELECT id FROM users WHERE tenant_id = $1 AND lower(email) = $2`, s.t.ID, email).Scan(&id); err != nil {
		t.Fatalf("user %s: %v", email, err)
	}
	return id
}
