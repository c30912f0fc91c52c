package oidcop

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/secretbox"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
)

// Key rotation (docs/apps.md, "Signing keys"). A key is published in the JWKS before it
// signs (publishLead, longer than every node's key cache), signs for keyLifetime, and stays
// published after it stops signing until every token it signed has expired
// (retireGrace: the longest token lifetime an app may set, plus the clock skew).
const (
	keyLifetime = 30 * 24 * time.Hour
	publishLead = 2 * time.Minute
	retireGrace = 24*time.Hour + 5*time.Minute
	keyCacheTTL = 30 * time.Second
	rsaBits     = 2048
)

// signingKey is one of the tenant's keys, opened.
type signingKey struct {
	kid        string
	alg        jose.SignatureAlgorithm
	private    *rsa.PrivateKey
	public     jose.JSONWebKey
	activeFrom time.Time
}

// tenantKeys is what the JWKS publishes and which key signs, cached per process for
// keyCacheTTL (a new key is published publishLead before it signs, so every node's JWKS
// names it before any node uses it).
type tenantKeys struct {
	published []jose.JSONWebKey
	signer    *signingKey
	loadedAt  time.Time
}

// keyring loads, creates and rotates the signing keys of every tenant.
type keyring struct {
	store *store.Store
	box   *secretbox.Box
	now   func() time.Time

	mu    sync.Mutex
	cache map[uuid.UUID]*tenantKeys
}

// ErrNoSecretKey answers when GATEHOUSE_SECRET_KEY is not set: private keys are never
// stored in the clear.
var errNoSecretKey = errors.New("oidc: GATEHOUSE_SECRET_KEY must be set to sign tokens")

func keyAAD(tenantID uuid.UUID, kid string) []byte {
	return []byte("oidc-signing-key:" + tenantID.String() + ":" + kid)
}

// keys returns the tenant's published keys and its signer, creating the first key (or the
// next one, when the current one is near the end of its lifetime) as needed.
func (k *keyring) keys(ctx context.Context, tenantID uuid.UUID) (*tenantKeys, error) {
	now := k.now()
	k.mu.Lock()
	c := k.cache[tenantID]
	k.mu.Unlock()
	if c != nil && now.Sub(c.loadedAt) < keyCacheTTL && c.signer != nil {
		return c, nil
	}
	var rows []sqlcgen.OIDCKey
	err := k.store.InTenant(ctx, tenantID, func(q *sqlcgen.Queries) error {
		var err error
		if rows, err = q.ListOIDCKeys(ctx, now); err != nil {
			return err
		}
		if needsKey(rows, now) {
			if _, err := k.next(ctx, q, tenantID, rows, now); err != nil {
				return err
			}
			rows, err = q.ListOIDCKeys(ctx, now)
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("oidc keys: %w", err)
	}
	tk, err := k.open(tenantID, rows, now)
	if err != nil {
		return nil, err
	}
	k.mu.Lock()
	k.cache[tenantID] = tk
	k.mu.Unlock()
	return tk, nil
}

func anyActive(rows []sqlcgen.OIDCKey, now time.Time) bool {
	for _, r := range rows {
		if !r.ActiveFrom.After(now) {
			return true
		}
	}
	return false
}

// needsKey: no key signs, or the newest key is old enough that its successor must be
// published now, and none is waiting.
func needsKey(rows []sqlcgen.OIDCKey, now time.Time) bool {
	if len(rows) == 0 {
		return true
	}
	newest := rows[len(rows)-1]
	if newest.ActiveFrom.After(now) {
		return false // the next key is published and waits for its turn
	}
	return now.Sub(newest.ActiveFrom) >= keyLifetime-publishLead
}

// next creates the key that follows rows: the first key signs at once (nothing signs
// yet); a successor is published now and signs after publishLead. A rotation (not the
// first key) is audited as scheduled.
func (k *keyring) next(ctx context.Context, q *sqlcgen.Queries, tenantID uuid.UUID, rows []sqlcgen.OIDCKey, now time.Time) (string, error) {
	first := len(rows) == 0 || !anyActive(rows, now)
	at := now.Add(publishLead)
	if first {
		at = now
	}
	kid, err := k.insert(ctx, q, tenantID, now, at)
	if err != nil || first {
		return kid, err
	}
	return kid, audit.Record(ctx, q, audit.Who{ActorLabel: "system"}, audit.Event{Action: audit.OIDCKeysRotated, SubjectLabel: kid,
		Details: map[string]any{"kid": kid, "signs_from": at, "reason": "scheduled"}})
}

// rotate publishes a new key that signs after publishLead (gatehouse tenant rotate-keys),
// audited in the same transaction. A tenant without a signing key yet gets one that signs
// at once: no token was signed, so no verifier needs the lead, and there is nothing else
// to sign with meanwhile.
func (k *keyring) rotate(ctx context.Context, tenantID uuid.UUID, who audit.Who) (kid string, at time.Time, first bool, err error) {
	now := k.now().Truncate(time.Microsecond) // as stored: the times returned are the row's
	err = k.store.InTenant(ctx, tenantID, func(q *sqlcgen.Queries) error {
		rows, err := q.ListOIDCKeys(ctx, now)
		if err != nil {
			return err
		}
		at, first = now.Add(publishLead), !anyActive(rows, now)
		if first {
			at = now
		}
		if kid, err = k.insert(ctx, q, tenantID, now, at); err != nil {
			return err
		}
		return audit.Record(ctx, q, who, audit.Event{Action: audit.OIDCKeysRotated, SubjectLabel: kid,
			Details: map[string]any{"kid": kid, "signs_from": at, "reason": "on demand"}})
	})
	if err != nil {
		return "", time.Time{}, false, fmt.Errorf("oidc key rotation: %w", err)
	}
	k.forget(tenantID)
	return kid, at, first, nil
}

// forget drops the tenant's cached keys in this process (other nodes reload within
// keyCacheTTL, shorter than publishLead).
func (k *keyring) forget(tenantID uuid.UUID) {
	k.mu.Lock()
	delete(k.cache, tenantID)
	k.mu.Unlock()
}

func (k *keyring) insert(ctx context.Context, q *sqlcgen.Queries, tenantID uuid.UUID, now, activeFrom time.Time) (string, error) {
	if !k.box.Enabled() {
		return "", errNoSecretKey
	}
	priv, err := rsa.GenerateKey(rand.Reader, rsaBits)
	if err != nil {
		return "", err
	}
	kidBytes := make([]byte, 10)
	if _, err := rand.Read(kidBytes); err != nil {
		return "", err
	}
	kid := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(kidBytes))
	pub := jose.JSONWebKey{Key: &priv.PublicKey, KeyID: kid, Algorithm: string(jose.RS256), Use: "sig"}
	pubJSON, err := pub.MarshalJSON()
	if err != nil {
		return "", err
	}
	keyID, sealed, err := k.box.Seal(x509.MarshalPKCS1PrivateKey(priv), keyAAD(tenantID, kid))
	if err != nil {
		return "", err
	}
	_, err = q.InsertOIDCKey(ctx, sqlcgen.InsertOIDCKeyParams{Kid: kid, Alg: string(jose.RS256), KeyID: keyID,
		PrivateSealed: sealed, PublicJWK: pubJSON, CreatedAt: now, ActiveFrom: activeFrom})
	return kid, err
}

// open picks the signer (the newest key that is active) and the published set.
func (k *keyring) open(tenantID uuid.UUID, rows []sqlcgen.OIDCKey, now time.Time) (*tenantKeys, error) {
	tk := &tenantKeys{loadedAt: now}
	var signer *sqlcgen.OIDCKey
	for i := range rows {
		r := rows[i]
		var jwk jose.JSONWebKey
		if err := json.Unmarshal(r.PublicJWK, &jwk); err != nil {
			return nil, fmt.Errorf("oidc key %s: %w", r.Kid, err)
		}
		tk.published = append(tk.published, jwk)
		if !r.ActiveFrom.After(now) && r.RetiredAt == nil {
			signer = &rows[i]
		}
	}
	if signer == nil {
		// Every active key was retired by a rotation whose key is not yet active: the
		// newest active one keeps signing.
		for i := range rows {
			if !rows[i].ActiveFrom.After(now) {
				signer = &rows[i]
			}
		}
	}
	if signer == nil {
		return nil, errors.New("oidc: the tenant has no active signing key")
	}
	der, err := k.box.Open(signer.KeyID, signer.PrivateSealed, keyAAD(tenantID, signer.Kid))
	if err != nil {
		return nil, fmt.Errorf("oidc key %s: %w", signer.Kid, err)
	}
	priv, err := x509.ParsePKCS1PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("oidc key %s: %w", signer.Kid, err)
	}
	tk.signer = &signingKey{kid: signer.Kid, alg: jose.SignatureAlgorithm(signer.Alg), private: priv, activeFrom: signer.ActiveFrom,
		public: jose.JSONWebKey{Key: &priv.PublicKey, KeyID: signer.Kid, Algorithm: signer.Alg, Use: "sig"}}
	return tk, nil
}

