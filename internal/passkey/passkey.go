// Package passkey owns WebAuthn credentials (passkeys): each tenant is its own relying
// party (RP id = the tenant host, origin = the tenant origin with its port), attestation
// "none", discoverable credentials with user verification required. Ceremonies keep their
// state server-side under the SHA-256 of the challenge, bound to the tenant and to the user
// and session (registration, step-up), the user (second sign-in step) or the browser
// (passwordless sign-in), for five minutes and once. The sign counter and the backup flags
// are stored and checked on every assertion.
package passkey

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/mail"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// Method is the session method a passkey proves (assurance "phr": phishing-resistant).
const Method = "passkey"

// ChallengeTTL is how long a ceremony may take.
const ChallengeTTL = 5 * time.Minute

// BindingCookie carries the browser binding of a passwordless sign-in ceremony.
const BindingCookie = "__Host-gatehouse-passkey"

// Audit actions (docs/audit.md).
const (
	AuditAdded          = "passkey.added"
	AuditRenamed        = "passkey.renamed"
	AuditRemoved        = "passkey.removed"
	AuditRejected       = "passkey.rejected"
	AuditCounterRegress = "passkey.counter_regressed"
)

// Errors (codes are listed in docs/openapi.yaml).
var (
	ErrMalformed        = apperr.New(apperr.Invalid, "passkey_malformed", "The passkey response could not be read. Try again.")
	ErrChallengeUnknown = apperr.New(apperr.Invalid, "passkey_challenge_unknown", "This passkey request is not known here. Start again.")
	ErrChallengeExpired = apperr.New(apperr.Invalid, "passkey_challenge_expired", "This passkey request has expired (they last five minutes). Start again.")
	ErrChallengeUsed    = apperr.New(apperr.Conflict, "passkey_challenge_used", "This passkey request was already used. Start again.")
	ErrChallengeOther   = apperr.New(apperr.Forbidden, "passkey_challenge_mismatch", "This passkey request was started for another account, session or browser. Start again.")
	ErrRejected         = apperr.New(apperr.Unauthenticated, "passkey_rejected", "The passkey could not be verified. Try again, or use another way to sign in.")
	ErrUnknownPasskey   = apperr.New(apperr.Unauthenticated, "passkey_unknown", "This passkey is not registered for an account here.")
	ErrCounterRegressed = apperr.New(apperr.Unauthenticated, "passkey_counter_regressed", "This passkey's signature counter went backwards, which suggests a copied authenticator. It was refused; use another passkey or sign-in method.")
	ErrAlreadyAdded     = apperr.New(apperr.Conflict, "passkey_already_registered", "This passkey is already registered.")
	ErrNotFound         = apperr.New(apperr.NotFound, "not_found", "There is no such passkey.")
	ErrInvalidName      = apperr.New(apperr.Invalid, "invalid_passkey_name", "A passkey name has 1 to 64 characters.")
	ErrNoPasskeys       = apperr.New(apperr.Conflict, "no_passkeys", "This account has no passkey yet.")
)

// Service manages passkeys and runs WebAuthn ceremonies.
type Service struct {
	store  *store.Store
	outbox *mail.Outbox
	urls   tenant.URLs
	now    func() time.Time
}

// Deps are the passkey service's collaborators; every one is required.
type Deps struct {
	Store  *store.Store
	Outbox *mail.Outbox
	URLs   tenant.URLs
	Now    func() time.Time
}

// NewService returns the passkey service. Errors: a missing dependency.
func NewService(d Deps) (*Service, error) {
	if d.Store == nil || d.Outbox == nil || d.URLs.BaseDomain == "" || d.Now == nil {
		return nil, errors.New("passkey: store, outbox, URLs and clock are required")
	}
	return &Service{store: d.Store, outbox: d.Outbox, urls: d.URLs, now: d.Now}, nil
}

