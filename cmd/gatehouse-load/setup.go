package main

import (
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/gatehouse-id/gatehouse/internal/sso/samltest"
)

// The load IdP: a samltest identity provider whose key is kept in a directory, so the
// connection declared in the tenant files and the signer of the load run are the same.
const (
	idpEntityID = "https://idp.load.invalid/metadata"
	idpSSOURL   = "https://idp.load.invalid/sso"
	ssoSlug     = "load"
)

// runSetup writes the load IdP (key, certificate, metadata) and one declarative tenant file
// per load tenant, each with a SAML connection to that IdP and an admin (for the load app
// of the oidc run), for `gatehouse tenants apply`.
func runSetup(args []string, out io.Writer) error {
	fs := flag.NewFlagSet("setup", flag.ContinueOnError)
	idpDir := fs.String("idp", "", "directory for the load IdP's key, certificate and metadata")
	tenantsDir := fs.String("tenants-dir", "", "directory for the tenant files")
	n := fs.Int("tenants", 20, "number of load tenants")
	prefix := fs.String("prefix", "load", "tenant slug prefix: load-000, load-001, …")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *idpDir == "" || *tenantsDir == "" || *n < 1 || *n > 10000 {
		return errors.New("setup needs -idp, -tenants-dir and 1 ≤ -tenants ≤ 10000")
	}
	idp, err := samltest.NewIdP(idpEntityID)
	if err != nil {
		return err
	}
	for _, d := range []string{*idpDir, *tenantsDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(idp.Key)})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: idp.CertDER})
	meta := idp.Metadata(idpSSOURL, "")
	for name, b := range map[string][]byte{"idp.key": keyPEM, "idp.crt": certPEM} {
		if err := os.WriteFile(filepath.Join(*idpDir, name), b, 0o600); err != nil {
			return err
		}
	}
	for i := range *n {
		slug := tenantSlug(*prefix, i)
		metaFile := slug + "-idp.xml" // metadata_file is a path next to the tenant file
		if err := os.WriteFile(filepath.Join(*tenantsDir, metaFile), meta, 0o644); err != nil {
			return err
		}
		doc := fmt.Sprintf(`slug: %s
name: Load tenant %d
policy:
  verification:
    mode: required
  sessions:
    new_device_notice: false
sso_connections:
  - slug: %s
    name: Load IdP
    provider: generic
    metadata_file: %s
    jit: true
roles:
  admin: [%s]
`, slug, i, ssoSlug, metaFile, adminEmail(slug))
		if err := os.WriteFile(filepath.Join(*tenantsDir, slug+".yaml"), []byte(doc), 0o644); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "wrote the load IdP to %s and %d tenant files to %s\n", *idpDir, *n, *tenantsDir)
	return nil
}

func tenantSlug(prefix string, i int) string { return fmt.Sprintf("%s-%03d", prefix, i) }

// adminEmail is the load tenant's admin, declared in its tenant file without a password:
// the oidc run sets one through "forgot password" and registers the load app with it.
func adminEmail(slug string) string { return "admin@" + slug + ".load.example" }

// loadIdP reads the IdP that setup wrote.
func loadIdP(dir string) (*samltest.IdP, error) {
	keyPEM, err := os.ReadFile(filepath.Join(dir, "idp.key"))
	if err != nil {
		return nil, err
	}
	certPEM, err := os.ReadFile(filepath.Join(dir, "idp.crt"))
	if err != nil {
		return nil, err
	}
	kb, _ := pem.Decode(keyPEM)
	cb, _ := pem.Decode(certPEM)
	if kb == nil || cb == nil {
		return nil, fmt.Errorf("%s: idp.key or idp.crt is not PEM", dir)
	}
	key, err := x509.ParsePKCS1PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("idp.key: %w", err)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("idp.crt: %w", err)
	}
	if pub, ok := cert.PublicKey.(*rsa.PublicKey); !ok || !key.PublicKey.Equal(pub) {
		return nil, errors.New("idp.key does not match idp.crt")
	}
	return &samltest.IdP{EntityID: idpEntityID, Key: key, Cert: cert, CertDER: cert.Raw}, nil
}
