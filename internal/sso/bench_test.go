package sso_test

import (
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"

	"github.com/gatehouse-id/gatehouse/internal/sso/samltest"
)

// bareNsPerOp carries the bare figure to the end-to-end sub-benchmark (same run).
var bareNsPerOp atomic.Int64

// BenchmarkACS: SAML ACS requests/s end to end over loopback (HTTP form post → checks →
// JIT lookup → session → 303), next to crewjam's bare ParseXMLResponse on the same kind
// of responses (signed assertion, RSA-2048, SHA-256), both with every core busy
// (RunParallel). Run with a fixed count, since every response answers its own request:
//
//	go test ./internal/sso -run '^$' -bench ACS -benchtime 2000x
func BenchmarkACS(b *testing.B) {
	srv, d := newServer(b)
	s := newSite(b, srv, d)
	idp, err := samltest.NewIdP("https://idp.example/bench")
	if err != nil {
		b.Fatal(err)
	}
	c := s.connect(b, idp, nil)
	users := 200 // the same employees sign in again and again (identity lookup, not JIT)

	b.Run("bare_ParseXMLResponse", func(b *testing.B) {
		ed, err := samlsp.ParseMetadata(idp.Metadata("https://idp.example/sso", ""))
		if err != nil {
			b.Fatal(err)
		}
		key, cert, _ := samltest.NewKeyPair("sp", 2048)
		acs, _ := url.Parse(c.ACSURL)
		sp := &saml.ServiceProvider{EntityID: c.SPEntityID, Key: key, Certificate: cert, AcsURL: *acs, IDPMetadata: ed,
			RejectSHA1Signatures: true, RejectUnknownConditions: true}
		docs := make([][]byte, b.N)
		ids := make([]string, b.N)
		for i := range docs {
			ids[i] = samltest.NewID()
			docs[i] = signTB(b, idp, c.ACSURL, c.SPEntityID, ids[i], i%users)
		}
		var next atomic.Int64
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := next.Add(1) - 1
				if _, err := sp.ParseXMLResponse(docs[i], []string{ids[i]}, *acs); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.StopTimer()
		bareNsPerOp.Store(b.Elapsed().Nanoseconds() / int64(b.N))
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	})

	b.Run("end_to_end_loopback", func(b *testing.B) {
		type item struct {
			p   pending
			doc []byte
		}
		items := make([]item, b.N)
		for i := range items {
			p := s.start(b, "/sso/saml/"+c.Slug+"/login", "")
			items[i] = item{p, signTB(b, idp, c.ACSURL, c.SPEntityID, p.RequestID, i%users)}
		}
		var next atomic.Int64
		client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
		post := func(it item) error {
			form := samltest.PostForm("", it.doc, it.p.Relay).Encode()
			req, _ := http.NewRequest("POST", "http://"+srv.Addr+"/sso/saml/"+c.Slug+"/acs", strings.NewReader(form))
			req.Host = s.host
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Cookie", "__Host-gatehouse-saml="+it.p.Browser)
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusSeeOther {
				return &statusError{resp.StatusCode}
			}
			return nil
		}
		b.SetParallelism(16) // 32 requests in flight on 2 cores: the server, not the client's latency, is measured
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := post(items[next.Add(1)-1]); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		if bare := bareNsPerOp.Load(); bare > 0 {
			b.ReportMetric(100*float64(bare)/float64(b.Elapsed().Nanoseconds()/int64(b.N)), "%_of_bare")
		}
	})
}

type statusError struct{ code int }

func (e *statusError) Error() string { return http.StatusText(e.code) }

func signTB(tb testing.TB, idp *samltest.IdP, acs, audience, reqID string, user int) []byte {
	tb.Helper()
	r := idp.NewResponse(time.Now(), acs, audience, reqID, "employee"+itoa(user)+"@bench.example")
	doc, err := idp.Sign(r, samltest.SignOptions{SignAssertion: true})
	if err != nil {
		tb.Fatal(err)
	}
	return doc
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}
