package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/app"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/domainverify"
	"github.com/gatehouse-id/gatehouse/internal/sso"
	"github.com/gatehouse-id/gatehouse/internal/sso/devidp"
)

// devSSO is the dev IdP and the loopback DNS server that lets `gatehouse dev` verify the
// demo domain acme.test the same way a real domain is verified (a TXT record).
type devSSO struct {
	idp    *devidp.IdP
	srv    *http.Server
	dns    *domainverify.Server
	logger *slog.Logger
}

const (
	devConnSlug = "dev"
	devDomain   = "acme.test"
)

func startDevSSO(addr, dataDir string, logger *slog.Logger) (*devSSO, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--idp-addr: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	idp, err := devidp.New(fmt.Sprintf("http://localhost:%d", port), filepath.Join(dataDir, "dev-idp.pem"))
	if err != nil {
		ln.Close()
		return nil, err
	}
	dns, err := domainverify.StartServer()
	if err != nil {
		ln.Close()
		return nil, err
	}
	d := &devSSO{idp: idp, dns: dns, logger: logger,
		srv: &http.Server{Handler: idp.Handler(), ReadHeaderTimeout: 5 * time.Second}}
	go func() {
		if err := d.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("dev idp", "err", err)
		}
	}()
	logger.Info("dev SAML IdP serving", "metadata", idp.MetadataURL())
	return d, nil
}

// connect makes sure tenant acme has the dev connection with domain acme.test verified,
// and tells the IdP about the connection's SP metadata (it keeps it in memory).
func (d *devSSO) connect(ctx context.Context, a *app.App) error {
	t, err := a.Tenants.Get(ctx, demoSlug)
	if err != nil {
		return err
	}
	conns, err := a.SSO.List(ctx, t)
	if err != nil {
		return err
	}
	var conn *sso.Connection
	for i := range conns {
		if conns[i].Slug == devConnSlug {
			conn = &conns[i]
		}
	}
	who := audit.Who{ActorLabel: "gatehouse dev"}
	if conn != nil && !d.usable(ctx, a, conn) {
		// Made with another data directory's keys: start the demo connection over.
		if err := a.SSO.Delete(ctx, t, conn.ID, who); err != nil {
			return err
		}
		conn = nil
	}
	if conn == nil {
		md, err := d.idp.Metadata()
		if err != nil {
			return err
		}
		xml, name, slug, provider := string(md), "Dev IdP", devConnSlug, "dev"
		domains := []string{devDomain}
		mapping := sso.AttributeMapping{Groups: devidp.GroupsAttribute}
		roles := map[string]string{"Admins": "admin"}
		c, err := a.SSO.Create(ctx, t, sso.Input{Name: &name, Slug: &slug, Provider: &provider, MetadataXML: &xml,
			Domains: &domains, AttributeMapping: &mapping, RoleMapping: &roles}, who)
		if err != nil {
			return fmt.Errorf("dev SSO connection: %w", err)
		}
		conn = &c
	}
	for _, dom := range conn.Domains {
		d.dns.SetTXT(dom.RecordName, dom.RecordValue)
		if !dom.Verified {
			if _, err := a.SSO.VerifyDomain(ctx, t, dom.Domain, who); err != nil {
				d.logger.Warn("dev domain verification", "domain", dom.Domain, "err", err)
			}
		}
	}
	spMeta, err := a.SSO.Metadata(ctx, t, conn.Slug)
	if err != nil {
		return err
	}
	return d.idp.Register("gatehouse-acme", spMeta)
}

// usable reports whether the stored dev connection trusts this IdP's key and its SP key
// opens with this process's GATEHOUSE_SECRET_KEY.
func (d *devSSO) usable(ctx context.Context, a *app.App, c *sso.Connection) bool {
	t, err := a.Tenants.Get(ctx, demoSlug)
	if err != nil {
		return false
	}
	if _, err := a.SSO.Metadata(ctx, t, c.Slug); err != nil {
		return false
	}
	md, err := d.idp.Metadata()
	if err != nil {
		return false
	}
	cur, err := sso.ParseMetadata(md, "")
	if err != nil || len(cur.Certificates) == 0 || len(c.IdP.Certificates) == 0 {
		return false
	}
	return cur.Certificates[0].SHA256 == c.IdP.Certificates[0].SHA256
}

func (d *devSSO) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = d.srv.Shutdown(ctx)
	_ = d.dns.Close()
}