// KeyMaintenance is what MaintainKeys did to a tenant's keys.
type KeyMaintenance struct {
	Rotated string // the kid of the successor published, or ""
	Retired int64  // keys that stopped signing (superseded by the current key)
	Deleted int64  // keys whose tokens have all expired, gone from the JWKS
}

// maintain publishes the successor of a key near the end of its lifetime (so a tenant
// without traffic rotates too), retires the keys superseded by the current signer (they
// stay published for retireGrace) and deletes those whose grace has passed. A tenant with
// no key (one that never signed) gets none.
func (k *keyring) maintain(ctx context.Context, tenantID uuid.UUID) (KeyMaintenance, error) {
	var m KeyMaintenance
	now := k.now()
	err := k.store.InTenant(ctx, tenantID, func(q *sqlcgen.Queries) error {
		m = KeyMaintenance{}
		rows, err := q.ListOIDCKeys(ctx, now)
		if err != nil || len(rows) == 0 {
			return err
		}
		if needsKey(rows, now) {
			if m.Rotated, err = k.next(ctx, q, tenantID, rows, now); err != nil {
				return err
			}
		}
		m.Retired, m.Deleted, err = k.retire(ctx, q, now)
		return err
	})
	if err != nil {
		return KeyMaintenance{}, fmt.Errorf("oidc key maintenance: %w", err)
	}
	if m != (KeyMaintenance{}) {
		k.forget(tenantID)
	}
	return m, nil
}

// retire marks the keys superseded by the current signer and deletes those whose grace
// has passed.
func (k *keyring) retire(ctx context.Context, q *sqlcgen.Queries, now time.Time) (retired, deleted int64, err error) {
	rows, err := q.ListOIDCKeys(ctx, now)
	if err != nil {
		return 0, 0, err
	}
	var current *sqlcgen.OIDCKey
	for i := range rows {
		if !rows[i].ActiveFrom.After(now) {
			current = &rows[i]
		}
	}
	if current != nil {
		exp := current.ActiveFrom.Add(retireGrace)
		if retired, err = q.RetireOIDCKeys(ctx, sqlcgen.RetireOIDCKeysParams{ActiveFrom: current.ActiveFrom, ExpiresAt: exp, Kid: current.Kid}); err != nil {
			return 0, 0, err
		}
	}
	deleted, err = q.DeleteExpiredOIDCKeys(ctx, now)
	return retired, deleted, err
}
