// Package devidp is the small SAML identity provider `gatehouse dev` runs next to
// Gatehouse (crewjam/saml's samlidp on its own port), with a few demo employees, so a
// newcomer can click through single sign-on end to end. Never for production.
package devidp

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"sync"
	"time"

	"github.com/crewjam/saml/samlidp"
)

// Password is every demo employee's password at the dev IdP.
const Password = "dev-idp-password"

// Employee is a demo user of the dev IdP.
type Employee struct {
	Name, Email, Given, Surname string
	Groups                      []string
}

// Employees are the demo users; "Admins" maps to the Gatehouse admin role in the seeded
// connection.
var Employees = []Employee{
	{Name: "alice", Email: "alice@acme.test", Given: "Alice", Surname: "Admin", Groups: []string{"Admins", "Staff"}},
	{Name: "bob", Email: "bob@acme.test", Given: "Bob", Surname: "Builder", Groups: []string{"Staff"}},
	{Name: "carol", Email: "carol@acme.test", Given: "Carol", Surname: "Contractor", Groups: []string{"Contractors"}},
}

// GroupsAttribute is the attribute the dev IdP puts groups in (eduPersonAffiliation).
const GroupsAttribute = "urn:oid:1.3.6.1.4.1.5923.1.1.1.1"

// IdP is a running dev IdP handler.
type IdP struct {
	server *samlidp.Server
	base   url.URL

	mu    sync.Mutex
	start string // where a person starts signing in (Gatehouse's login page), if known
}

type adminKey struct{}

// New builds the IdP at baseURL (such as http://localhost:8081) with the key pair kept in
// keyFile (created on first use, so the connection stored in the database stays valid).
func New(baseURL, keyFile string) (*IdP, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("dev idp url: %w", err)
	}
	key, cert, err := loadOrCreateKey(keyFile)
	if err != nil {
		return nil, err
	}
	form, err := loginFormTemplate()
	if err != nil {
		return nil, err
	}
	srv, err := samlidp.New(samlidp.Options{URL: *u, Key: key, Certificate: cert, Store: &samlidp.MemoryStore{}, LoginFormTemplate: form,
		// The REST administration endpoints answer only this process's own calls.
		AdminMiddleware: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Context().Value(adminKey{}) == nil {
					http.Error(w, "forbidden", http.StatusForbidden)
					return
				}
				next.ServeHTTP(w, r)
			})
		}})
	if err != nil {
		return nil, fmt.Errorf("dev idp: %w", err)
	}
	i := &IdP{server: srv, base: *u}
	srv.IDP.OnError = i.onError
	for _, e := range Employees {
		pw := Password
		body, _ := json.Marshal(samlidp.User{Name: e.Name, PlaintextPassword: &pw, Email: e.Email, GivenName: e.Given,
			Surname: e.Surname, CommonName: e.Given + " " + e.Surname, Groups: e.Groups})
		if err := i.admin(http.MethodPut, "/users/"+e.Name, body); err != nil {
			return nil, err
		}
	}
	return i, nil
}

// Handler serves the IdP: samlidp, with a front page at /, and the login form taking an
// employee's email address as well as the username.
func (i *IdP) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			i.front(w)
			return
		}
		if r.Method == http.MethodPost && (r.URL.Path == "/sso" || r.URL.Path == "/login") {
			if err := r.ParseForm(); err != nil {
				http.Error(w, "the form could not be read", http.StatusBadRequest)
				return
			}
			if v := r.PostForm.Get("user"); v != "" {
				r.PostForm.Set("user", usernameFor(v))
				r.Form.Set("user", usernameFor(v))
			}
		}
		i.server.ServeHTTP(w, r)
	})
}

// SetStart names where a person starts signing in (Gatehouse's login page of the demo
// tenant); the front and error pages link there.
func (i *IdP) SetStart(u string) {
	i.mu.Lock()
	i.start = u
	i.mu.Unlock()
}

func (i *IdP) startURL() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.start
}

// FrontURL is the IdP's front page (who can sign in, and how).
func (i *IdP) FrontURL() string { return i.base.JoinPath("/").String() }

// MetadataURL is where the IdP publishes its metadata.
func (i *IdP) MetadataURL() string { return i.base.JoinPath("metadata").String() }

// Metadata is the IdP's metadata document.
func (i *IdP) Metadata() ([]byte, error) {
	rec := httptest.NewRecorder()
	i.server.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, i.base.JoinPath("metadata").String(), nil))
	if rec.Code != http.StatusOK {
		return nil, fmt.Errorf("dev idp metadata: %d", rec.Code)
	}
	return rec.Body.Bytes(), nil
}

// Register trusts a service provider (Gatehouse's SP metadata for a connection).
func (i *IdP) Register(name string, spMetadata []byte) error {
	return i.admin(http.MethodPut, "/services/"+url.PathEscape(name), spMetadata)
}

func (i *IdP) admin(method, path string, body []byte) error {
	req := httptest.NewRequest(method, i.base.JoinPath(path).String(), bytes.NewReader(body))
	req = req.WithContext(context.WithValue(req.Context(), adminKey{}, true))
	rec := httptest.NewRecorder()
	i.server.ServeHTTP(rec, req)
	if rec.Code >= 300 {
		return fmt.Errorf("dev idp %s %s: %d %s", method, path, rec.Code, rec.Body.String())
	}
	return nil
}

func loadOrCreateKey(file string) (*rsa.PrivateKey, *x509.Certificate, error) {
	if b, err := os.ReadFile(file); err == nil {
		var key *rsa.PrivateKey
		var cert *x509.Certificate
		for blk, rest := pem.Decode(b); blk != nil; blk, rest = pem.Decode(rest) {
			switch blk.Type {
			case "RSA PRIVATE KEY":
				key, err = x509.ParsePKCS1PrivateKey(blk.Bytes)
			case "CERTIFICATE":
				cert, err = x509.ParseCertificate(blk.Bytes)
			}
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", file, err)
			}
		}
		if key != nil && cert != nil {
			return key, cert, nil
		}
		return nil, nil, fmt.Errorf("%s: no key and certificate", file)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, nil, err
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, nil, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "Gatehouse dev IdP"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(10, 0, 0), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, err
	}
	cert, _ := x509.ParseCertificate(der)
	out := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	if err := os.WriteFile(file, out, 0o600); err != nil {
		return nil, nil, err
	}
	return key, cert, nil
}
