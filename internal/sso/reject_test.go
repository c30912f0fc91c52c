package sso_test

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/gatehouse-id/gatehouse/internal/sso/samltest"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// TestRejections: every attack in ../shared/SECURITY.md's SAML catalogue is refused with
// no session, a generic error page with a reference, and an audit entry naming the reason.
func TestRejections(t *testing.T) {
	t.Parallel()
	srv, d := newServer(t)
	s := newSite(t, srv, d)
	idp := mustIdP(t, "https://idp.example/"+s.t.Slug)
	c := s.connect(t, idp, nil)
	attacker := mustIdP(t, "https://idp.example/"+s.t.Slug) // same entity id, another key
	spCert := spCertificate(t, s, c.Slug)
	otherCert := attacker.Cert

	sign := func(t *testing.T, r samltest.Response, opt samltest.SignOptions) []byte {
		t.Helper()
		doc, err := idp.Sign(r, opt)
		if err != nil {
			t.Fatal(err)
		}
		return doc
	}
	assertionSigned := samltest.SignOptions{SignAssertion: true}
	responseSigned := samltest.SignOptions{SignResponse: true}
	type attack struct {
		name    string
		build   func(t *testing.T, p pending) []byte
		reasons []string // any of these
		relay   func(p pending) string
		browser func(p pending) string
	}
	valid := func(p pending) samltest.Response {
		return idp.NewResponse(time.Now(), c.ACSURL, c.SPEntityID, p.RequestID, "victim@example.org")
	}
	var attacks []attack
	for v := 1; v <= samltest.XSWVariants; v++ {
		opt := assertionSigned
		if v <= 2 {
			opt = responseSigned
		}
		attacks = append(attacks, attack{name: fmt.Sprintf("XSW%d", v), build: func(t *testing.T, p pending) []byte {
			out, err := samltest.XSW(sign(t, valid(p), opt), v, "evil@example.org")
			if err != nil {
				t.Fatal(err)
			}
			return out
		}, reasons: []string{"signature_invalid", "signature_missing", "malformed_response", "duplicate_id", "invalid_response", "unsupported"}})
	}
	attacks = append(attacks,
		attack{name: "signature removed", build: func(t *testing.T, p pending) []byte {
			return samltest.StripSignatures(sign(t, valid(p), assertionSigned))
		}, reasons: []string{"signature_missing"}},
		attack{name: "NameID changed after signing", build: func(t *testing.T, p pending) []byte {
			return samltest.ReplaceNameID(sign(t, valid(p), assertionSigned), "admin@example.org")
		}, reasons: []string{"signature_invalid"}},
		attack{name: "second unsigned assertion", build: func(t *testing.T, p pending) []byte {
			r := valid(p)
			extra := r.Assertions[0]
			extra.ID, extra.NameID = samltest.NewID(), "evil@example.org"
			out, err := samltest.AddUnsignedAssertion(sign(t, r, assertionSigned), extra)
			if err != nil {
				t.Fatal(err)
			}
			return out
		}, reasons: []string{"malformed_response", "signature_invalid", "invalid_response", "signature_missing"}},
		attack{name: "missing audience", build: func(t *testing.T, p pending) []byte {
			r := valid(p)
			r.Assertions[0].Audience = ""
			return sign(t, r, assertionSigned)
		}, reasons: []string{"audience_mismatch"}},
		attack{name: "wrong audience", build: func(t *testing.T, p pending) []byte {
			r := valid(p)
			r.Assertions[0].Audience = "https://other.example/sso/saml/x/metadata"
			return sign(t, r, assertionSigned)
		}, reasons: []string{"audience_mismatch"}},
		attack{name: "wrong destination", build: func(t *testing.T, p pending) []byte {
			r := valid(p)
			r.Destination = strings.Replace(c.ACSURL, s.t.Slug, "other", 1)
			r.Assertions[0].Recipient = r.Destination
			return sign(t, r, assertionSigned)
		}, reasons: []string{"destination_mismatch"}},
		attack{name: "expired", build: func(t *testing.T, p pending) []byte {
			r := valid(p)
			past := time.Now().Add(-saml.MaxClockSkew - 10*time.Second)
			r.Assertions[0].NotOnOrAfter, r.Assertions[0].SubjectNotOnOrAfter = past, past
			return sign(t, r, assertionSigned)
		}, reasons: []string{"expired"}},
		attack{name: "not yet valid", build: func(t *testing.T, p pending) []byte {
			r := valid(p)
			r.Assertions[0].NotBefore = time.Now().Add(saml.MaxClockSkew + 10*time.Second)
			return sign(t, r, assertionSigned)
		}, reasons: []string{"not_yet_valid"}},
		attack{name: "signed by another IdP's key", build: func(t *testing.T, p pending) []byte {
			doc, err := attacker.Sign(valid(p), assertionSigned)
			if err != nil {
				t.Fatal(err)
			}
			return doc
		}, reasons: []string{"untrusted_certificate", "signature_invalid"}},
		attack{name: "attacker key claiming the IdP certificate", build: func(t *testing.T, p pending) []byte {
			return sign(t, valid(p), samltest.SignOptions{SignAssertion: true, Key: attacker.Key, Cert: idp.Cert})
		}, reasons: []string{"signature_invalid", "untrusted_certificate"}},
		attack{name: "unknown InResponseTo", build: func(t *testing.T, p pending) []byte {
			r := idp.NewResponse(time.Now(), c.ACSURL, c.SPEntityID, "_not-ours", "victim@example.org")
			return sign(t, r, assertionSigned)
		}, reasons: []string{"in_response_to_mismatch"}},
		attack{name: "IdP-initiated while disabled", build: func(t *testing.T, p pending) []byte {
			r := idp.NewResponse(time.Now(), c.ACSURL, c.SPEntityID, "", "victim@example.org")
			return sign(t, r, assertionSigned)
		}, reasons: []string{"idp_initiated_disabled"}, relay: func(pending) string { return "" }},
		attack{name: "foreign RelayState", build: func(t *testing.T, p pending) []byte {
			return sign(t, valid(p), assertionSigned)
		}, reasons: []string{"no_pending_request", "idp_initiated_disabled"}, relay: func(pending) string { return "https://evil.example/" }},
		attack{name: "other browser", build: func(t *testing.T, p pending) []byte {
			return sign(t, valid(p), assertionSigned)
		}, reasons: []string{"browser_mismatch"}, browser: func(pending) string { return "" }},
		attack{name: "SHA-1 signature", build: func(t *testing.T, p pending) []byte {
			return sign(t, valid(p), samltest.SignOptions{SignAssertion: true, SHA1: true})
		}, reasons: []string{"sha1_refused"}},
		attack{name: "DOCTYPE external entity", build: func(t *testing.T, p pending) []byte {
			return samltest.WithDoctype(sign(t, valid(p), assertionSigned), samltest.DoctypeXXE)
		}, reasons: []string{"doctype_refused"}},
		attack{name: "entity expansion", build: func(t *testing.T, p pending) []byte {
			return samltest.WithDoctype(sign(t, valid(p), assertionSigned), samltest.DoctypeBomb)
		}, reasons: []string{"doctype_refused"}},
		attack{name: "duplicate ID", build: func(t *testing.T, p pending) []byte {
			out, err := samltest.DuplicateID(sign(t, valid(p), assertionSigned))
			if err != nil {
				t.Fatal(err)
			}
			return out
		}, reasons: []string{"duplicate_id"}},
		attack{name: "encrypted for the wrong key", build: func(t *testing.T, p pending) []byte {
			doc, err := idp.Build(valid(p), assertionSigned)
			if err != nil {
				t.Fatal(err)
			}
			if err := samltest.EncryptAssertion(doc, otherCert); err != nil {
				t.Fatal(err)
			}
			out, _ := doc.WriteToBytes()
			return out
		}, reasons: []string{"decryption_failed"}},
		attack{name: "IdP status not success", build: func(t *testing.T, p pending) []byte {
			r := valid(p)
			r.StatusCode = samltest.StatusRequester
			r.Assertions = nil
			out, err := idp.Sign(r, responseSigned)
			if err != nil {
				t.Fatal(err)
			}
			return out
		}, reasons: []string{"idp_status_error"}},
	)
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			p := s.start(t, "/sso/saml/"+c.Slug+"/login", "")
			relay, browser := p.Relay, p.Browser
			if a.relay != nil {
				relay = a.relay(p)
			}
			if a.browser != nil {
				browser = a.browser(p)
			}
			before := s.ssoSessions(t)
			r := s.post(t, c.Slug, a.build(t, p), relay, browser)
			refused(t, s, r, before, a.reasons...)
		})
	}

	// The same response encrypted to the SP's own key is accepted (control for the above).
	t.Run("encrypted for the SP key is accepted", func(t *testing.T) {
		p := s.start(t, "/sso/saml/"+c.Slug+"/login", "")
		doc, err := idp.Build(valid(p), assertionSigned)
		if err != nil {
			t.Fatal(err)
		}
		if err := samltest.EncryptAssertion(doc, spCert); err != nil {
			t.Fatal(err)
		}
		out, _ := doc.WriteToBytes()
		if r := s.post(t, c.Slug, out, p.Relay, p.Browser); r.StatusCode != http.StatusSeeOther || sessionToken(r) == "" {
			t.Fatalf("encrypted assertion: %d %s", r.StatusCode, r.Body)
		}
	})

	// Replay: the same response again; its request is used up.
	t.Run("replayed response", func(t *testing.T) {
		p := s.start(t, "/sso/saml/"+c.Slug+"/login", "")
		doc := sign(t, valid(p), assertionSigned)
		if r := s.post(t, c.Slug, doc, p.Relay, p.Browser); r.StatusCode != http.StatusSeeOther {
			t.Fatalf("first: %d %s", r.StatusCode, r.Body)
		}
		before := s.ssoSessions(t)
		refused(t, s, s.post(t, c.Slug, doc, p.Relay, p.Browser), before, "request_already_used")
		// And to a fresh request of the same browser: the InResponseTo is not that request's.
		p2 := s.start(t, "/sso/saml/"+c.Slug+"/login", "")
		refused(t, s, s.post(t, c.Slug, doc, p2.Relay, p2.Browser), before, "in_response_to_mismatch", "replayed")
	})

	// Comment injection: the identity is the full NameID text, never a truncated prefix.
	t.Run("comment in NameID", func(t *testing.T) {
		p := s.start(t, "/sso/saml/"+c.Slug+"/login", "")
		doc, err := idp.CommentInjectNameID(valid(p), assertionSigned, "user@evil.com", ".example.org")
		if err != nil {
			t.Fatal(err)
		}
		r := s.post(t, c.Slug, doc, p.Relay, p.Browser)
		if r.StatusCode == http.StatusSeeOther {
			var nameID string
			if err := d.Admin.QueryRow(t.Context(), `SELECT name_id FROM sso_identities WHERE tenant_id = $1 AND name_id LIKE 'user@evil.com%'`, s.t.ID).Scan(&nameID); err != nil {
				t.Fatal(err)
			}
			if nameID != "user@evil.com.example.org" {
				t.Fatalf("identity %q is not the full NameID", nameID)
			}
			return
		}
		if r.StatusCode != http.StatusForbidden {
			t.Fatalf("status %d", r.StatusCode)
		}
	})

	// An oversized body is refused before parsing.
	t.Run("oversized body", func(t *testing.T) {
		p := s.start(t, "/sso/saml/"+c.Slug+"/login", "")
		huge := bytes.Repeat([]byte("A"), 600<<10)
		before := s.ssoSessions(t)
		r := s.srv.Do(t, testutil.Request{Method: "POST", Host: s.host, Path: "/sso/saml/" + c.Slug + "/acs",
			Body:   "SAMLResponse=" + string(huge) + "&RelayState=" + p.Relay,
			Header: http.Header{"Content-Type": {"application/x-www-form-urlencoded"}, "Cookie": {"__Host-gatehouse-saml=" + p.Browser}}})
		if r.StatusCode != http.StatusRequestEntityTooLarge {
			t.Fatalf("status %d", r.StatusCode)
		}
		if s.ssoSessions(t) != before {
			t.Fatal("a session was created")
		}
	})
}

