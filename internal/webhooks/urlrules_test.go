package webhooks_test

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/config"
	"github.com/gatehouse-id/gatehouse/internal/domainverify"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// logged is one row of an endpoint's deliveries log as the API shows it.
type logged struct {
	ID        string  `json:"id"`
	EventType string  `json:"event_type"`
	State     string  `json:"state"`
	Attempts  int     `json:"attempts"`
	Status    *int    `json:"status"`
	Response  *string `json:"response"`
}

// firstAttempt waits until the endpoint's log shows an attempted delivery of typ.
func firstAttempt(t *testing.T, site *testutil.Site, admin, endpoint, typ string) logged {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		r := site.Do(t, "GET", "/api/v1/admin/webhooks/"+endpoint+"/deliveries", admin, nil)
		var log struct{ Deliveries []logged }
		r.JSON(t, &log)
		for _, d := range log.Deliveries {
			if d.EventType == typ && d.Attempts > 0 {
				return d
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no attempt of %s to %s within 20 s: %s", typ, endpoint, r.Body)
		}
	}
}

// connCounter is a receiver's listener that counts the connections it accepted.
type connCounter struct {
	net.Listener
	mu sync.Mutex
	n  int
}

func (c *connCounter) Accept() (net.Conn, error) {
	conn, err := c.Listener.Accept()
	if err == nil {
		c.mu.Lock()
		c.n++
		c.mu.Unlock()
	}
	return conn, err
}

func (c *connCounter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

// countedReceiver is a receiver on addr whose connections are counted.
func countedReceiver(t *testing.T, addr string) (*receiver, *connCounter) {
	t.Helper()
	rc := newReceiver(t)
	rc.stop()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("listen on %s: %v", addr, err)
	}
	cc := &connCounter{Listener: ln}
	rc.ln = cc
	rc.serve()
	return rc, cc
}

func port(rc *receiver) string {
	_, p, _ := net.SplitHostPort(rc.ln.Addr().String())
	return p
}

// TestURLRulesThroughDNS: with the switch off, an endpoint named by a host whose DNS answer
// is loopback, private, metadata (link-local) or unique-local is never connected to: each
// delivery is refused at the dial and the deliveries log says why, also when the name
// answered a public address when the endpoint was created (DNS rebinding). With
// GATEHOUSE_OUTBOUND_ALLOW_PRIVATE on, the same names reach receivers on loopback.
func TestURLRulesThroughDNS(t *testing.T) {
	t.Parallel()
	dns, err := domainverify.StartServer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = dns.Close() })
	rc4, cc4 := countedReceiver(t, "127.0.0.1:0")
	rc6, cc6 := countedReceiver(t, "[::1]:0")
	for name, addr := range map[string]string{"loop4.hooks.test": "127.0.0.1", "loop6.hooks.test": "::1", "private.hooks.test": "10.1.2.3",
		"metadata.hooks.test": "169.254.169.254", "ula.hooks.test": "fd00::1", "rebind.hooks.test": "93.184.216.34"} {
		dns.SetAddrs(name, netip.MustParseAddr(addr))
	}
	resolver := dns.Resolver()

	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d, testutil.WithConfig(func(c *config.Config) {
		c.WebhookRetryUnit = 10 * time.Millisecond
		c.OutboundResolver = resolver
	}))
	site := testutil.NewSite(t, srv, "dnsrules")
	_, admin := site.Person(t, "owner@example.com", authz.Owner)
	ids := map[string]string{}
	for _, u := range []string{"https://loop4.hooks.test:" + port(rc4) + "/hooks", "https://loop6.hooks.test:" + port(rc6) + "/hooks",
		"https://private.hooks.test/hooks", "https://metadata.hooks.test/latest/meta-data", "https://ula.hooks.test/hooks",
		"https://rebind.hooks.test:" + port(rc4) + "/hooks"} {
		// A name is accepted when typed: its answer is judged when dialled, every time.
		r := site.Do(t, "POST", "/api/v1/admin/webhooks", admin, map[string]any{"url": u, "event_types": []string{"user.created"}})
		if r.StatusCode != http.StatusCreated {
			t.Fatalf("create %s: %d %s", u, r.StatusCode, r.Body)
		}
		var c created
		r.JSON(t, &c)
		ids[u] = c.Webhook.ID
	}
	dns.SetAddrs("rebind.hooks.test", netip.MustParseAddr("127.0.0.1")) // rebound after the check at creation
	site.Signup(t, "ann@example.com")
	for u, id := range ids {
		d := firstAttempt(t, site, admin, id, "user.created")
		if d.State != "pending" || d.Status != nil || d.Response == nil ||
			*d.Response != "the host resolves to a private, loopback or link-local address" {
			t.Errorf("%s: %+v (response %v), want refused at the dial with its reason", u, d, deref(d.Response))
		}
	}
	if cc4.count() != 0 || cc6.count() != 0 {
		t.Fatalf("refused endpoints were connected to: %d on 127.0.0.1, %d on ::1", cc4.count(), cc6.count())
	}

	// The switch on: the same names reach the receivers.
	on := testutil.NewServer(t, testutil.FreshDB(t), testutil.WithConfig(func(c *config.Config) {
		fast(c)
		c.OutboundResolver = resolver
	}))
	onSite := testutil.NewSite(t, on, "dnson")
	_, onAdmin := onSite.Person(t, "owner@example.com", authz.Owner)
	for _, rc := range []*receiver{rc4, rc6} {
		host := "loop4.hooks.test"
		if rc == rc6 {
			host = "loop6.hooks.test"
		}
		r := onSite.Do(t, "POST", "/api/v1/admin/webhooks", onAdmin, map[string]any{"url": fmt.Sprintf("http://%s:%s/hooks", host, port(rc)),
			"event_types": []string{"user.created"}})
		if r.StatusCode != http.StatusCreated {
			t.Fatalf("create on %s: %d %s", host, r.StatusCode, r.Body)
		}
		var c created
		r.JSON(t, &c)
		rc.trust("on", c.Secret)
	}
	onSite.Signup(t, "bob@example.com")
	rc4.waitFor("the delivery through loop4.hooks.test", 20*time.Second, func(ds []delivery) bool { return len(ds) == 1 })
	rc6.waitFor("the delivery through loop6.hooks.test", 20*time.Second, func(ds []delivery) bool { return len(ds) == 1 })
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// TestRedirectsAreNotFollowed: an endpoint that answers a redirect to another (here
// loopback) address gets no delivery there, even with the switch on: the 3xx is a failed
// attempt, retried, and the log says redirects are not followed.
func TestRedirectsAreNotFollowed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	inside, cc := countedReceiver(t, "127.0.0.1:0")
	front := newReceiver(t)
	front.redirect = "http://127.0.0.1:" + port(inside) + "/hooks"
	c := e.create(t, map[string]any{"url": front.URL(), "event_types": []string{"user.created"}})
	front.trust("current", c.Secret)
	inside.trust("current", c.Secret)
	e.Signup(t, "ann@example.com")
	d := firstAttempt(t, e.Site, e.admin, c.Webhook.ID, "user.created")
	if d.State != "pending" || d.Status == nil || *d.Status != http.StatusTemporaryRedirect || d.Response == nil ||
		!strings.Contains(*d.Response, "redirects are not followed") {
		t.Fatalf("redirect: %+v (response %s)", d, deref(d.Response))
	}
	time.Sleep(500 * time.Millisecond) // a few retries at the test's schedule
	if n := cc.count(); n != 0 {
		t.Fatalf("the redirect's target was connected to %d times", n)
	}
}
