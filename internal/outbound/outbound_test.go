package outbound

import (
	"context"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/domainverify"
)

func TestPublicAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"93.184.216.34": true, "2606:2800:220:1:248:1893:25c8:1946": true,
		"127.0.0.1": false, "10.0.0.5": false, "172.16.1.1": false, "192.168.1.1": false, "169.254.169.254": false,
		"100.64.1.1": false, "0.1.2.3": false, "198.18.0.1": false, "240.0.0.1": false, "255.255.255.255": false,
		"::1": false, "fe80::1": false, "fd00::1": false, "::ffff:10.0.0.5": false, "::ffff:93.184.216.34": true,
		"64:ff9b::a00:5": false, "64:ff9b::5db8:d822": true, "2002:a00:5::1": false, "::a00:5": false,
	} {
		if got := PublicAddr(netip.MustParseAddr(addr)); got != want {
			t.Errorf("PublicAddr(%s) = %v, want %v", addr, got, want)
		}
	}
}

// TestFetchErrorsNameAClassOnly: a failed outbound fetch says why in words of its own,
// never the dialer's or resolver's message with addresses, ports or resolver names
// (issue 14, finding 10).
func TestFetchErrorsNameAClassOnly(t *testing.T) {
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer tlsSrv.Close()
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()
	_, tlsPort, _ := net.SplitHostPort(strings.TrimPrefix(tlsSrv.URL, "https://"))
	_, closedPort, _ := net.SplitHostPort(closedAddr)
	cases := map[string]struct {
		url        string
		private    bool
		wantReason string
	}{
		"refused":     {"https://" + closedAddr + "/metadata", true, "the connection was refused"},
		"private":     {"https://" + closedAddr + "/metadata", false, "the host resolves to a private, loopback or link-local address"},
		"bad cert":    {tlsSrv.URL + "/metadata", true, "the server's TLS certificate could not be verified"},
		"no such dns": {"https://no-such-host.invalid/metadata", true, "the host name does not resolve"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := New(Config{AllowPrivate: c.private}).Get(context.Background(), c.url, "metadata URLs", "", 1<<20)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v", err)
			}
			reason := Reason(err)
			if reason != c.wantReason {
				t.Errorf("reason %q, want %q", reason, c.wantReason)
			}
			for _, leak := range []string{"127.0.0.1", tlsPort, closedPort, "dial", "lookup", "tcp", "x509"} {
				if strings.Contains(reason, leak) || strings.Contains(e.Error(), leak) {
					t.Errorf("reason %q shows %q", reason, leak)
				}
			}
		})
	}
}

// TestSwitch: off, http is refused before any connection and a public https URL is only
// allowed on a public address; on, http to loopback is fetched.
func TestSwitch(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }))
	defer srv.Close()
	if _, err := New(Config{}).Get(context.Background(), srv.URL, "webhook URLs", "", 10); Reason(err) != "webhook URLs must use https" {
		t.Fatalf("off, http: %v", err)
	}
	body, err := New(Config{AllowPrivate: true}).Get(context.Background(), srv.URL, "webhook URLs", "", 10)
	if err != nil || string(body) != "ok" {
		t.Fatalf("on, http: %q %v", body, err)
	}
	if _, err := New(Config{AllowPrivate: true}).Get(context.Background(), srv.URL, "x", "", 1); Reason(err) != "the document is larger than 1 bytes" {
		t.Fatalf("size limit: %v", err)
	}
	// Through HTTPClient (what go-oidc and oauth2 get) the same rules hold.
	if _, err := New(Config{}).HTTPClient().Get(srv.URL); Reason(err) != "the URL must use https" {
		t.Fatalf("HTTPClient off, http: %v", err)
	}
	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer tls.Close()
	pool := x509.NewCertPool()
	pool.AddCert(tls.Certificate())
	if _, err := New(Config{RootCAs: pool}).HTTPClient().Get(tls.URL); !strings.Contains(Reason(err), "private") {
		t.Fatalf("HTTPClient off, https loopback: %v", err)
	}
	if resp, err := New(Config{RootCAs: pool, AllowPrivate: true}).HTTPClient().Get(tls.URL); err != nil || resp.StatusCode != 200 {
		t.Fatalf("HTTPClient on, https loopback: %v", err)
	}
	for _, raw := range []string{"ftp://example.com/x", "https://user:pw@example.com/", "/relative", "https://"} {
		if _, err := New(Config{AllowPrivate: true}).CheckURL(raw, "x"); err == nil {
			t.Errorf("CheckURL(%q) accepted", raw)
		}
	}
}

