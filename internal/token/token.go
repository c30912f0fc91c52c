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
	k, err := ParseKey(t)
	if err != nil {
		return nil, err
	}
	return k[:], nil
}

// ParseKey is Parse returning the hash as an array: no allocation, for the session check
// (the hash is the cache key).
func ParseKey(t string) ([32]byte, error) {
	// 43 characters of the URL-safe alphabet is exactly what 32 bytes encode to.
	if len(t) != 43 {
		return [32]byte{}, ErrMalformed
	}
	for i := 0; i < len(t); i++ {
		if !urlSafe(t[i]) {
			return [32]byte{}, ErrMalformed
		}
	}
	var b [43]byte // on the stack: []byte(t) of 43 bytes would be a heap copy
	copy(b[:], t)
	return sha256.Sum256(b[:]), nil
}

func urlSafe(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}
