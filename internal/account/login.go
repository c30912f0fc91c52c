package account

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"go.opentelemetry.io/otel/attribute"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/emailaddr"
	"github.com/gatehouse-id/gatehouse/internal/mail"
	"github.com/gatehouse-id/gatehouse/internal/mfa"
	"github.com/gatehouse-id/gatehouse/internal/passkey"
	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/telemetry"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/token"
)

// LoginResult is a successful login, or (MFARequired) a password that was right for an
// account with a second factor: the code is owed, with MFAToken, at LoginMFA.
type LoginResult struct {
	Session     session.Issued
	User        User
	MFARequired bool
	MFAToken    string
	// Passkey: the second step can take a passkey (the user has one).
	Passkey bool
	// OfferPasskey: a password sign-in of a user without a passkey (pages offer one, once).
	OfferPasskey bool
	// PasskeyRequired: the tenant requires a passkey of the user's role and this sign-in
	// used none (pages lead to using or adding one before going on).
	PasskeyRequired bool
}

// Login checks email and password and starts a session. Unknown addresses are checked
// against a dummy hash, so the answer and its timing are the same as for a wrong
// password. Failed attempts slow down that account from that client address (progressive
// delay, never a hard lockout).
// Errors: invalid_email, invalid_credentials, rate_limited, email_not_verified,
// account_disabled, account_pending_deletion.
func (s *Service) Login(ctx context.Context, t tenant.Tenant, email, pw string, meta Meta) (LoginResult, error) {
	res, err := s.login(ctx, t, email, pw, meta)
	result := telemetry.Result(err)
	if err == nil && res.MFARequired {
		result = "mfa_required"
	}
	s.metrics.logins.Add(ctx, result, attribute.String("step", "password"))
	return res, err
}

func (s *Service) login(ctx context.Context, t tenant.Tenant, email, pw string, meta Meta) (LoginResult, error) {
	email, err := emailaddr.Normalize(email)
	if err != nil {
		return LoginResult{}, err
	}
	attempt, row, found, err := s.beforeHash(ctx, t, email, meta)
	if err != nil {
		return LoginResult{}, err
	}
	stored := ""
	if found && row.PasswordHash != nil {
		stored = *row.PasswordHash
	}
	ok, rehash, err := s.hasher.Verify(ctx, pw, stored)
	if err != nil {
		return LoginResult{}, fmt.Errorf("verify password: %w", err)
	}
	if !ok {
		ev := audit.Event{Action: audit.SessionLoginFailed, Details: map[string]any{"reason": "invalid_credentials"}}
		if found {
			ev.SubjectID, ev.SubjectLabel = row.ID, row.Email
		}
		if err := attempt.Failed(ctx, audit.By(ctx, uuid.Nil, ""), ev); err != nil {
			return LoginResult{}, err
		}
		return LoginResult{}, ErrInvalidCredentials
	}
	if refused := s.loginAllowed(t, row); refused != nil {
		// The password was right: forget its failures even though this login is refused.
		if err := attempt.PassedAlone(ctx); err != nil {
			return LoginResult{}, err
		}
		return LoginResult{}, refused
	}
	var newHash string
	if rehash {
		if newHash, err = s.hasher.Hash(ctx, pw); err != nil {
			return LoginResult{}, err
		}
	}
	var res LoginResult
	var evicted [][]byte
	err = s.store.InTenantTx(ctx, t.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		if newHash != "" {
			if err := q.UpsertPassword(ctx, sqlcgen.UpsertPasswordParams{UserID: row.ID, Hash: newHash}); err != nil {
				return err
			}
		}
		if err := attempt.Passed(ctx, q); err != nil {
			return err
		}
		if has, err := mfa.Enabled(ctx, q, row.ID); err != nil {
			return err
		} else if has {
			tok, hash := token.New()
			if err := q.InsertLoginChallenge(ctx, sqlcgen.InsertLoginChallengeParams{UserID: row.ID, TokenHash: hash}); err != nil {
				return err
			}
			n, err := passkey.Count(ctx, q, row.ID)
			if err != nil {
				return err
			}
			res = LoginResult{MFARequired: true, MFAToken: tok, Passkey: n > 0}
			return nil
		}
		var err error
		res, evicted, err = s.startSession(ctx, tx, q, t, row.ID, meta, []string{"password"})
		return err
	})
	s.sessions.Invalidate(evicted)
	return res, err
}

