package testutil

import (
	"crypto/x509"
	"net/http/httptest"
)

// CertPool trusts the certificate of a TLS test server (config.OutboundRootCAs).
func CertPool(ts *httptest.Server) *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ts.Certificate())
	return pool
}
