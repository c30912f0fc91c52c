// Package token makes the random secrets Gatehouse hands out (session tokens, email links)
// and the hashes it stores in their place.
package token

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
)

// Bytes is the entropy of every token: 256 bits.
const Bytes = 32

// New returns a new random token (URL-safe base64, 43 characters) and its SHA-256.
func New() (string, []byte) {
	var b [Bytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("token: crypto/rand failed: " + err.Error()) // never happens on supported systems
	}
	t := base64.RawURLEncoding.EncodeToString(b[:])
	return t, Hash(t)
}

// ErrMalformed is returned by Parse for anything that cannot be a token.
var ErrMalformed = errors.New("token: malformed")

// Hash returns the SHA-256 of t, as stored in the database.
func Hash(t string) []byte {
	h := sha256.Sum256([]byte(t))
	return h[:]
}

// Parse checks that t has a token's shape and returns its hash. Malformed input never
// reaches the database.
func Parse(t string) ([]byte, error) {
	if len(t) != 43 {
		return nil, ErrMalformed
	}
	if _, err := base64.RawURLEncoding.DecodeString(t); err != nil {
		return nil, ErrMalformed
	}
	return Hash(t), nil
}
