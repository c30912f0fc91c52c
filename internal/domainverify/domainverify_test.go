package domainverify

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
)

const (
	testDomain = "example.com"
	testRecord = "_gatehouse.example.com"
	testToken  = "gatehouse-verify=3f9a1c7e"
)

// startServer starts a loopback Server that is closed when the test ends.
func startServer(t *testing.T) *Server {
	t.Helper()
	s, err := StartServer()
	if err != nil {
		t.Fatalf("StartServer: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// startHandler serves h on a loopback UDP socket until the test ends and returns its address.
func startHandler(t *testing.T, h dns.HandlerFunc) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started, done := make(chan struct{}), make(chan error, 1)
	srv := &dns.Server{PacketConn: pc, Handler: h, NotifyStartedFunc: func() { close(started) }}
	go func() { done <- srv.ActivateAndServe() }()
	select {
	case <-started:
	case err := <-done:
		t.Fatalf("serve: %v", err)
	}
	t.Cleanup(func() {
		_ = srv.Shutdown()
		<-done
	})
	return pc.LocalAddr().String()
}

// systemVerifier returns a Verifier on the system-resolver code path whose queries all
// go to addr.
func systemVerifier(addr string) *Verifier {
	v := New("", 2*time.Second)
	v.resolver = &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}
	return v
}

func TestCheck(t *testing.T) {
	long := strings.Repeat("x", 150)
	tests := []struct {
		name    string
		records [][]string // nil: name not present (NXDOMAIN)
		domain  string
		token   string
		wantErr error
		wantMsg []string // substrings of the error message
	}{
		{name: "match", records: [][]string{{testToken}}},
		{name: "one of several records", records: [][]string{{"v=spf1 -all"}, {testToken}, {"other"}}},
		{name: "whitespace around record", records: [][]string{{"  " + testToken + "\t\n"}}},
		{name: "whitespace around token", records: [][]string{{testToken}}, token: " " + testToken + " "},
		{name: "multi-string record concatenated", records: [][]string{{"gatehouse-", "verify=", "3f9a1c7e"}}},
		{name: "domain normalised", records: [][]string{{testToken}}, domain: "EXAMPLE.com."},
		{name: "quotes and backslashes", records: [][]string{{`a"b\c;d`}}, token: `a"b\c;d`},
		{
			name: "no match", records: [][]string{{"a"}, {"b"}, {testToken + "x"}, {long}},
			wantErr: ErrNotFound,
			wantMsg: []string{testRecord, `found 4: "a", "b", "` + testToken + `x", (+1 more)`},
		},
		{
			name: "no match truncates values", records: [][]string{{long}},
			wantErr: ErrNotFound, wantMsg: []string{`found 1: "` + long[:100] + `…"`},
		},
		{name: "NXDOMAIN", wantErr: ErrNotFound, wantMsg: []string{"NXDOMAIN", testRecord}},
		{name: "no TXT records", records: [][]string{}, wantErr: ErrNotFound, wantMsg: []string{"no TXT records"}},
		{name: "invalid domain", records: [][]string{{testToken}}, domain: "localhost", wantErr: ErrInvalidDomain},
		{name: "empty token", records: [][]string{{""}}, token: " ", wantErr: ErrInvalidToken},
	}
	s := startServer(t)
	v := New(s.Addr, 2*time.Second)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.mu.Lock()
			delete(s.records, dns.CanonicalName(testRecord))
			s.mu.Unlock()
			if tt.records != nil {
				s.setRecords(testRecord, tt.records)
			}
			domain, token := tt.domain, tt.token
			if domain == "" {
				domain = testDomain
			}
			if token == "" {
				token = testToken
			}

			err := v.Check(context.Background(), domain, token)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Check = %v, want %v", err, tt.wantErr)
			}
			if errors.Is(err, ErrLookup) {
				t.Errorf("Check = %v, must not be ErrLookup", err)
			}
			for _, want := range tt.wantMsg {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("Check error %q does not contain %q", err, want)
				}
			}
		})
	}
}

