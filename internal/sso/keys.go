package sso

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/secretbox"
)

// spKeyBits is the size of every SP key Gatehouse generates.
const spKeyBits = 2048

// spKey is a connection's SP key pair: the private key sealed at rest, the certificate
// published in the SP metadata.
type spKey struct {
	KeyID  string
	Sealed []byte
	Cert   []byte
}

// newSPKey generates a key pair for a connection and seals the private key, bound to the
// tenant and connection (a sealed key copied to another row does not open).
func newSPKey(box *secretbox.Box, tenantID, connID uuid.UUID, host string, now time.Time) (spKey, error) {
	key, err := rsa.GenerateKey(rand.Reader, spKeyBits)
	if err != nil {
		return spKey{}, fmt.Errorf("generate SP key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return spKey{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: host, Organization: []string{"Gatehouse SAML SP"}},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.AddDate(10, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return spKey{}, fmt.Errorf("SP certificate: %w", err)
	}
	id, sealed, err := box.Seal(x509.MarshalPKCS1PrivateKey(key), keyAAD(tenantID, connID))
	if err != nil {
		return spKey{}, fmt.Errorf("seal SP key: %w", err)
	}
	return spKey{KeyID: id, Sealed: sealed, Cert: der}, nil
}

func openSPKey(box *secretbox.Box, tenantID, connID uuid.UUID, keyID string, sealed, certDER []byte) (*rsa.PrivateKey, *x509.Certificate, error) {
	raw, err := box.Open(keyID, sealed, keyAAD(tenantID, connID))
	if err != nil {
		return nil, nil, fmt.Errorf("open SP key: %w", err)
	}
	key, err := x509.ParsePKCS1PrivateKey(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("parse SP key: %w", err)
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, nil, fmt.Errorf("parse SP certificate: %w", err)
	}
	return key, cert, nil
}

func keyAAD(tenantID, connID uuid.UUID) []byte {
	return []byte("saml-sp-key:" + tenantID.String() + ":" + connID.String())
}