// errAskSSOGate ends the read before the hash when the address's domain is routed to SSO.
var errAskSSOGate = errors.New("account: the address's domain is routed to SSO")

// beforeHash is everything a password sign-in does before the hash, in one transaction:
// the SSO gate (see below), the per-address limiter (loginPerIP), the login delay of
// typed address and client address (ratelimit.BeginIn, which counts this check before it
// runs), and the account with its hash. It commits before the hash, refusals included: a
// refused request still counts against the per-address limit, and a guess sent in
// parallel waits on the delay counter's row lock until this one is counted.
//
// The SSO gate (sso.Service.Required) is asked only for an address whose domain the tenant
// routes to an SSO connection (a row in sso_domains): for any other domain it answers
// "password" without looking further, so the common case reads that in this transaction
// and the gate's own transaction is spent only where SSO is configured for the domain.
func (s *Service) beforeHash(ctx context.Context, t tenant.Tenant, email string, meta Meta) (*ratelimit.Attempt, sqlcgen.GetUserWithPasswordRow, bool, error) {
	check := ratelimit.Check{Tenant: t, Secret: ratelimit.Password,
		// The password at sign-in counts per typed address and client address, never per
		// account alone: anyone can type a known address.
		Address: ratelimit.Key("login", email, ratelimit.Addr(meta.IP))}
	ipKey := ratelimit.Key(ratelimit.Addr(meta.IP))
	domain := email[strings.LastIndexByte(email, '@')+1:]
	gateAsked := false
	for {
		var attempt *ratelimit.Attempt
		var row sqlcgen.GetUserWithPasswordRow
		var found bool
		var refused error
		err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
			attempt, row, found, refused = nil, sqlcgen.GetUserWithPasswordRow{}, false, nil // a retried attempt starts again
			if !gateAsked {
				if _, err := q.GetSSODomain(ctx, domain); err == nil {
					return errAskSSOGate // nothing written yet: roll back, ask the gate, come back
				} else if !errors.Is(err, store.ErrNotFound) {
					return fmt.Errorf("sso domain: %w", err)
				}
			}
			ok, retry, err := s.limiter.AllowIn(ctx, q, ipKey, loginPerIP)
			if err != nil {
				return err
			}
			if !ok {
				refused = ratelimit.Limited(retry)
				return nil // commit: the refused request counts
			}
			a, wait, err := s.limiter.BeginIn(ctx, q, check)
			if err != nil {
				return err
			}
			if wait > 0 {
				refused = ratelimit.Limited(wait)
				return nil // commit the per-address count; the delay counted nothing
			}
			r, err := q.GetUserWithPassword(ctx, email)
			if errors.Is(err, store.ErrNotFound) {
				attempt = a
				return nil
			}
			if err != nil {
				return err
			}
			attempt, row, found = a, r, true
			return nil
		})
		if errors.Is(err, errAskSSOGate) {
			if err := s.requireNoSSO(ctx, t, email); err != nil {
				return nil, row, false, err
			}
			gateAsked = true
			continue
		}
		if err != nil {
			return nil, row, false, err
		}
		if refused != nil {
			return nil, row, false, refused
		}
		return attempt, row, found, nil
	}
}

// loginAllowed refuses a right password for an account that may not sign in now.
func (s *Service) loginAllowed(t tenant.Tenant, row sqlcgen.GetUserWithPasswordRow) error {
	switch row.Status {
	case "disabled":
		return ErrAccountDisabled
	case "pending_deletion":
		return ErrPendingDeletion
	}
	if row.EmailVerifiedAt == nil {
		v := t.Policy.Verification
		switch {
		case v.Mode == tenant.VerificationRequired,
			v.Mode == tenant.VerificationGrace && s.now().After(row.CreatedAt.Add(time.Duration(v.GraceHours)*time.Hour)):
			return errEmailNotVerified()
		}
	}
	return nil
}