func TestCheckSetTXTSplitsLongValues(t *testing.T) {
	s := startServer(t)
	token := strings.Repeat("t", 300) // > 255 bytes: two character-strings
	s.SetTXT(testRecord, "unrelated", token)
	if err := New(s.Addr, 0).Check(context.Background(), testDomain, token); err != nil {
		t.Fatalf("Check = %v", err)
	}
	s.SetTXT(testRecord, "replaced")
	if err := New(s.Addr, 0).Check(context.Background(), testDomain, token); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Check after replace = %v, want ErrNotFound", err)
	}
}

func TestCheckTimeout(t *testing.T) {
	// A UDP socket that never answers.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()

	start := time.Now()
	err = New(pc.LocalAddr().String(), 200*time.Millisecond).Check(context.Background(), testDomain, testToken)
	if !errors.Is(err, ErrLookup) || errors.Is(err, ErrNotFound) {
		t.Fatalf("Check = %v, want ErrLookup", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("Check took %v, want about 200ms", elapsed)
	}
}

func TestCheckCanceledContext(t *testing.T) {
	s := startServer(t)
	s.SetTXT(testRecord, testToken)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := New(s.Addr, 0).Check(ctx, testDomain, testToken); !errors.Is(err, ErrLookup) {
		t.Fatalf("Check = %v, want ErrLookup", err)
	}
}

func TestCheckServerFailure(t *testing.T) {
	addr := startHandler(t, func(w dns.ResponseWriter, req *dns.Msg) {
		resp := new(dns.Msg)
		resp.SetRcode(req, dns.RcodeServerFailure)
		_ = w.WriteMsg(resp)
	})
	err := New(addr, 0).Check(context.Background(), testDomain, testToken)
	if !errors.Is(err, ErrLookup) || !strings.Contains(err.Error(), "SERVFAIL") {
		t.Fatalf("Check = %v, want ErrLookup mentioning SERVFAIL", err)
	}
}

func TestCheckFollowsCNAME(t *testing.T) {
	addr := startHandler(t, func(w dns.ResponseWriter, req *dns.Msg) {
		resp := new(dns.Msg)
		resp.SetReply(req)
		hdr := func(name string, typ uint16) dns.RR_Header {
			return dns.RR_Header{Name: name, Rrtype: typ, Class: dns.ClassINET, Ttl: 60}
		}
		resp.Answer = []dns.RR{
			&dns.CNAME{Hdr: hdr(dns.Fqdn(testRecord), dns.TypeCNAME), Target: "Verify.Provider.NET."},
			&dns.TXT{Hdr: hdr("verify.provider.net.", dns.TypeTXT), Txt: []string{"via-cname"}},
			&dns.TXT{Hdr: hdr("unrelated.example.org.", dns.TypeTXT), Txt: []string{"stray"}},
		}
		_ = w.WriteMsg(resp)
	})
	v := New(addr, 0)
	if err := v.Check(context.Background(), testDomain, "via-cname"); err != nil {
		t.Errorf("Check via CNAME = %v", err)
	}
	if err := v.Check(context.Background(), testDomain, "stray"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Check with record at unrelated name = %v, want ErrNotFound", err)
	}
}

func TestCheckTruncatedRetriesOverTCP(t *testing.T) {
	// Serve the same records over TCP on the Server's port so the fallback can succeed.
	var s *Server
	var ln net.Listener
	for attempt := 0; ln == nil; attempt++ {
		s = startServer(t)
		l, err := net.Listen("tcp", s.Addr)
		if err == nil {
			ln = l
		} else if attempt == 5 {
			t.Fatalf("listen tcp %s: %v", s.Addr, err)
		}
	}
	tcp := &dns.Server{Listener: ln, Handler: dns.HandlerFunc(s.serveDNS)}
	done := make(chan error, 1)
	go func() { done <- tcp.ActivateAndServe() }()

	filler := strings.Repeat("f", 250)
	s.SetTXT(testRecord, filler, filler, filler, testToken) // > 512 bytes over UDP
	v := New(s.Addr, 2*time.Second)
	if err := v.Check(context.Background(), testDomain, testToken); err != nil {
		t.Errorf("Check = %v", err)
	}

	if err := tcp.Shutdown(); err != nil {
		t.Fatalf("shutdown TCP server: %v", err)
	}
	<-done
	err := v.Check(context.Background(), testDomain, testToken)
	if !errors.Is(err, ErrLookup) {
		t.Errorf("Check without TCP = %v, want ErrLookup", err)
	}
}

func TestCheckSystemResolver(t *testing.T) {
	s := startServer(t)
	v := systemVerifier(s.Addr)
	ctx := context.Background()

	if err := v.Check(ctx, testDomain, testToken); !errors.Is(err, ErrNotFound) {
		t.Errorf("NXDOMAIN: Check = %v, want ErrNotFound", err)
	}
	s.SetTXT(testRecord)
	if err := v.Check(ctx, testDomain, testToken); !errors.Is(err, ErrNotFound) {
		t.Errorf("no TXT records: Check = %v, want ErrNotFound", err)
	}
	s.SetTXT(testRecord, "other", " "+testToken+" ")
	if err := v.Check(ctx, testDomain, testToken); err != nil {
		t.Errorf("match: Check = %v", err)
	}
	s.setRecords(testRecord, [][]string{{"gatehouse-", "verify=3f9a1c7e"}})
	if err := v.Check(ctx, testDomain, testToken); err != nil {
		t.Errorf("multi-string: Check = %v", err)
	}
	s.SetTXT(testRecord, "other")
	err := v.Check(ctx, testDomain, testToken)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `found 1: "other"`) {
		t.Errorf("no match: Check = %v, want ErrNotFound listing \"other\"", err)
	}
}