// RPID is the tenant's relying party id: its host without the port.
func (s *Service) RPID(t tenant.Tenant) string { return t.Slug + "." + s.urls.BaseDomain }

// Origin is the tenant's origin, port included when not the scheme's default.
func (s *Service) Origin(t tenant.Tenant) string { return s.urls.Link(t.Slug, "", nil) }

func (s *Service) relyingParty(t tenant.Tenant) (*webauthn.WebAuthn, error) {
	name := t.DisplayName()
	if name == "" {
		name = t.Slug
	}
	w, err := webauthn.New(&webauthn.Config{
		RPID: s.RPID(t), RPDisplayName: name, RPOrigins: []string{s.Origin(t)},
		AttestationPreference: protocol.PreferNoAttestation,
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementRequired, RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification: protocol.VerificationRequired,
		},
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Enforce: true, Timeout: ChallengeTTL, TimeoutUVD: ChallengeTTL},
			Registration: webauthn.TimeoutConfig{Enforce: true, Timeout: ChallengeTTL, TimeoutUVD: ChallengeTTL},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("passkey: relying party for %s: %w", t.Slug, err)
	}
	return w, nil
}

// Passkey is a registered passkey as its owner sees it.
type Passkey struct {
	ID             uuid.UUID  `json:"id"`
	Name           string     `json:"name"`
	CreatedAt      time.Time  `json:"created_at"`
	LastUsedAt     *time.Time `json:"last_used_at"`
	BackupEligible bool       `json:"backup_eligible"`
	Synced         bool       `json:"synced"` // backed up (the backup state flag): a synced passkey
	Transports     []string   `json:"transports"`
}

func fromRow(r sqlcgen.Passkey) Passkey {
	tr := r.Transports
	if tr == nil {
		tr = []string{}
	}
	return Passkey{ID: r.ID, Name: r.Name, CreatedAt: r.CreatedAt, LastUsedAt: r.LastUsedAt, BackupEligible: r.BackupEligible,
		Synced: r.BackupState, Transports: tr}
}

// user adapts a Gatehouse user to the library: the user handle is the user id's 16 bytes
// (random, not personal).
type user struct {
	id          uuid.UUID
	name, label string
	creds       []webauthn.Credential
}

func (u *user) WebAuthnID() []byte                         { return u.id[:] }
func (u *user) WebAuthnName() string                       { return u.name }
func (u *user) WebAuthnDisplayName() string                { return u.label }
func (u *user) WebAuthnCredentials() []webauthn.Credential { return u.creds }

func credential(r sqlcgen.Passkey) webauthn.Credential {
	tr := make([]protocol.AuthenticatorTransport, 0, len(r.Transports))
	for _, t := range r.Transports {
		tr = append(tr, protocol.AuthenticatorTransport(t))
	}
	return webauthn.Credential{ID: r.CredentialID, PublicKey: r.PublicKey, AttestationFormat: r.AttestationFormat, Transport: tr,
		Flags:         webauthn.CredentialFlags{UserPresent: true, UserVerified: r.UserVerified, BackupEligible: r.BackupEligible, BackupState: r.BackupState},
		Authenticator: webauthn.Authenticator{AAGUID: r.AAGUID, SignCount: uint32(r.SignCount)}}
}

func loadUser(ctx context.Context, q *sqlcgen.Queries, userID uuid.UUID) (*user, []sqlcgen.Passkey, error) {
	u, err := q.GetUserByID(ctx, userID)
	if err != nil {
		return nil, nil, fmt.Errorf("passkey: load user: %w", err)
	}
	rows, err := q.ListPasskeys(ctx, userID)
	if err != nil {
		return nil, nil, fmt.Errorf("passkey: list: %w", err)
	}
	wu := &user{id: u.ID, name: u.Email, label: u.Email}
	if u.Name != "" {
		wu.label = u.Name
	}
	for _, r := range rows {
		wu.creds = append(wu.creds, credential(r))
	}
	return wu, rows, nil
}

