package account

import (
	"context"
	"errors"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/passkey"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/telemetry"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/token"
)

// LoginPasskey completes a passwordless sign-in: the assertion answers the ceremony that
// this browser (binding, the cookie passkey.BindingCookie) began, with one of the tenant's
// passkeys. The session has method passkey (assurance phr). The account rules of a
// password sign-in apply (disabled, pending deletion, unverified address).
// Errors: passkey_* (see passkey.FinishAssertion), account_disabled, account_pending_deletion,
// email_not_verified.
func (s *Service) LoginPasskey(ctx context.Context, t tenant.Tenant, binding string, body []byte, meta Meta) (LoginResult, error) {
	res, err := s.loginPasskey(ctx, t, binding, body, meta)
	s.metrics.logins.Add(ctx, telemetry.Result(err), attribute.String("step", "passkey"))
	return res, err
}

func (s *Service) loginPasskey(ctx context.Context, t tenant.Tenant, binding string, body []byte, meta Meta) (LoginResult, error) {
	if err := s.limitIP(ctx, t, loginPerIP, meta); err != nil {
		return LoginResult{}, err
	}
	v, err := s.passkeys.FinishAssertion(ctx, t, passkey.PurposeLogin, passkey.Bind{Browser: binding}, body)
	if err != nil {
		return LoginResult{}, err
	}
	var res LoginResult
	var evicted [][]byte
	err = s.store.InTenantTx(ctx, t.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		u, err := q.GetUserByID(ctx, v.UserID)
		if err != nil {
			return err
		}
		if err := s.loginAllowed(t, sqlcgen.GetUserWithPasswordRow{ID: u.ID, Email: u.Email, Status: u.Status,
			EmailVerifiedAt: u.EmailVerifiedAt, CreatedAt: u.CreatedAt}); err != nil {
			return err
		}
		res, evicted, err = s.startSession(ctx, tx, q, t, u.ID, meta, []string{session.MethodPasskey})
		return err
	})
	s.sessions.Invalidate(evicted)
	return res, err
}

// BeginLoginMFAPasskey starts the second sign-in step with a passkey, for the sign-in
// attempt mfaToken (the allow list holds that user's passkeys). It does not use up an
// attempt of the challenge. Errors: invalid_mfa_token, no_passkeys.
func (s *Service) BeginLoginMFAPasskey(ctx context.Context, t tenant.Tenant, mfaToken string) ([]byte, error) {
	userID, err := s.pendingLoginUser(ctx, t, mfaToken)
	if err != nil {
		return nil, err
	}
	return s.passkeys.BeginUserAssertion(ctx, t, passkey.PurposeSecondFactor, passkey.Bind{UserID: userID})
}

// pendingLoginUser is the user of an unused, unexpired sign-in attempt.
func (s *Service) pendingLoginUser(ctx context.Context, t tenant.Tenant, mfaToken string) (uuid.UUID, error) {
	hash, err := token.Parse(mfaToken)
	if err != nil {
		return uuid.Nil, ErrInvalidMFAToken
	}
	var userID uuid.UUID
	err = s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		id, err := q.PendingLoginChallengeUser(ctx, hash)
		if errors.Is(err, store.ErrNotFound) {
			return ErrInvalidMFAToken
		}
		userID = id
		return err
	}, store.ReadOnly(), store.Idempotent())
	return userID, err
}

// LoginMFAPasskey completes a sign-in after the password with a passkey of the same user as
// the second factor: the session has methods password and passkey.
// Errors: invalid_mfa_token, passkey_*.
func (s *Service) LoginMFAPasskey(ctx context.Context, t tenant.Tenant, mfaToken string, body []byte, meta Meta) (LoginResult, error) {
	res, err := s.loginMFAPasskey(ctx, t, mfaToken, body, meta)
	s.metrics.logins.Add(ctx, telemetry.Result(err), attribute.String("step", "mfa_passkey"))
	return res, err
}

func (s *Service) loginMFAPasskey(ctx context.Context, t tenant.Tenant, mfaToken string, body []byte, meta Meta) (LoginResult, error) {
	hash, err := token.Parse(mfaToken)
	if err != nil {
		return LoginResult{}, ErrInvalidMFAToken
	}
	var ch sqlcgen.AttemptLoginChallengeRow
	err = s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		var err error
		ch, err = q.AttemptLoginChallenge(ctx, hash)
		if errors.Is(err, store.ErrNotFound) {
			return ErrInvalidMFAToken
		}
		return err
	})
	if err != nil {
		return LoginResult{}, err
	}
	v, err := s.passkeys.FinishAssertion(ctx, t, passkey.PurposeSecondFactor, passkey.Bind{UserID: ch.UserID}, body)
	if err != nil {
		if ferr := audit.RecordAlone(ctx, s.store, t.ID, audit.By(ctx, uuid.Nil, ""), audit.Event{Action: audit.SessionLoginFailed,
			SubjectID: ch.UserID, Details: map[string]any{"reason": "passkey"}}); ferr != nil {
			return LoginResult{}, ferr
		}
		return LoginResult{}, err
	}
	var res LoginResult
	var evicted [][]byte
	err = s.store.InTenantTx(ctx, t.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		if n, err := q.UseLoginChallenge(ctx, ch.ID); err != nil {
			return err
		} else if n == 0 {
			return ErrInvalidMFAToken
		}
		var err error
		res, evicted, err = s.startSession(ctx, tx, q, t, v.UserID, meta, []string{"password", session.MethodPasskey})
		return err
	})
	s.sessions.Invalidate(evicted)
	return res, err
}