func TestCheckSystemResolverFailure(t *testing.T) {
	addr := startHandler(t, func(w dns.ResponseWriter, req *dns.Msg) {
		resp := new(dns.Msg)
		resp.SetRcode(req, dns.RcodeServerFailure)
		_ = w.WriteMsg(resp)
	})
	err := systemVerifier(addr).Check(context.Background(), testDomain, testToken)
	if !errors.Is(err, ErrLookup) {
		t.Fatalf("Check = %v, want ErrLookup", err)
	}
}

func TestRecordName(t *testing.T) {
	if got := RecordName("example.com"); got != "_gatehouse.example.com" {
		t.Errorf("RecordName = %q", got)
	}
}

func TestNormalizeDomain(t *testing.T) {
	ok := map[string]string{
		"example.com":                    "example.com",
		"Example.COM":                    "example.com",
		"example.com.":                   "example.com",
		" sub.example.co.uk ":            "sub.example.co.uk",
		"bücher.example":                 "xn--bcher-kva.example",
		"BÜCHER.example":                 "xn--bcher-kva.example",
		"xn--bcher-kva.example":          "xn--bcher-kva.example",
		"a-b.example":                    "a-b.example",
		strings.Repeat("a", 63) + ".com": strings.Repeat("a", 63) + ".com",
	}
	for in, want := range ok {
		got, err := NormalizeDomain(in)
		if err != nil || got != want {
			t.Errorf("NormalizeDomain(%q) = %q, %v; want %q", in, got, err, want)
		}
	}

	bad := []string{
		"", ".", "localhost", "*.example.com", "a..b", ".example.com", "example.com..",
		strings.Repeat("a", 64) + ".com", "exa mple.com", "exam_ple.com", "-example.com",
		"example-.com", "1.2.3.4", "example.com/path", "user@example.com",
		strings.Repeat(strings.Repeat("a", 63)+".", 4) + "com", // 259 characters
	}
	for _, in := range bad {
		if got, err := NormalizeDomain(in); !errors.Is(err, ErrInvalidDomain) {
			t.Errorf("NormalizeDomain(%q) = %q, %v; want ErrInvalidDomain", in, got, err)
		}
	}
}

func TestDescribe(t *testing.T) {
	long := strings.Repeat("é", 60) // 120 bytes; the cut must not split a rune
	got := describe([]string{"a", "line\nbreak", long, "d", "e"})
	want := `5: "a", "line\nbreak", "` + strings.Repeat("é", 50) + `…", (+2 more)`
	if got != want {
		t.Errorf("describe = %s\nwant       %s", got, want)
	}
}

func TestEscapeRoundTrip(t *testing.T) {
	raw := make([]byte, 256)
	for i := range raw {
		raw[i] = byte(i)
	}
	if got := unescapeTXT(escapeTXT(string(raw))); got != string(raw) {
		t.Errorf("unescapeTXT(escapeTXT(all bytes)) = %q", got)
	}
}
