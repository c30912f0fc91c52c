package main

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/sso/samltest"
)

// workload holds what the operations need: the tenants, the users signed up during
// preparation (each with its newest session token) and the SAML signer.
type workload struct {
	g         *gatehouse
	mail      *mailbox
	idp       *samltest.IdP
	tenants   []string
	sp        map[string]spInfo   // per tenant: the SP's entity id and ACS URL
	apps      map[string]*oidcApp // per tenant: the load app (oidc run)
	users     []*user
	employees int // distinct SSO users per tenant
	run       string
	seq       atomic.Uint64
	// adminPassword holds the tenants whose admin's password this run has set.
	adminPassword sync.Map
}

type user struct {
	slug, email, password string
	token                 atomic.Pointer[string]
}

type spInfo struct{ entityID, acsURL string }

const loadPassword = "load-test correct horse battery staple"

func (w *workload) uniqueEmail(slug string) string {
	return fmt.Sprintf("u%d-%s@%s.load.example", w.seq.Add(1), w.run, slug)
}

func (w *workload) randomTenant(r *rand.Rand) string { return w.tenants[r.IntN(len(w.tenants))] }
func (w *workload) randomUser(r *rand.Rand) *user    { return w.users[r.IntN(len(w.users))] }

// signupVerify signs a new address up, waits for the verification mail and confirms it:
// what a new user does, mail delivery included.
func (w *workload) signupVerify(ctx context.Context, slug string) (*user, error) {
	u := &user{slug: slug, email: w.uniqueEmail(slug), password: loadPassword}
	wait := w.mail.expect(u.email)
	c := call{method: "POST", slug: slug, path: "/api/v1/signup", json: map[string]string{"email": u.email, "password": u.password}}
	if _, err := w.g.call(c, 202); err != nil {
		w.mail.forget(u.email)
		return nil, err
	}
	link, err := wait(ctx, 60*time.Second)
	if err != nil {
		return nil, err
	}
	lu, err := url.Parse(link)
	if err != nil || lu.Query().Get("token") == "" {
		return nil, fmt.Errorf("verification mail without a token link: %q", link)
	}
	c = call{method: "POST", slug: slug, path: "/api/v1/verification/confirm", json: map[string]string{"token": lu.Query().Get("token")}}
	if _, err := w.g.call(c, 200); err != nil {
		return nil, err
	}
	return u, nil
}