// counted is a plain HTTP server on addr that counts the connections it accepted.
func counted(t *testing.T, addr string, h http.Handler) (port string, conns func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("listen on %s: %v", addr, err)
	}
	var mu sync.Mutex
	n := 0
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = ln
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			mu.Lock()
			n++
			mu.Unlock()
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	_, port, _ = net.SplitHostPort(ln.Addr().String())
	return port, func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// TestDNSAnswersAreCheckedWhenDialled: with the switch off, a host name whose DNS answer is
// loopback, private, link-local (metadata) or unique-local is refused before any
// connection, also when the answer changes after an earlier public one (rebinding); a
// redirect to plain http is refused. On, the loopback answers are reached.
func TestDNSAnswersAreCheckedWhenDialled(t *testing.T) {
	dns, err := domainverify.StartServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dns.Close() })
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })
	port4, conns4 := counted(t, "127.0.0.1:0", ok)
	port6, conns6 := counted(t, "[::1]:0", ok)
	for name, addr := range map[string]string{"loop4.hooks.test": "127.0.0.1", "loop6.hooks.test": "::1", "private.hooks.test": "10.1.2.3",
		"metadata.hooks.test": "169.254.169.254", "ula.hooks.test": "fd00::1", "mapped.hooks.test": "::ffff:10.1.2.3"} {
		dns.SetAddrs(name, netip.MustParseAddr(addr))
	}
	off := New(Config{Resolver: dns.Resolver(), Timeout: 3 * time.Second})
	for _, u := range []string{"https://loop4.hooks.test:" + port4 + "/", "https://loop6.hooks.test:" + port6 + "/",
		"https://private.hooks.test/", "https://metadata.hooks.test/latest/meta-data", "https://ula.hooks.test/", "https://mapped.hooks.test/"} {
		_, err := off.Get(context.Background(), u, "webhook URLs", "", 10)
		if Reason(err) != "the host resolves to a private, loopback or link-local address" {
			t.Errorf("off, %s: %v", u, err)
		}
	}
	// Rebinding: the name answered a public address a moment ago; what counts is the
	// address dialled now.
	dns.SetAddrs("rebind.hooks.test", netip.MustParseAddr("93.184.216.34"))
	dns.SetAddrs("rebind.hooks.test", netip.MustParseAddr("127.0.0.1"))
	if _, err := off.Get(context.Background(), "https://rebind.hooks.test:"+port4+"/", "webhook URLs", "", 10); !strings.Contains(Reason(err), "private") {
		t.Errorf("off, rebound name: %v", err)
	}
	if conns4() != 0 || conns6() != 0 {
		t.Fatalf("refused names still connected: %d to 127.0.0.1, %d to ::1", conns4(), conns6())
	}
	redirect := httptest.NewRequest(http.MethodGet, "http://loop4.hooks.test:"+port4+"/", nil)
	if err := off.http.CheckRedirect(redirect, []*http.Request{redirect}); !errors.Is(err, errInsecureRedirect) {
		t.Errorf("off, a redirect to http: %v", err)
	}

	on := New(Config{Resolver: dns.Resolver(), AllowPrivate: true, Timeout: 3 * time.Second})
	for _, u := range []string{"http://loop4.hooks.test:" + port4 + "/", "http://loop6.hooks.test:" + port6 + "/"} {
		if body, err := on.Get(context.Background(), u, "webhook URLs", "", 10); err != nil || string(body) != "ok" {
			t.Errorf("on, %s: %q %v", u, body, err)
		}
	}
	if conns4() != 1 || conns6() != 1 {
		t.Fatalf("on: %d connections to 127.0.0.1, %d to ::1, want 1 each", conns4(), conns6())
	}
}