// startSession creates the session of a completed login and the new-device notice.
func (s *Service) startSession(ctx context.Context, tx pgx.Tx, q *sqlcgen.Queries, t tenant.Tenant, userID uuid.UUID, meta Meta, methods []string) (LoginResult, [][]byte, error) {
	if err := q.TouchLastLogin(ctx, userID); err != nil {
		return LoginResult{}, nil, err
	}
	iss, evicted, err := s.sessions.Create(ctx, tx, q, userID, t.Policy.Sessions, meta, methods, s.now())
	if err != nil {
		return LoginResult{}, nil, err
	}
	u, err := q.GetUserByID(ctx, userID)
	if err != nil {
		return LoginResult{}, nil, err
	}
	if iss.NewDevice && t.Policy.Sessions.NewDeviceNotice {
		if err := s.noticeNewDevice(ctx, tx, q, t, u, iss.Session); err != nil {
			return LoginResult{}, nil, err
		}
	}
	err = audit.Record(ctx, q, audit.By(ctx, u.ID, u.Email), audit.Event{Action: audit.SessionLogin, SubjectID: u.ID, SubjectLabel: u.Email,
		Details: map[string]any{"session_id": iss.Session.ID, "methods": methods, "new_device": iss.NewDevice}})
	if err != nil {
		return LoginResult{}, nil, err
	}
	n, err := passkey.Count(ctx, q, userID)
	if err != nil {
		return LoginResult{}, nil, err
	}
	roles, err := q.GetUserRoles(ctx, userID)
	if err != nil {
		return LoginResult{}, nil, err
	}
	return LoginResult{Session: iss, User: userFromRow(u), OfferPasskey: n == 0 && slices.Contains(methods, "password"),
		PasskeyRequired: t.Policy.PhishingResistantRequired(roles) && !slices.Contains(methods, session.MethodPasskey)}, evicted, nil
}

// ErrInvalidMFAToken answers an unknown, used, expired or exhausted login challenge.
var ErrInvalidMFAToken = apperr.New(apperr.Unauthenticated, "invalid_mfa_token", "This sign-in attempt has expired. Sign in again.")

// LoginMFA completes a login with the second factor: a TOTP code or a recovery code for
// the challenge that Login returned. A challenge allows five attempts within five minutes
// and is single-use; wrong codes also count per account, across every challenge and client
// address (ratelimit.SecondFactor: a growing delay, then a temporary lock with a mail).
// Errors: invalid_mfa_token, invalid_code, totp_code_used, recovery_code_used, rate_limited.
func (s *Service) LoginMFA(ctx context.Context, t tenant.Tenant, mfaToken, code string, meta Meta) (LoginResult, error) {
	res, err := s.loginMFA(ctx, t, mfaToken, code, meta)
	s.metrics.logins.Add(ctx, telemetry.Result(err), attribute.String("step", "mfa"))
	return res, err
}

func (s *Service) loginMFA(ctx context.Context, t tenant.Tenant, mfaToken, code string, meta Meta) (LoginResult, error) {
	hash, err := token.Parse(mfaToken)
	if err != nil {
		return LoginResult{}, ErrInvalidMFAToken
	}
	var ch sqlcgen.AttemptLoginChallengeRow
	// The attempt is counted in its own transaction: a wrong code still uses one up.
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
	attempt, err := s.limiter.Begin(ctx, ratelimit.Check{Tenant: t, Secret: ratelimit.SecondFactor, Account: ch.UserID,
		Notice: s.LockNotice})
	if err != nil {
		return LoginResult{}, err
	}
	var res LoginResult
	var evicted [][]byte
	err = s.store.InTenantTx(ctx, t.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		method, err := s.mfa.Verify(ctx, q, t.ID, ch.UserID, code)
		if err != nil {
			return err
		}
		if n, err := q.UseLoginChallenge(ctx, ch.ID); err != nil {
			return err
		} else if n == 0 {
			return ErrInvalidMFAToken
		}
		if err := attempt.Passed(ctx, q); err != nil {
			return err
		}
		res, evicted, err = s.startSession(ctx, tx, q, t, ch.UserID, meta, []string{"password", method})
		if err != nil {
			return err
		}
		if method == mfa.MethodRecovery {
			if err := audit.Record(ctx, q, audit.By(ctx, ch.UserID, res.User.Email), audit.Event{Action: audit.MFARecoveryUsed,
				SubjectID: ch.UserID, SubjectLabel: res.User.Email}); err != nil {
				return err
			}
			return s.securityNotice(ctx, tx, q, t, ch.UserID, res.User.Email, "A recovery code was used",
				"someone signed in with one of your recovery codes. Each code works once.")
		}
		return nil
	})
	s.sessions.Invalidate(evicted)
	if mfa.WrongCode(err) {
		if ferr := attempt.Failed(ctx, audit.By(ctx, uuid.Nil, ""), audit.Event{Action: audit.SessionLoginFailed,
			SubjectID: ch.UserID, Details: map[string]any{"reason": apperr.From(err).Code}}); ferr != nil {
			return LoginResult{}, ferr
		}
	}
	return res, err
}

