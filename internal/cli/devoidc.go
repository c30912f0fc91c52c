package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/app"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/domainverify"
	"github.com/gatehouse-id/gatehouse/internal/sso"
	"github.com/gatehouse-id/gatehouse/internal/sso/devidp"
)

// devOIDC is the dev OpenID Provider beside the dev SAML IdP; tenant acme has an OIDC
// connection to it (slug dev-oidc, domain acme-oidc.test: acme.test is the SAML
// connection's), so the OpenID Connect door is tried with alice@acme-oidc.test on the login
// page or at /sso/oidc/dev-oidc/login.
type devOIDC struct {
	idp    *devidp.OIDCIdP
	srv    *http.Server
	logger *slog.Logger
}

const devOIDCSlug = "dev-oidc"

func startDevOIDC(addr string, logger *slog.Logger) (*devOIDC, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--oidc-idp-addr: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	idp, err := devidp.NewOIDC(fmt.Sprintf("http://localhost:%d", port))
	if err != nil {
		ln.Close()
		return nil, err
	}
	d := &devOIDC{idp: idp, logger: logger, srv: &http.Server{Handler: idp.Handler, ReadHeaderTimeout: 5 * time.Second}}
	go func() {
		if err := d.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("dev oidc idp", "err", err)
		}
	}()
	logger.Info("dev OpenID Provider serving", "issuer", idp.Issuer)
	return d, nil
}

// connect makes sure tenant acme has the dev OIDC connection pointing at this provider
// with this start's client credentials, and registers its redirect URI there. It returns
// the connection's login URL.
func (d *devOIDC) connect(ctx context.Context, a *app.App, dns *domainverify.Server) (string, error) {
	t, err := a.Tenants.Get(ctx, demoSlug)
	if err != nil {
		return "", err
	}
	conns, err := a.SSO.List(ctx, t)
	if err != nil {
		return "", err
	}
	who := audit.Who{ActorLabel: "gatehouse dev"}
	issuer, clientID, secret := d.idp.Issuer, d.idp.ClientID, d.idp.Secret
	var c sso.Connection
	found := false
	for _, x := range conns {
		if x.Slug == devOIDCSlug && x.Protocol == sso.ProtocolOIDC {
			c, found = x, true
		}
	}
	if found {
		if c, err = a.SSO.Update(ctx, t, c.ID, sso.Input{Issuer: &issuer, ClientID: &clientID, ClientSecret: &secret}, who); err != nil {
			return "", fmt.Errorf("dev OIDC connection: %w", err)
		}
	} else {
		proto, name, slug, provider := sso.ProtocolOIDC, "Dev OpenID Provider", devOIDCSlug, "generic"
		mapping := sso.AttributeMapping{Groups: devidp.OIDCGroupsClaim}
		roles := map[string]string{"Admins": "admin"}
		domains := []string{devidp.OIDCDomain}
		if c, err = a.SSO.Create(ctx, t, sso.Input{Protocol: &proto, Name: &name, Slug: &slug, Provider: &provider, Issuer: &issuer,
			ClientID: &clientID, ClientSecret: &secret, ClaimMapping: &mapping, RoleMapping: &roles, Domains: &domains}, who); err != nil {
			return "", fmt.Errorf("dev OIDC connection: %w", err)
		}
	}
	if dns != nil { // the dev SAML side's loopback DNS server verifies the demo domain
		for _, dom := range c.Domains {
			dns.SetTXT(dom.RecordName, dom.RecordValue)
			if !dom.Verified {
				if _, err := a.SSO.VerifyDomain(ctx, t, dom.Domain, who); err != nil {
					d.logger.Warn("dev domain verification", "domain", dom.Domain, "err", err)
				}
			}
		}
	}
	d.idp.Register(c.RedirectURI)
	return c.LoginURL, nil
}

func (d *devOIDC) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = d.srv.Shutdown(ctx)
}
