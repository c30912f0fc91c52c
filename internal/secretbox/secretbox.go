// Package secretbox encrypts secrets at rest (TOTP secrets, later SAML SP keys) with
// AES-256-GCM under keys from GATEHOUSE_SECRET_KEY. The id of the key that sealed a value
// is stored beside it, so keys can rotate: the first key seals, every listed key opens.
package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Box seals and opens secrets.
type Box struct {
	sealID string
	aeads  map[string]cipher.AEAD
}

// ErrNoKey means no key is configured.
var ErrNoKey = errors.New("secretbox: GATEHOUSE_SECRET_KEY is not set")

// New parses comma-separated base64 32-byte keys. An empty spec gives a Box that refuses
// to seal (Seal returns ErrNoKey).
func New(spec string) (*Box, error) {
	b := &Box{aeads: map[string]cipher.AEAD{}}
	for i, part := range strings.Split(spec, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		key, err := base64.StdEncoding.DecodeString(part)
		if err != nil || len(key) != 32 {
			return nil, fmt.Errorf("GATEHOUSE_SECRET_KEY: key %d is not base64 of 32 bytes (openssl rand -base64 32)", i+1)
		}
		block, _ := aes.NewCipher(key)
		aead, _ := cipher.NewGCM(block)
		id := KeyID(key)
		b.aeads[id] = aead
		if b.sealID == "" {
			b.sealID = id
		}
	}
	return b, nil
}

// KeyID names a key without revealing it.
func KeyID(key []byte) string {
	h := sha256.Sum256(append([]byte("gatehouse-key-id:"), key...))
	return hex.EncodeToString(h[:4])
}

// Enabled reports whether a sealing key is configured.
func (b *Box) Enabled() bool { return b.sealID != "" }

// Seal encrypts plaintext; aad binds it to its place (tenant, user, purpose), so a
// ciphertext copied to another row does not open. It returns the key id and the ciphertext
// (nonce || sealed).
func (b *Box) Seal(plaintext, aad []byte) (string, []byte, error) {
	if b.sealID == "" {
		return "", nil, ErrNoKey
	}
	aead := b.aeads[b.sealID]
	nonce := make([]byte, aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", nil, err
	}
	return b.sealID, aead.Seal(nonce, nonce, plaintext, aad), nil
}

// Open decrypts a value sealed by any configured key.
func (b *Box) Open(keyID string, ciphertext, aad []byte) ([]byte, error) {
	aead, ok := b.aeads[keyID]
	if !ok {
		return nil, fmt.Errorf("secretbox: key %s is not configured (was it removed from GATEHOUSE_SECRET_KEY?)", keyID)
	}
	if len(ciphertext) < aead.NonceSize() {
		return nil, errors.New("secretbox: ciphertext too short")
	}
	pt, err := aead.Open(nil, ciphertext[:aead.NonceSize()], ciphertext[aead.NonceSize():], aad)
	if err != nil {
		return nil, errors.New("secretbox: authentication failed")
	}
	return pt, nil
}

// NewKey returns a fresh key in GATEHOUSE_SECRET_KEY form.
func NewKey() string {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return base64.StdEncoding.EncodeToString(k)
}
