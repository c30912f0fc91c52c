package sso_test

import (
	"net/http"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/sso/samltest"
)

// TestACSRequestSingleUse: the ACS consumes the pending request in its one transaction
// even when the response is then refused, and records the refusal: by the checks (the
// refusal commits with the consumption) and by the sign-in after its writes (rolled back,
// then the request is consumed again with the failure record). The valid answer to a
// request used up that way is refused.
func TestACSRequestSingleUse(t *testing.T) {
	t.Parallel()
	srv, d := newServer(t)
	s := newSite(t, srv, d)
	idp := mustIdP(t, "https://idp.example/single-use-"+s.t.Slug)

	t.Run("refused by the checks", func(t *testing.T) {
		c := s.connect(t, idp, nil)
		p := s.start(t, "/sso/saml/"+c.Slug+"/login", "")
		before := s.ssoSessions(t)
		doc := response(t, idp, c, p.RequestID, "once@example.org", nil)
		refused(t, s, s.post(t, c.Slug, samltest.StripSignatures(doc), p.Relay, p.Browser), before, "signature_missing")
		refused(t, s, s.post(t, c.Slug, doc, p.Relay, p.Browser), before, "request_already_used")
	})

	t.Run("refused by the sign-in", func(t *testing.T) {
		c := s.connect(t, idp, map[string]any{"jit": false})
		p := s.start(t, "/sso/saml/"+c.Slug+"/login", "")
		before := s.ssoSessions(t)
		doc := response(t, idp, c, p.RequestID, "nojit@example.org", nil)
		refused(t, s, s.post(t, c.Slug, doc, p.Relay, p.Browser), before, "jit_disabled")
		if n := s.countRows(t, `SELECT count(*) FROM users WHERE tenant_id = $1 AND email = 'nojit@example.org'`); n != 0 {
			t.Fatalf("%d users created by a refused sign-in", n)
		}
		if r := s.call(t, "PATCH", "/api/v1/admin/sso/connections/"+c.ID, s.admin, map[string]any{"jit": true}); r.StatusCode != http.StatusOK {
			t.Fatalf("turn JIT on: %d %s", r.StatusCode, r.Body)
		}
		// The same answer again: its request was used by the refused attempt (the replay
		// ids were rolled back with the sign-in, so this is the request's refusal).
		refused(t, s, s.post(t, c.Slug, doc, p.Relay, p.Browser), before, "request_already_used")
		attempts := s.attempts(t, c.ID)
		if len(attempts) != 2 || attempts[1].Reason != "jit_disabled" || attempts[0].Reason != "request_already_used" {
			t.Fatalf("attempt rows: %+v", attempts)
		}
	})
}
