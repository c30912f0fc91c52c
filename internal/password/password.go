// Package password hashes and checks passwords with argon2id and applies the NIST SP
// 800-63B rules: 8 to 256 characters of any kind, refused when common or easily guessed
// (zxcvbn, whose dictionaries of common passwords ship inside the binary), no composition
// rules.
package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"unicode/utf8"

	"github.com/trustelem/zxcvbn"
	"golang.org/x/crypto/argon2"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
)

// Params are argon2id's cost parameters.
type Params struct {
	MemoryKiB   uint32
	Iterations  uint32
	Parallelism uint8
	SaltLen     uint32
	KeyLen      uint32
}

// OWASP is the OWASP Password Storage Cheat Sheet's argon2id configuration (m=19 MiB, t=2, p=1).
var OWASP = Params{MemoryKiB: 19 * 1024, Iterations: 2, Parallelism: 1, SaltLen: 16, KeyLen: 32}

// Hasher hashes and verifies passwords. It bounds concurrent hashing to the number of
// cores, so a burst of logins queues instead of allocating 19 MiB per request at once.
type Hasher struct {
	params Params
	sem    chan struct{}
	dummy  string // a real hash to verify against when the account does not exist
}

// NewHasher returns a hasher with the given parameters.
func NewHasher(p Params) *Hasher {
	h := &Hasher{params: p, sem: make(chan struct{}, runtime.GOMAXPROCS(0))}
	h.dummy = h.encode(make([]byte, p.SaltLen), h.key("gatehouse-dummy-password", make([]byte, p.SaltLen), p))
	return h
}

// Hash returns the PHC-format argon2id hash of pw.
func (h *Hasher) Hash(ctx context.Context, pw string) (string, error) {
	salt := make([]byte, h.params.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("salt: %w", err)
	}
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	return h.encode(salt, h.key(pw, salt, h.params)), nil
}

// Verify reports whether pw matches encoded, and whether the hash should be replaced
// because it was made with other parameters. An empty encoded (no such account, or no
// password) is checked against a dummy hash, so the time taken does not tell.
func (h *Hasher) Verify(ctx context.Context, pw, encoded string) (ok, rehash bool, err error) {
	real := encoded != ""
	if !real {
		encoded = h.dummy
	}
	p, salt, want, err := decode(encoded)
	if err != nil {
		return false, false, err
	}
	if err := h.acquire(ctx); err != nil {
		return false, false, err
	}
	got := h.key(pw, salt, p)
	h.release()
	match := subtle.ConstantTimeCompare(got, want) == 1
	return match && real, match && real && p != h.params, nil
}

func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Hasher) release() { <-h.sem }

func (h *Hasher) key(pw string, salt []byte, p Params) []byte {
	return argon2.IDKey([]byte(pw), salt, p.Iterations, p.MemoryKiB, p.Parallelism, p.KeyLen)
}

func (h *Hasher) encode(salt, key []byte) string {
	p := h.params
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Iterations, p.Parallelism,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key))
}

var errBadHash = errors.New("password: malformed argon2id hash")

func decode(s string) (Params, []byte, []byte, error) {
	parts := strings.Split(s, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return Params{}, nil, nil, errBadHash
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return Params{}, nil, nil, errBadHash
	}
	var p Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Iterations, &p.Parallelism); err != nil {
		return Params{}, nil, nil, errBadHash
	}
	salt, err := base64.RawStdEncoding.DecodeString(parts[4])
	if err != nil {
		return Params{}, nil, nil, errBadHash
	}
	key, err := base64.RawStdEncoding.DecodeString(parts[5])
	if err != nil {
		return Params{}, nil, nil, errBadHash
	}
	p.SaltLen, p.KeyLen = uint32(len(salt)), uint32(len(key))
	return p, salt, key, nil
}

// Length limits in characters (NIST SP 800-63B: at least 8, allow at least 64).
const (
	MinLength = 8
	MaxLength = 256
)

// Check applies the password rules. context are words the password must not be built
// from (the email address, the tenant's name). Errors: weak_password with details.reason.
func Check(pw string, context ...string) error {
	if !utf8.ValidString(pw) {
		return weak("invalid_utf8", "The password is not valid text.")
	}
	n := utf8.RuneCountInString(pw)
	if n < MinLength {
		return weak("too_short", fmt.Sprintf("Use at least %d characters.", MinLength))
	}
	if n > MaxLength {
		return weak("too_long", fmt.Sprintf("Use at most %d characters.", MaxLength))
	}
	// zxcvbn's matching is quadratic in length; the first 64 characters decide whether a
	// password is guessable.
	sample := pw
	if n > 64 {
		sample = string([]rune(pw)[:64])
	}
	var inputs []string
	for _, c := range context {
		inputs = append(inputs, c)
		inputs = append(inputs, strings.FieldsFunc(c, func(r rune) bool { return r == '@' || r == '.' || r == ' ' || r == '-' || r == '_' })...)
	}
	if r := zxcvbn.PasswordStrength(sample, inputs); r.Score < 2 {
		return weak("too_common", "This password is too common or too easy to guess. A few unrelated words make a strong one.")
	}
	return nil
}

func weak(reason, msg string) error {
	return apperr.New(apperr.Invalid, "weak_password", msg).WithDetails(map[string]any{"reason": reason})
}