// refused checks a refusal: 403 generic page with a reference, no session, audit reason.
func refused(t *testing.T, s *site, resp *testutil.Response, before int, reasons ...string) {
	t.Helper()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403: %s", resp.StatusCode, resp.Body)
	}
	ref := resp.Header.Get("X-Gatehouse-SSO-Reference")
	if ref == "" || !strings.Contains(string(resp.Body), ref) {
		t.Fatalf("no reference on the error page: %s", resp.Body)
	}
	for _, leak := range []string{"signature", "audience", "InResponseTo", "certificate", "goroutine"} {
		if strings.Contains(string(resp.Body), leak) {
			t.Fatalf("error page leaks %q: %s", leak, resp.Body)
		}
	}
	if sessionToken(resp) != "" || s.ssoSessions(t) != before {
		t.Fatal("a session was created")
	}
	got := s.lastFailure(t)
	for _, want := range reasons {
		if got == want {
			return
		}
	}
	t.Fatalf("audit reason %q, want one of %v", got, reasons)
}

var certRe = regexp.MustCompile(`<(?:ds:)?X509Certificate[^>]*>([^<]+)</`)

// spCertificate reads the SP's certificate from its published metadata.
func spCertificate(t *testing.T, s *site, slug string) *x509.Certificate {
	t.Helper()
	md := s.call(t, "GET", "/sso/saml/"+slug+"/metadata", "", nil)
	m := certRe.FindSubmatch(md.Body)
	if m == nil {
		t.Fatalf("no certificate in SP metadata: %s", md.Body)
	}
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(string(m[1])), ""))
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}
