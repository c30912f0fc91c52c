package sso

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
)

func TestPublicAddr(t *testing.T) {
	for addr, want := range map[string]bool{
		"93.184.216.34": true, "2606:2800:220:1:248:1893:25c8:1946": true,
		"127.0.0.1": false, "10.0.0.5": false, "172.16.1.1": false, "192.168.1.1": false, "169.254.169.254": false,
		"100.64.1.1": false, "0.1.2.3": false, "198.18.0.1": false, "240.0.0.1": false, "255.255.255.255": false,
		"::1": false, "fe80::1": false, "fd00::1": false, "::ffff:10.0.0.5": false, "::ffff:93.184.216.34": true,
		"64:ff9b::a00:5": false, "64:ff9b::5db8:d822": true, "2002:a00:5::1": false, "::a00:5": false,
	} {
		if got := publicAddr(netip.MustParseAddr(addr)); got != want {
			t.Errorf("publicAddr(%s) = %v, want %v", addr, got, want)
		}
	}
}

// TestFetchErrorsNameAClassOnly: a failed metadata fetch says why in words of its own,
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
			s := &Service{fetch: metadataClient(c.private)}
			_, err := s.FetchMetadata(context.Background(), c.url)
			e := apperr.From(err)
			if e == nil || e.Code != "metadata_fetch_failed" {
				t.Fatalf("error %v", err)
			}
			reason, _ := e.Details["reason"].(string)
			if reason != c.wantReason {
				t.Errorf("reason %q, want %q", reason, c.wantReason)
			}
			for _, leak := range []string{"127.0.0.1", tlsPort, closedPort, "dial", "lookup", "tcp", "x509"} {
				if strings.Contains(reason, leak) || strings.Contains(e.Message, leak) {
					t.Errorf("reason %q shows %q", reason, leak)
				}
			}
		})
	}
}
