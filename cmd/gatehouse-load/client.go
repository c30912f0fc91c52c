package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
)

// gatehouse is one running Gatehouse reached over HTTP: tenants are {slug}.{domain} on the
// address of base. Every request carries its own X-Forwarded-For address, so that a run
// from behind a trusted proxy (GATEHOUSE_TRUSTED_PROXIES=127.0.0.1/32) looks like many
// clients and measures the product, not the per-address limiter.
type gatehouse struct {
	base   *url.URL // http://127.0.0.1:PORT
	domain string   // base domain: localhost
	client *http.Client
	ip     atomic.Uint64
}

func newGatehouse(base, domain string, conns int) (*gatehouse, error) {
	u, err := url.Parse(strings.TrimRight(base, "/"))
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("-url %q: want http://host:port", base)
	}
	if !isLoopback(u.String() + "/") {
		return nil, fmt.Errorf("-url must point at a loopback address: this tool loads only this machine")
	}
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	return &gatehouse{base: u, domain: domain, client: &http.Client{
		Transport:     tr,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}, nil
}

func (g *gatehouse) close() { g.client.CloseIdleConnections() }

// host is the tenant's host name with the port (as a browser sends it).
func (g *gatehouse) host(slug string) string {
	return slug + "." + g.domain + ":" + g.base.Port()
}

// nextIP is a distinct client address from 10.0.0.0/8 for each call.
func (g *gatehouse) nextIP() string {
	n := g.ip.Add(1)
	return fmt.Sprintf("10.%d.%d.%d", n>>16&0xff, n>>8&0xff, n&0xff)
}

type call struct {
	method, slug, path string
	json               any        // request body as JSON
	form               url.Values // or as a form
	bearer             string
	cookie             string
	header             http.Header
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (g *gatehouse) do(c call) (reply, error) {
	var body io.Reader
	ctype := ""
	switch {
	case c.json != nil:
		b, err := json.Marshal(c.json)
		if err != nil {
			return reply{}, err
		}
		body, ctype = bytes.NewReader(b), "application/json"
	case c.form != nil:
		body, ctype = strings.NewReader(c.form.Encode()), "application/x-www-form-urlencoded"
	}
	req, err := http.NewRequest(c.method, g.base.String()+c.path, body)
	if err != nil {
		return reply{}, err
	}
	req.Host = g.host(c.slug)
	for k, v := range c.header {
		req.Header[k] = v
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	if c.cookie != "" {
		req.Header.Set("Cookie", c.cookie)
	}
	req.Header.Set("X-Forwarded-For", g.nextIP())
	resp, err := g.client.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	return reply{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

// expect turns an unexpected status into an error naming the call and the body's error code.
func expect(r reply, err error, c call, want int) (reply, error) {
	if err != nil {
		return r, fmt.Errorf("%s %s: %w", c.method, c.path, err)
	}
	if r.status != want {
		var e struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		_ = json.Unmarshal(r.body, &e)
		return r, &statusErr{op: c.method + " " + c.path, status: r.status, code: e.Error.Code}
	}
	return r, nil
}

func (g *gatehouse) call(c call, want int) (reply, error) {
	r, err := g.do(c)
	return expect(r, err, c, want)
}

type statusErr struct {
	op     string
	status int
	code   string
}

func (e *statusErr) Error() string {
	return fmt.Sprintf("%s: status %d %s", e.op, e.status, e.code)
}

// errKind is a short, stable label for an error in the report.
func errKind(err error) string {
	if se, ok := err.(*statusErr); ok {
		if se.code != "" {
			return fmt.Sprintf("%d %s", se.status, se.code)
		}
		return fmt.Sprint(se.status)
	}
	s := err.Error()
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

// checkSession is GET /api/v1/session as an app's backend sends it: a bearer token, no
// forwarded address, the body read and dropped. It is kept as lean as the loop of a bare
// load generator, so that the client's own work does not flatten the comparison with the
// bare handler (a heavier client makes every server look closer to the bare one).
func (g *gatehouse) checkSession(slug, token string) error {
	req, err := http.NewRequest(http.MethodGet, g.base.String()+"/api/v1/session", nil)
	if err != nil {
		return err
	}
	req.Host = g.host(slug)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := g.client.Do(req)
	if err != nil {
		return fmt.Errorf("GET /api/v1/session: %w", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return &statusErr{op: "GET /api/v1/session", status: resp.StatusCode}
	}
	return nil
}
