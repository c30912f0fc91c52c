package passkey

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/mail"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/token"
)

// Purposes of a ceremony.
const (
	PurposeRegister     = "register"      // add a passkey (signed in: user and session)
	PurposeLogin        = "login"         // sign in without a password (the browser's binding cookie)
	PurposeSecondFactor = "second_factor" // after a password (the user of the sign-in attempt)
	PurposeReauth       = "reauth"        // step-up (signed in: user and session)
)

// Bind is who may finish a ceremony: the user and session it was begun for, or for a
// passwordless sign-in the browser's binding token (the cookie BindingCookie).
type Bind struct {
	UserID    uuid.UUID
	SessionID uuid.UUID
	Browser   string
}

// Verified is a checked assertion: whose passkey it was.
type Verified struct {
	UserID    uuid.UUID
	PasskeyID uuid.UUID
	Email     string
}

func challengeHash(c string) []byte {
	h := sha256.Sum256([]byte(c))
	return h[:]
}

// save stores a begun ceremony: the challenge's hash, who may finish it, and the library's
// state without the challenge.
func save(ctx context.Context, q *sqlcgen.Queries, purpose string, b Bind, sd *webauthn.SessionData) error {
	hash := challengeHash(sd.Challenge)
	state := *sd
	state.Challenge = ""
	js, err := json.Marshal(state)
	if err != nil {
		return fmt.Errorf("passkey: ceremony state: %w", err)
	}
	p := sqlcgen.InsertPasskeyChallengeParams{ChallengeHash: hash, Purpose: purpose, SessionData: js}
	if b.UserID != uuid.Nil {
		p.UserID = &b.UserID
	}
	if b.SessionID != uuid.Nil {
		p.SessionID = &b.SessionID
	}
	if b.Browser != "" {
		bh, err := token.Parse(b.Browser)
		if err != nil {
			return fmt.Errorf("passkey: binding token: %w", err)
		}
		p.BindingHash = bh
	}
	return q.InsertPasskeyChallenge(ctx, p)
}

// consume uses the challenge the client answered, once, in a transaction of its own (a
// failed verification still uses it up), and checks that purpose and binding match.
func (s *Service) consume(ctx context.Context, t tenant.Tenant, purpose, challenge string, b Bind) (webauthn.SessionData, error) {
	var row sqlcgen.UsePasskeyChallengeRow
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		var err error
		row, err = q.UsePasskeyChallenge(ctx, challengeHash(challenge))
		if errors.Is(err, store.ErrNotFound) {
			return ErrChallengeUnknown // also another tenant's: RLS hides it
		}
		return err
	})
	if err != nil {
		return webauthn.SessionData{}, err
	}
	switch {
	case row.Purpose != purpose:
		return webauthn.SessionData{}, ErrChallengeUnknown
	case row.Expired:
		return webauthn.SessionData{}, ErrChallengeExpired
	case !row.Consumed:
		return webauthn.SessionData{}, ErrChallengeUsed
	}
	if !bound(row, b) {
		return webauthn.SessionData{}, ErrChallengeOther
	}
	var sd webauthn.SessionData
	if err := json.Unmarshal(row.SessionData, &sd); err != nil {
		return webauthn.SessionData{}, fmt.Errorf("passkey: stored ceremony state: %w", err)
	}
	sd.Challenge = challenge
	return sd, nil
}

func bound(row sqlcgen.UsePasskeyChallengeRow, b Bind) bool {
	if row.UserID != nil && *row.UserID != b.UserID {
		return false
	}
	if row.SessionID != nil && *row.SessionID != b.SessionID {
		return false
	}
	if row.BindingHash != nil {
		h, err := token.Parse(b.Browser)
		if err != nil || !bytes.Equal(h, row.BindingHash) {
			return false
		}
	}
	return true
}

// BeginRegistration starts adding a passkey for the signed-in principal: the creation
// options ({publicKey:{…}}) for navigator.credentials.create, excluding the user's
// passkeys. The caller has checked step-up where the rules ask for it.
func (s *Service) BeginRegistration(ctx context.Context, t tenant.Tenant, p session.Principal) (json.RawMessage, error) {
	rp, err := s.relyingParty(t)
	if err != nil {
		return nil, err
	}
	var out json.RawMessage
	err = s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		u, _, err := loadUser(ctx, q, p.UserID)
		if err != nil {
			return err
		}
		excl := make([]protocol.CredentialDescriptor, 0, len(u.creds))
		for i := range u.creds {
			excl = append(excl, u.creds[i].Descriptor())
		}
		creation, sd, err := rp.BeginRegistration(u, webauthn.WithExclusions(excl),
			webauthn.WithConveyancePreference(protocol.PreferNoAttestation))
		if err != nil {
			return fmt.Errorf("passkey: begin registration: %w", err)
		}
		if err := save(ctx, q, PurposeRegister, Bind{UserID: p.UserID, SessionID: p.Session.ID}, sd); err != nil {
			return err
		}
		out, err = json.Marshal(creation)
		return err
	})
	return out, err
}

