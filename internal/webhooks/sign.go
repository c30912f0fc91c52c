package webhooks

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/outbound"
)

// SecretPrefix starts every endpoint secret (Standard Webhooks: the rest is the base64 key).
const SecretPrefix = "whsec_"

// secretBytes is the key size: 256 bits.
const secretBytes = 32

// newSecret returns a fresh whsec_ secret.
func newSecret() string {
	b := make([]byte, secretBytes)
	_, _ = rand.Read(b)
	return SecretPrefix + base64.StdEncoding.EncodeToString(b)
}

// secretKey is the HMAC key of a whsec_ secret.
func secretKey(secret string) ([]byte, error) {
	k, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, SecretPrefix))
	if err != nil || !strings.HasPrefix(secret, SecretPrefix) || len(k) < 24 || len(k) > 64 {
		return nil, errors.New("webhooks: a secret is whsec_ and 24 to 64 bytes in base64")
	}
	return k, nil
}

// Signature is the webhook-signature header of one delivery (Standard Webhooks): a
// space-separated "v1,<base64 HMAC-SHA256 of id.timestamp.body>" per key; during a secret
// rotation both the new and the previous key sign.
func Signature(id string, ts time.Time, body []byte, keys ...[]byte) string {
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		m := hmac.New(sha256.New, k)
		m.Write([]byte(id))
		m.Write([]byte{'.'})
		m.Write([]byte(strconv.FormatInt(ts.Unix(), 10)))
		m.Write([]byte{'.'})
		m.Write(body)
		parts = append(parts, "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	}
	return strings.Join(parts, " ")
}

// hostMayBePublic refuses, when the URL is typed, a host that can only be private: an
// address literal outside the public ranges or a localhost name. Names that resolve to
// private addresses are refused by the outbound client when dialling.
func hostMayBePublic(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return false
	}
	if a, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
		return outbound.PublicAddr(a)
	}
	return true
}