// List returns the principal's passkeys, oldest first.
func (s *Service) List(ctx context.Context, t tenant.Tenant, p session.Principal) ([]Passkey, error) {
	out := []Passkey{}
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		rows, err := q.ListPasskeys(ctx, p.UserID)
		if err != nil {
			return err
		}
		out = out[:0]
		for _, r := range rows {
			out = append(out, fromRow(r))
		}
		return nil
	}, store.ReadOnly(), store.Idempotent())
	return out, err
}

// Count returns how many passkeys the user has (inside the caller's transaction).
func Count(ctx context.Context, q *sqlcgen.Queries, userID uuid.UUID) (int, error) {
	n, err := q.CountPasskeys(ctx, userID)
	return int(n), err
}

// HasPasskey reports whether the user has at least one passkey.
func (s *Service) HasPasskey(ctx context.Context, t tenant.Tenant, userID uuid.UUID) (bool, error) {
	var n int
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		var err error
		n, err = Count(ctx, q, userID)
		return err
	}, store.ReadOnly(), store.Idempotent())
	return n > 0, err
}

// CleanName trims a passkey name and checks its length.
func CleanName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 64 || !utf8.ValidString(name) {
		return "", ErrInvalidName
	}
	return name, nil
}

// Rename gives one of the principal's passkeys a new name. Errors: invalid_passkey_name, not_found.
func (s *Service) Rename(ctx context.Context, t tenant.Tenant, p session.Principal, id uuid.UUID, name string) (Passkey, error) {
	name, err := CleanName(name)
	if err != nil {
		return Passkey{}, err
	}
	var out Passkey
	err = s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		r, err := q.RenamePasskey(ctx, sqlcgen.RenamePasskeyParams{ID: id, UserID: p.UserID, Name: name})
		if errors.Is(err, store.ErrNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		out = fromRow(r)
		return audit.Record(ctx, q, audit.By(ctx, p.UserID, p.Email), audit.Event{Action: AuditRenamed, SubjectID: p.UserID,
			SubjectLabel: p.Email, Details: map[string]any{"passkey_id": id}})
	})
	return out, err
}

// Remove deletes one of the principal's passkeys (the caller has checked step-up
// passkey.remove) and mails the user. Errors: not_found.
func (s *Service) Remove(ctx context.Context, t tenant.Tenant, p session.Principal, id uuid.UUID) error {
	return s.store.InTenantTx(ctx, t.ID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		r, err := q.DeletePasskey(ctx, sqlcgen.DeletePasskeyParams{ID: id, UserID: p.UserID})
		if errors.Is(err, store.ErrNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if err := audit.Record(ctx, q, audit.By(ctx, p.UserID, p.Email), audit.Event{Action: AuditRemoved, SubjectID: p.UserID,
			SubjectLabel: p.Email, Details: map[string]any{"passkey_id": id}}); err != nil {
			return err
		}
		return s.notify(ctx, tx, q, t, p.UserID, p.Email, mail.TplPasskeyRemoved, r.Name)
	})
}

// notify mails the owner about a passkey added or removed, in the transaction of the change.
func (s *Service) notify(ctx context.Context, tx pgx.Tx, q *sqlcgen.Queries, t tenant.Tenant, userID uuid.UUID, email, tpl, name string) error {
	u, err := q.GetUserByID(ctx, userID)
	if err != nil {
		return fmt.Errorf("passkey mail: %w", err)
	}
	uid := userID
	return s.outbox.Enqueue(ctx, tx, q, mail.Mail{TenantID: t.ID, UserID: &uid, To: email, Template: tpl,
		Data: mail.Data{Tenant: t.DisplayName(), Email: email, Name: u.Name, Detail: name,
			When: s.now().UTC().Format("Monday 2 January 2006, 15:04 UTC"), Link: s.urls.Link(t.Slug, "/account", nil) + "#passkeys"}})
}
