// Package mfa owns second factors: TOTP (RFC 6238, 30-second steps, six digits, ±1 step of
// clock skew, each code usable once) with its secret sealed at rest, and ten one-time
// recovery codes stored hashed. A set-up is pending until a code confirms it; a wrong code
// leaves it pending (same secret), and the recovery codes are made and shown only when it
// is confirmed.
package mfa

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"errors"
	"fmt"
	"image/png"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/secretbox"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
)

// Errors.
var (
	ErrInvalidCode = apperr.New(apperr.Unauthenticated, "invalid_code", "That code is not correct. Enter the code your authenticator app shows now, or one of your recovery codes.")
	// ErrInvalidSetupCode is invalid_code while confirming a set-up: the same key stays.
	ErrInvalidSetupCode = apperr.New(apperr.Unauthenticated, "invalid_code", "That code is not correct. Enter the six-digit code your authenticator app shows now for this account; the key and QR code stay the same.")
	// ErrTOTPCodeUsed: the code is right but its 30-second step was used already.
	ErrTOTPCodeUsed = apperr.New(apperr.Unauthenticated, "totp_code_used", "That code was just used. Wait for the next code in your authenticator app (a new one appears every 30 seconds) and enter it.")
	// ErrRecoveryCodeUsed: the recovery code is one of the user's, used already.
	ErrRecoveryCodeUsed = apperr.New(apperr.Unauthenticated, "recovery_code_used", "This recovery code was already used. Each recovery code works once: enter another one, or a code from your authenticator app.")
	ErrAlreadyEnabled   = apperr.New(apperr.Conflict, "mfa_already_enabled", "Two-factor authentication is already on. Turn it off first to set it up again.")
	ErrNotEnrolled      = apperr.New(apperr.Conflict, "mfa_not_enrolled", "Start the two-factor set-up first.")
	ErrNotEnabled       = apperr.New(apperr.NotFound, "mfa_not_enabled", "Two-factor authentication is not on.")
	ErrUnavailable      = apperr.New(apperr.Unavailable, "mfa_unavailable", "Two-factor authentication is not available: the server has no secret key configured.")
	errMalformedSecret  = errors.New("mfa: stored secret does not decode")
)

// WrongCode reports whether err is a refused code (invalid_code, totp_code_used,
// recovery_code_used): every caller counts it as a failed attempt and audits it.
func WrongCode(err error) bool {
	return apperr.Is(err, "invalid_code") || apperr.Is(err, "totp_code_used") || apperr.Is(err, "recovery_code_used")
}

// Methods a code can prove.
const (
	MethodTOTP     = "totp"
	MethodRecovery = "recovery_code"
)

const (
	period        = 30
	recoveryCount = 10
)

// Service manages second factors.
type Service struct {
	store *store.Store
	box   *secretbox.Box
	now   func() time.Time
}

// NewService returns the MFA service.
func NewService(st *store.Store, box *secretbox.Box, now func() time.Time) *Service {
	return &Service{store: st, box: box, now: now}
}

// Enrollment is a pending TOTP set-up: the secret, its otpauth URI and QR code.
type Enrollment struct {
	Secret      string `json:"secret"`
	OTPAuthURI  string `json:"otpauth_uri"`
	QRPNGBase64 string `json:"qr_png_base64"`
}

// Status is a user's second factor: TOTP on, or a set-up pending, and how many recovery
// codes are still unused.
type Status struct {
	Enabled                bool `json:"enabled"`
	Pending                bool `json:"pending"`
	RecoveryCodesRemaining int  `json:"recovery_codes_remaining"`
}

func aad(tenantID, userID uuid.UUID) []byte {
	return []byte("totp:" + tenantID.String() + ":" + userID.String())
}