// login signs u in with the password and keeps the new session's token.
func (w *workload) login(u *user) error {
	c := call{method: "POST", slug: u.slug, path: "/api/v1/login", json: map[string]string{"email": u.email, "password": u.password}}
	r, err := w.g.call(c, 200)
	if err != nil {
		return err
	}
	var body struct {
		Session struct {
			Token string `json:"token"`
		} `json:"session"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil || body.Session.Token == "" {
		return fmt.Errorf("login answer without a session token: %v", err)
	}
	u.token.Store(&body.Session.Token)
	return nil
}

func (w *workload) sessionCheck(u *user) error { return w.g.checkSession(u.slug, *u.token.Load()) }

func (w *workload) sessionList(u *user) error {
	_, err := w.g.call(call{method: "GET", slug: u.slug, path: "/api/v1/sessions", bearer: *u.token.Load()}, 200)
	return err
}

// pendingSSO is an SP-initiated sign-in started at Gatehouse and answered by the IdP,
// waiting to be posted to the ACS.
type pendingSSO struct {
	slug, relay, browser, reqID string
	doc                         []byte
}

// startSSO begins an SP-initiated sign-in as a browser does and signs the IdP's answer for
// employee n of the tenant.
func (w *workload) startSSO(slug string, n int) (pendingSSO, error) {
	path := "/sso/saml/" + ssoSlug + "/login"
	r, err := w.g.call(call{method: "GET", slug: slug, path: path}, 302)
	if err != nil {
		return pendingSSO{}, err
	}
	loc, err := url.Parse(r.header.Get("Location"))
	if err != nil {
		return pendingSSO{}, fmt.Errorf("%s: Location: %w", path, err)
	}
	p := pendingSSO{slug: slug, relay: loc.Query().Get("RelayState")}
	for _, line := range r.header.Values("Set-Cookie") {
		if v, ok := strings.CutPrefix(line, "__Host-gatehouse-saml="); ok {
			p.browser, _, _ = strings.Cut(v, ";")
		}
	}
	reqID, err := authnRequestID(loc.Query().Get("SAMLRequest"))
	if err != nil || p.browser == "" {
		return pendingSSO{}, fmt.Errorf("%s: incomplete start (%v)", path, err)
	}
	p.reqID = reqID
	sp := w.sp[slug]
	resp := w.idp.NewResponse(time.Now(), sp.acsURL, sp.entityID, reqID, fmt.Sprintf("employee%d@%s.sso.example", n, slug))
	if p.doc, err = w.idp.Sign(resp, samltest.SignOptions{SignAssertion: true}); err != nil {
		return pendingSSO{}, err
	}
	return p, nil
}

// postACS delivers the IdP's answer to the ACS; a sign-in answers 303 to the app.
func (w *workload) postACS(p pendingSSO) error {
	_, err := w.g.call(call{method: "POST", slug: p.slug, path: "/sso/saml/" + ssoSlug + "/acs",
		form: samltest.PostForm("", p.doc, p.relay), cookie: "__Host-gatehouse-saml=" + p.browser}, 303)
	return err
}

// fetchSP reads the SP metadata of each tenant's load connection.
func (w *workload) fetchSP() error {
	w.sp = map[string]spInfo{}
	for _, slug := range w.tenants {
		r, err := w.g.call(call{method: "GET", slug: slug, path: "/sso/saml/" + ssoSlug + "/metadata"}, 200)
		if err != nil {
			return fmt.Errorf("tenant %s has no SAML connection %q (was `gatehouse tenants apply` run on the setup files?): %w", slug, ssoSlug, err)
		}
		var md struct {
			EntityID string `xml:"entityID,attr"`
			SP       struct {
				ACS []struct {
					Binding  string `xml:"Binding,attr"`
					Location string `xml:"Location,attr"`
				} `xml:"AssertionConsumerService"`
			} `xml:"SPSSODescriptor"`
		}
		if err := xml.Unmarshal(r.body, &md); err != nil {
			return fmt.Errorf("SP metadata of %s: %w", slug, err)
		}
		info := spInfo{entityID: md.EntityID}
		for _, a := range md.SP.ACS {
			if a.Binding == samltest.BindingHTTPPost {
				info.acsURL = a.Location
			}
		}
		if info.entityID == "" || info.acsURL == "" {
			return fmt.Errorf("SP metadata of %s: no entity id or POST ACS", slug)
		}
		w.sp[slug] = info
	}
	return nil
}

// prepareUsers signs n users up in every tenant (through the mail) and signs each in once.
func (w *workload) prepareUsers(ctx context.Context, perTenant, conc int) error {
	var mu sync.Mutex
	jobs := make(chan string)
	var firstErr error
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for slug := range jobs {
				u, err := w.signupVerify(ctx, slug)
				if err == nil {
					err = w.login(u)
				}
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if err == nil {
					w.users = append(w.users, u)
				}
				mu.Unlock()
			}
		})
	}
	for _, slug := range w.tenants {
		for range perTenant {
			jobs <- slug
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("preparing users: %w", firstErr)
	}
	return nil
}

// prepareSSO starts n sign-ins (employees round-robin over the tenants) and signs the
// answers, so that a timed run posts only to the ACS.
func (w *workload) prepareSSO(n, conc int) ([]pendingSSO, error) {
	out := make([]pendingSSO, n)
	var next atomic.Int64
	var errOnce sync.Once
	var firstErr error
	var wg sync.WaitGroup
	for range conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				slug := w.tenants[i%len(w.tenants)]
				p, err := w.startSSO(slug, (i/len(w.tenants))%w.employees)
				if err != nil {
					errOnce.Do(func() { firstErr = err })
					return
				}
				out[i] = p
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, fmt.Errorf("preparing SSO sign-ins: %w", firstErr)
	}
	return out, nil
}

// authnRequestID reads the ID of a Redirect-binding AuthnRequest (deflated, base64).
func authnRequestID(samlRequest string) (string, error) {
	xmlBytes, err := inflateRequest(samlRequest)
	if err != nil {
		return "", err
	}
	var req struct {
		ID string `xml:"ID,attr"`
	}
	if err := xml.Unmarshal(xmlBytes, &req); err != nil {
		return "", err
	}
	if req.ID == "" {
		return "", errors.New("AuthnRequest without an ID")
	}
	return req.ID, nil
}
