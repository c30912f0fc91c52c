package oidcop

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
)

// Access tokens are RFC 9068 JWTs: header typ "at+jwt", claims iss, sub, aud, client_id,
// exp, iat, jti, scope (and tenant, sid). zitadel/oidc signs its own JWT access tokens with
// typ "JWT", so the apps use its bearer-token path, whose one hook is op.Crypto: storage
// prepares each token's claims when it records the token (the same request, just before),
// and Encrypt("{jti}:{sub}") signs them. Verification (userinfo, introspection, revocation)
// goes through the library's JWT access-token verifier over the tenant's JWKS, because
// Decrypt never opens anything. Encrypt of anything else is an authorization code: random,
// stored hashed by SaveAuthCode.
type atCrypto struct {
	s       *Service
	mu      sync.Mutex
	pending map[string]pendingAT
}

type pendingAT struct {
	tenantID uuid.UUID
	claims   map[string]any
	at       time.Time
}

var errNotSealed = errors.New("oidc: access tokens are signed JWTs, not sealed values")

// prepare records what the access token id will carry when the library asks to sign it.
func (c *atCrypto) prepare(ctx context.Context, id uuid.UUID, g grantOf, exp time.Time) error {
	t, err := tenantFrom(ctx)
	if err != nil {
		return err
	}
	now := c.s.now()
	sub := g.clientID // client_credentials: the app acts for itself
	if g.userID != nil {
		sub = g.userID.String()
	}
	claims := map[string]any{"iss": c.s.Issuer(t), "sub": sub, "aud": []string{g.clientID}, "client_id": g.clientID,
		"exp": exp.Unix(), "iat": now.Unix(), "jti": id.String(), "scope": strings.Join(g.scopes, " "), "tenant": t.Slug}
	if g.sessionID != nil {
		claims["sid"] = g.sessionID.String()
	}
	if g.authTime != nil && !g.authTime.IsZero() {
		claims["auth_time"] = g.authTime.Unix()
	}
	if g.acr != "" {
		claims["acr"] = g.acr
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, p := range c.pending { // a request that failed after recording its token
		if now.Sub(p.at) > time.Minute {
			delete(c.pending, k)
		}
	}
	c.pending[id.String()] = pendingAT{tenantID: t.ID, claims: claims, at: now}
	return nil
}

func (c *atCrypto) Encrypt(v string) (string, error) {
	id, _, isToken := strings.Cut(v, ":")
	if !isToken {
		return randomToken("") // an authorization code for request v
	}
	c.mu.Lock()
	p, ok := c.pending[id]
	delete(c.pending, id)
	c.mu.Unlock()
	if !ok {
		return "", errors.New("oidc: no prepared claims for the access token")
	}
	tk, err := c.s.keys.keys(context.Background(), p.tenantID)
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: tk.signer.alg, Key: &jose.JSONWebKey{Key: tk.signer.private, KeyID: tk.signer.kid}},
		(&jose.SignerOptions{}).WithType("at+jwt"))
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(p.claims)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

func (c *atCrypto) Decrypt(string) (string, error) { return "", errNotSealed }