func keyOpts(issuer, account string, secret []byte) totp.GenerateOpts {
	return totp.GenerateOpts{Issuer: issuer, AccountName: account, Period: period, SecretSize: 20, Secret: secret,
		Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
}

func enrollment(key *otp.Key) (Enrollment, error) {
	img, err := key.Image(240, 240)
	if err != nil {
		return Enrollment{}, fmt.Errorf("qr code: %w", err)
	}
	var pngBuf bytes.Buffer
	if err := png.Encode(&pngBuf, img); err != nil {
		return Enrollment{}, fmt.Errorf("qr png: %w", err)
	}
	return Enrollment{Secret: key.Secret(), OTPAuthURI: key.URL(), QRPNGBase64: base64.StdEncoding.EncodeToString(pngBuf.Bytes())}, nil
}

// Enroll starts TOTP set-up: a new secret (sealed) replacing any pending one, its otpauth
// URI and QR code. Nothing is required at login until Confirm.
// Errors: mfa_already_enabled, mfa_unavailable.
func (s *Service) Enroll(ctx context.Context, tenantID, userID uuid.UUID, issuer, account string) (Enrollment, error) {
	if !s.box.Enabled() {
		return Enrollment{}, ErrUnavailable
	}
	key, err := totp.Generate(keyOpts(issuer, account, nil))
	if err != nil {
		return Enrollment{}, fmt.Errorf("generate totp key: %w", err)
	}
	keyID, sealed, err := s.box.Seal([]byte(key.Secret()), aad(tenantID, userID))
	if err != nil {
		return Enrollment{}, err
	}
	e, err := enrollment(key)
	if err != nil {
		return Enrollment{}, err
	}
	err = s.store.InTenant(ctx, tenantID, func(q *sqlcgen.Queries) error {
		cur, err := q.GetTOTP(ctx, userID)
		if err == nil && cur.ConfirmedAt != nil {
			return ErrAlreadyEnabled
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := q.UpsertPendingTOTP(ctx, sqlcgen.UpsertPendingTOTPParams{UserID: userID, KeyID: keyID, SecretSealed: sealed}); err != nil {
			return fmt.Errorf("store totp: %w", err)
		}
		return nil
	})
	if err != nil {
		return Enrollment{}, err
	}
	return e, nil
}

// Pending returns the pending set-up again (the same secret and QR code), for another try
// after a wrong code. Errors: mfa_not_enrolled, mfa_already_enabled.
func (s *Service) Pending(ctx context.Context, tenantID, userID uuid.UUID, issuer, account string) (Enrollment, error) {
	var cur sqlcgen.TOTPCredential
	err := s.store.InTenant(ctx, tenantID, func(q *sqlcgen.Queries) error {
		var err error
		cur, err = q.GetTOTP(ctx, userID)
		if errors.Is(err, store.ErrNotFound) {
			return ErrNotEnrolled
		}
		if err == nil && cur.ConfirmedAt != nil {
			return ErrAlreadyEnabled
		}
		return err
	}, store.ReadOnly(), store.Idempotent())
	if err != nil {
		return Enrollment{}, err
	}
	secret, err := s.box.Open(cur.KeyID, cur.SecretSealed, aad(tenantID, userID))
	if err != nil {
		return Enrollment{}, fmt.Errorf("open totp secret: %w", err)
	}
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(string(secret))
	if err != nil {
		return Enrollment{}, errMalformedSecret
	}
	key, err := totp.Generate(keyOpts(issuer, account, raw))
	if err != nil {
		return Enrollment{}, fmt.Errorf("rebuild totp key: %w", err)
	}
	return enrollment(key)
}

// Status reports the user's second factor and the unused recovery codes.
func (s *Service) Status(ctx context.Context, tenantID, userID uuid.UUID) (Status, error) {
	var st Status
	err := s.store.InTenant(ctx, tenantID, func(q *sqlcgen.Queries) error {
		cur, err := q.GetTOTP(ctx, userID)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		st.Enabled, st.Pending = cur.ConfirmedAt != nil, cur.ConfirmedAt == nil
		if !st.Enabled {
			return nil
		}
		n, err := q.CountUnusedRecoveryCodes(ctx, userID)
		st.RecoveryCodesRemaining = int(n)
		return err
	}, store.ReadOnly(), store.Idempotent())
	return st, err
}

// RegenerateRecoveryCodes replaces the recovery codes. Errors: mfa_not_enabled.
func (s *Service) RegenerateRecoveryCodes(ctx context.Context, tenantID, userID uuid.UUID) ([]string, error) {
	var codes []string
	err := s.store.InTenant(ctx, tenantID, func(q *sqlcgen.Queries) error {
		if ok, err := Enabled(ctx, q, userID); err != nil {
			return err
		} else if !ok {
			return ErrNotEnabled
		}
		var err error
		codes, err = replaceRecoveryCodes(ctx, q, userID)
		return err
	})
	return codes, err
}

func replaceRecoveryCodes(ctx context.Context, q *sqlcgen.Queries, userID uuid.UUID) ([]string, error) {
	if err := q.DeleteRecoveryCodes(ctx, userID); err != nil {
		return nil, err
	}
	codes := make([]string, 0, recoveryCount)
	for range recoveryCount {
		var b [7]byte
		_, _ = rand.Read(b[:])
		c := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))[:10]
		code := c[:5] + "-" + c[5:]
		h := sha256.Sum256([]byte(c))
		if err := q.InsertRecoveryCode(ctx, sqlcgen.InsertRecoveryCodeParams{UserID: userID, CodeHash: h[:]}); err != nil {
			return nil, err
		}
		codes = append(codes, code)
	}
	return codes, nil
}