// FinishRegistration checks the credential that navigator.credentials.create gave (its
// toJSON form) against the ceremony begun in this session, stores it under name (a default
// when empty), audits it and mails the user.
// Errors: passkey_malformed, passkey_challenge_*, passkey_rejected, passkey_already_registered, invalid_passkey_name.
func (s *Service) FinishRegistration(ctx context.Context, t tenant.Tenant, p session.Principal, body []byte, name string) (Passkey, error) {
	if name == "" {
		name = "Passkey added " + s.now().UTC().Format("2 Jan 2006")
	}
	name, err := CleanName(name)
	if err != nil {
		return Passkey{}, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(body)
	if err != nil {
		return Passkey{}, ErrMalformed
	}
	sd, err := s.consume(ctx, t, PurposeRegister, parsed.Response.CollectedClientData.Challenge, Bind{UserID: p.UserID, SessionID: p.Session.ID})
	if err != nil {
		return Passkey{}, err
	}
	rp, err := s.relyingParty(t)
	if err != nil {
		return Passkey{}, err
	}
	var out Passkey
	var rejected error
	err = s.store.InTenantTx(ctx, t.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		u, _, err := loadUser(ctx, q, p.UserID)
		if err != nil {
			return err
		}
		cred, err := rp.CreateCredential(u, sd, parsed)
		if err != nil {
			rejected = err
			return ErrRejected
		}
		tr := make([]string, 0, len(cred.Transport))
		for _, x := range cred.Transport {
			tr = append(tr, string(x))
		}
		row, err := q.InsertPasskey(ctx, sqlcgen.InsertPasskeyParams{UserID: p.UserID, CredentialID: cred.ID, PublicKey: cred.PublicKey,
			AttestationFormat: cred.AttestationFormat, AAGUID: cred.Authenticator.AAGUID, Transports: tr, SignCount: int64(cred.Authenticator.SignCount),
			BackupEligible: cred.Flags.BackupEligible, BackupState: cred.Flags.BackupState, UserVerified: cred.Flags.UserVerified, Name: name})
		if errors.Is(err, store.ErrNotFound) {
			return ErrAlreadyAdded
		}
		if err != nil {
			return err
		}
		out = fromRow(row)
		if err := audit.Record(ctx, q, audit.By(ctx, p.UserID, p.Email), audit.Event{Action: AuditAdded, SubjectID: p.UserID, SubjectLabel: p.Email,
			Details: map[string]any{"passkey_id": row.ID, "synced": row.BackupState, "backup_eligible": row.BackupEligible}}); err != nil {
			return err
		}
		return s.notify(ctx, tx, q, t, p.UserID, p.Email, mail.TplPasskeyAdded, name)
	})
	if rejected != nil {
		s.reject(ctx, t, p.UserID, p.Email, PurposeRegister, rejected)
	}
	return out, err
}

// BeginLogin starts a passwordless sign-in: request options with an empty allow list (the
// authenticator offers its discoverable credentials for this RP id) and a browser binding
// token for the cookie BindingCookie.
func (s *Service) BeginLogin(ctx context.Context, t tenant.Tenant) (json.RawMessage, string, error) {
	rp, err := s.relyingParty(t)
	if err != nil {
		return nil, "", err
	}
	assertion, sd, err := rp.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return nil, "", fmt.Errorf("passkey: begin login: %w", err)
	}
	bind, _ := token.New()
	err = s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		return save(ctx, q, PurposeLogin, Bind{Browser: bind}, sd)
	})
	if err != nil {
		return nil, "", err
	}
	out, err := json.Marshal(assertion)
	return out, bind, err
}

// BeginUserAssertion starts a ceremony for a known user (a second factor after the
// password, or step-up): the allow list holds the user's passkeys.
// Errors: no_passkeys.
func (s *Service) BeginUserAssertion(ctx context.Context, t tenant.Tenant, purpose string, b Bind) (json.RawMessage, error) {
	rp, err := s.relyingParty(t)
	if err != nil {
		return nil, err
	}
	var out json.RawMessage
	err = s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		u, _, err := loadUser(ctx, q, b.UserID)
		if err != nil {
			return err
		}
		if len(u.creds) == 0 {
			return ErrNoPasskeys
		}
		assertion, sd, err := rp.BeginLogin(u, webauthn.WithUserVerification(protocol.VerificationRequired))
		if err != nil {
			return fmt.Errorf("passkey: begin assertion: %w", err)
		}
		if err := save(ctx, q, purpose, b, sd); err != nil {
			return err
		}
		out, err = json.Marshal(assertion)
		return err
	})
	return out, err
}