// LockNotice mails the user that checks of one of their secrets are locked for a while, in
// the transaction that audits the lock (a ratelimit.LockNotice: this package's checks pass
// it, and the step-up service gets it at start).
func (s *Service) LockNotice(ctx context.Context, tx pgx.Tx, q *sqlcgen.Queries, c ratelimit.Check, until time.Time) error {
	u, err := q.GetUserByID(ctx, c.Account)
	if err != nil {
		return err
	}
	mins := int(ratelimit.AccountLock.Minutes())
	event, detail := "Too many wrong codes", fmt.Sprintf("%d wrong two-factor or recovery codes were entered, so no code is "+
		"accepted for %d minutes (until %s). Whoever entered them may know your password.",
		ratelimit.AccountLockFailures, mins, until.UTC().Format("15:04 UTC"))
	if c.Secret == ratelimit.Password {
		event, detail = "Too many wrong passwords", fmt.Sprintf("%d wrong passwords were entered in a signed-in session "+
			"(to confirm it's you or to change the password), so password checks are refused for %d minutes (until %s). "+
			"If this was not you, someone has one of your sessions: sign out everywhere from your account page.",
			ratelimit.AccountLockFailures, mins, until.UTC().Format("15:04 UTC"))
	}
	return s.securityNotice(ctx, tx, q, c.Tenant, u.ID, u.Email, event, detail)
}

// securityNotice mails the user about a change to how they sign in.
func (s *Service) securityNotice(ctx context.Context, tx pgx.Tx, q *sqlcgen.Queries, t tenant.Tenant, userID uuid.UUID, email, event, detail string) error {
	return s.enqueue(ctx, tx, q, t, userID, email, mail.TplSecurityNotice,
		mail.Data{Email: email, Event: event, Detail: detail, Link: s.link(t, "/password/forgot", "")})
}

// noticeNewDevice mails the user about a sign-in from a device they have not used, with a
// "wasn't you?" link, in the login transaction.
func (s *Service) noticeNewDevice(ctx context.Context, tx pgx.Tx, q *sqlcgen.Queries, t tenant.Tenant, u sqlcgen.User, sess session.Session) error {
	tok, err := issueToken(ctx, q, u.ID, "secure_account", u.Email, s.now().Add(SecureTokenTTL))
	if err != nil {
		return err
	}
	ip := "unknown"
	if sess.IP.IsValid() {
		ip = sess.IP.String()
	}
	return s.enqueue(ctx, tx, q, t, u.ID, u.Email, mail.TplNewDevice, mail.Data{Email: u.Email, Device: DeviceLabel(sess),
		IP: ip, When: sess.CreatedAt.UTC().Format("Monday 2 January 2006, 15:04 UTC"), Link: s.link(t, "/account/secure", tok)})
}

// DeviceLabel describes a session's device for people: "Chrome on macOS".
func DeviceLabel(s session.Session) string {
	b, o := s.Browser, s.OS
	switch {
	case b != "" && o != "":
		return b + " on " + o
	case b != "":
		return b
	case o != "":
		return "a browser on " + o
	case s.Device != "":
		return "an unknown " + strings.ToLower(s.Device) + " client"
	}
	return "an unknown device"
}