// Confirm activates a pending TOTP enrolment with a current code and returns ten new
// recovery codes (replacing any old ones), shown to the user only now. A wrong code leaves
// the enrolment pending with the same secret (the caller limits guesses like Verify's).
// Errors: invalid_code, mfa_not_enrolled, mfa_already_enabled.
func (s *Service) Confirm(ctx context.Context, tenantID, userID uuid.UUID, code string) ([]string, error) {
	var codes []string
	err := s.store.InTenant(ctx, tenantID, func(q *sqlcgen.Queries) error {
		cur, err := q.GetTOTP(ctx, userID)
		if errors.Is(err, store.ErrNotFound) {
			return ErrNotEnrolled
		}
		if err != nil {
			return err
		}
		if cur.ConfirmedAt != nil {
			return ErrAlreadyEnabled
		}
		if err := s.checkTOTP(ctx, q, tenantID, cur, normalize(code)); errors.Is(err, ErrInvalidCode) {
			return ErrInvalidSetupCode
		} else if err != nil {
			return err
		}
		if _, err = q.ConfirmTOTP(ctx, userID); err != nil {
			return err
		}
		codes, err = replaceRecoveryCodes(ctx, q, userID)
		return err
	})
	return codes, err
}

func normalize(code string) string {
	return strings.ToLower(strings.TrimSpace(strings.ReplaceAll(code, " ", "")))
}

// Disable removes TOTP and the recovery codes, inside the caller's transaction.
// Errors: mfa_not_enabled.
func Disable(ctx context.Context, q *sqlcgen.Queries, userID uuid.UUID) error {
	n, err := q.DeleteTOTP(ctx, userID)
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotEnabled
	}
	return q.DeleteRecoveryCodes(ctx, userID)
}

// Enabled reports whether the user has a confirmed second factor.
func Enabled(ctx context.Context, q *sqlcgen.Queries, userID uuid.UUID) (bool, error) {
	cur, err := q.GetTOTP(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return cur.ConfirmedAt != nil, nil
}

// Verify checks a second-factor code inside the caller's transaction: a TOTP code (six
// digits, not used before) or an unused recovery code. It returns the method it proved.
// It does not limit guesses: every caller admits the check with ratelimit.Begin first, and
// reports the outcome to the attempt (Passed in this transaction, or Failed; WrongCode
// tells the refusals).
// Errors: invalid_code, totp_code_used, recovery_code_used.
func (s *Service) Verify(ctx context.Context, q *sqlcgen.Queries, tenantID, userID uuid.UUID, code string) (string, error) {
	code = normalize(code)
	if len(code) == 6 && strings.Trim(code, "0123456789") == "" {
		cur, err := q.GetTOTP(ctx, userID)
		if errors.Is(err, store.ErrNotFound) || err == nil && cur.ConfirmedAt == nil {
			return "", ErrInvalidCode
		}
		if err != nil {
			return "", err
		}
		if err := s.checkTOTP(ctx, q, tenantID, cur, code); err != nil {
			return "", err
		}
		return MethodTOTP, nil
	}
	c := strings.ReplaceAll(code, "-", "")
	if len(c) != 10 {
		return "", ErrInvalidCode
	}
	h := sha256.Sum256([]byte(c))
	n, err := q.UseRecoveryCode(ctx, sqlcgen.UseRecoveryCodeParams{UserID: userID, CodeHash: h[:]})
	if err != nil {
		return "", err
	}
	if n == 0 {
		used, err := q.RecoveryCodeWasUsed(ctx, sqlcgen.RecoveryCodeWasUsedParams{UserID: userID, CodeHash: h[:]})
		if err != nil {
			return "", err
		}
		if used {
			return "", ErrRecoveryCodeUsed
		}
		return "", ErrInvalidCode
	}
	return MethodRecovery, nil
}

// checkTOTP accepts a code of the current step or one step either side, and records the
// step so the same code (or an older one) never works again.
// Errors: invalid_code, totp_code_used (the code's step, or a later one, was used).
func (s *Service) checkTOTP(ctx context.Context, q *sqlcgen.Queries, tenantID uuid.UUID, cur sqlcgen.TOTPCredential, code string) error {
	secret, err := s.box.Open(cur.KeyID, cur.SecretSealed, aad(tenantID, cur.UserID))
	if err != nil {
		return fmt.Errorf("open totp secret: %w", err)
	}
	now := s.now()
	step := now.Unix() / period
	for _, st := range []int64{step - 1, step, step + 1} {
		want, err := totp.GenerateCodeCustom(string(secret), time.Unix(st*period, 0), totp.ValidateOpts{Period: period, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err != nil {
			return errMalformedSecret
		}
		if hmac.Equal([]byte(want), []byte(code)) {
			n, err := q.UseTOTPStep(ctx, sqlcgen.UseTOTPStepParams{UserID: cur.UserID, Step: st})
			if err != nil {
				return err
			}
			if n == 0 {
				return ErrTOTPCodeUsed
			}
			return nil
		}
	}
	return ErrInvalidCode
}