// FinishAssertion checks the assertion navigator.credentials.get gave (toJSON form)
// against the ceremony of purpose bound to b, then records the use: the sign counter must
// move forward (unless the authenticator keeps none) and the backup-eligible flag must not
// change. A counter going backwards is refused and audited.
// Errors: passkey_malformed, passkey_challenge_*, passkey_unknown, passkey_rejected, passkey_counter_regressed.
func (s *Service) FinishAssertion(ctx context.Context, t tenant.Tenant, purpose string, b Bind, body []byte) (Verified, error) {
	parsed, err := protocol.ParseCredentialRequestResponseBytes(body)
	if err != nil {
		return Verified{}, ErrMalformed
	}
	sd, err := s.consume(ctx, t, purpose, parsed.Response.CollectedClientData.Challenge, b)
	if err != nil {
		return Verified{}, err
	}
	rp, err := s.relyingParty(t)
	if err != nil {
		return Verified{}, err
	}
	var v Verified
	var rejected, regressed error
	err = s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		row, err := q.GetPasskeyByCredential(ctx, parsed.RawID)
		if errors.Is(err, store.ErrNotFound) {
			return ErrUnknownPasskey
		}
		if err != nil {
			return err
		}
		if b.UserID != uuid.Nil && row.UserID != b.UserID {
			return ErrUnknownPasskey // another user's passkey: not one of this user's
		}
		u, _, err := loadUser(ctx, q, row.UserID)
		if err != nil {
			return err
		}
		v = Verified{UserID: row.UserID, PasskeyID: row.ID, Email: u.name}
		var cred *webauthn.Credential
		if purpose == PurposeLogin {
			_, cred, err = rp.ValidatePasskeyLogin(func(rawID, userHandle []byte) (webauthn.User, error) {
				if !bytes.Equal(userHandle, row.UserID[:]) {
					return nil, errors.New("user handle is not the passkey's owner")
				}
				return u, nil
			}, sd, parsed)
		} else {
			cred, err = rp.ValidateLogin(u, sd, parsed)
		}
		if err != nil {
			rejected = err
			return ErrRejected
		}
		if cred.Authenticator.CloneWarning {
			regressed = fmt.Errorf("stored %d, presented %d", row.SignCount, parsed.Response.AuthenticatorData.Counter)
			return ErrCounterRegressed
		}
		n, err := q.UsePasskey(ctx, sqlcgen.UsePasskeyParams{ID: row.ID, SignCount: int64(cred.Authenticator.SignCount),
			BackupState: cred.Flags.BackupState, UserVerified: cred.Flags.UserVerified})
		if err != nil {
			return err
		}
		if n == 0 { // a concurrent use moved the counter past this one
			regressed = errors.New("a concurrent assertion advanced the counter")
			return ErrCounterRegressed
		}
		return nil
	})
	switch {
	case regressed != nil:
		who := audit.By(ctx, v.UserID, v.Email)
		if aerr := audit.RecordAlone(ctx, s.store, t.ID, who, audit.Event{Action: AuditCounterRegress, SubjectID: v.UserID, SubjectLabel: v.Email,
			Details: map[string]any{"passkey_id": v.PasskeyID, "purpose": purpose, "detail": regressed.Error()}}); aerr != nil {
			return Verified{}, aerr
		}
	case rejected != nil:
		s.reject(ctx, t, v.UserID, v.Email, purpose, rejected)
	}
	if err != nil {
		return Verified{}, err
	}
	return v, nil
}

// reject audits a refused ceremony (best effort: the refusal stands either way).
func (s *Service) reject(ctx context.Context, t tenant.Tenant, userID uuid.UUID, email, purpose string, cause error) {
	reason := "verification_failed"
	var pe *protocol.Error
	if errors.As(cause, &pe) && pe.Type != "" {
		reason = pe.Type
	}
	_ = audit.RecordAlone(ctx, s.store, t.ID, audit.By(ctx, userID, email), audit.Event{Action: AuditRejected, SubjectID: userID,
		SubjectLabel: email, Details: map[string]any{"purpose": purpose, "reason": reason}})
}
