package oidcop

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// Lifetimes of the protocol's own objects.
const (
	authRequestTTL = 10 * time.Minute
	codeTTL        = 60 * time.Second
)

// storage is op.Storage over sqlc and row-level security: each call runs in the
// transaction of the tenant whose issuer the request addresses.
type storage struct{ s *Service }

var (
	_ op.Storage                        = storage{}
	_ op.ClientCredentialsStorage       = storage{}
	_ op.CanSetUserinfoFromRequest      = storage{}
	_ op.CanGetPrivateClaimsFromRequest = storage{}
)

func hashOf(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

func randomToken(prefix string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b), nil
}

// inTenant runs fn in the request's tenant.
func (st storage) inTenant(ctx context.Context, fn func(t tenant.Tenant, q *sqlcgen.Queries) error, opts ...store.TxOption) error {
	t, err := tenantFrom(ctx)
	if err != nil {
		return err
	}
	return st.s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error { return fn(t, q) }, opts...)
}

// CreateAuthRequest stores an authorization request that passed the library's checks
// (client, exact redirect URI, scopes, response type). Gatehouse requires PKCE with S256
// of every client, public or confidential.
func (st storage) CreateAuthRequest(ctx context.Context, req *oidc.AuthRequest, _ string) (op.AuthRequest, error) {
	if req.CodeChallenge == "" || req.CodeChallengeMethod != oidc.CodeChallengeMethodS256 {
		return nil, oidc.ErrInvalidRequest().WithDescription("PKCE is required: send code_challenge with code_challenge_method=S256")
	}
	if req.ResponseMode != "" && req.ResponseMode != oidc.ResponseModeQuery {
		return nil, oidc.ErrInvalidRequest().WithDescription("only response_mode=query is supported")
	}
	p := params{RedirectURI: req.RedirectURI, State: req.State, Nonce: req.Nonce, Scopes: req.Scopes,
		ResponseType: string(req.ResponseType), ResponseMode: string(req.ResponseMode), CodeChallenge: req.CodeChallenge,
		CodeChallengeMethod: string(req.CodeChallengeMethod), Prompt: req.Prompt, MaxAge: req.MaxAge,
		ACRValues: req.ACRValues, LoginHint: req.LoginHint}
	if len(p.LoginHint) > 320 {
		p.LoginHint = ""
	}
	var out *authRequest
	err := st.inTenant(ctx, func(t tenant.Tenant, q *sqlcgen.Queries) error {
		app, err := q.GetAppByClientID(ctx, req.ClientID)
		if err != nil {
			return err
		}
		if !slices.Contains(p.Scopes, oidc.ScopeOpenID) {
			return oidc.ErrInvalidScope().WithDescription("the openid scope is required")
		}
		p.Scopes = slices.DeleteFunc(slices.Clone(p.Scopes), func(sc string) bool { return !slices.Contains(app.AllowedScopes, sc) })
		// A first-party app that may refresh gets a refresh token without asking for
		// offline_access (API.md, Apps).
		if app.FirstParty && slices.Contains(app.GrantTypes, "refresh_token") && !slices.Contains(p.Scopes, oidc.ScopeOfflineAccess) {
			p.Scopes = append(p.Scopes, oidc.ScopeOfflineAccess)
		}
		raw, err := json.Marshal(p)
		if err != nil {
			return err
		}
		row, err := q.InsertAuthRequest(ctx, sqlcgen.InsertAuthRequestParams{AppID: app.ID, Params: raw, ExpiresAt: st.s.now().Add(authRequestTTL)})
		if err != nil {
			return err
		}
		out, err = requestFrom(row.ID, row.AppID, app.ClientID, row.Params, nil, nil, nil, nil, "", false, row.CreatedAt)
		return err
	})
	if err != nil {
		var oe *oidc.Error
		if errors.As(err, &oe) {
			return nil, oe
		}
		return nil, fmt.Errorf("oidc: storing the authorization request: %w", err)
	}
	return out, nil
}

func (st storage) AuthRequestByID(ctx context.Context, id string) (op.AuthRequest, error) {
	rid, err := uuid.Parse(id)
	if err != nil {
		return nil, errors.New("oidc: unknown authorization request")
	}
	var out *authRequest
	err = st.inTenant(ctx, func(_ tenant.Tenant, q *sqlcgen.Queries) error {
		row, err := q.GetAuthRequest(ctx, sqlcgen.GetAuthRequestParams{ID: rid, Now: st.s.now()})
		if err != nil {
			return err
		}
		out, err = requestFromRow(row)
		return err
	}, store.ReadOnly(), store.Idempotent())
	if err != nil {
		return nil, fmt.Errorf("oidc: authorization request: %w", err)
	}
	return out, nil
}

// AuthRequestByCode finds the request of a code that is unused and unexpired; the token
// transaction marks it used (useCode), so an exchange commits once. A second use of a code
// revokes every token the first use issued (RFC 6749 §4.1.2) and is audited.
func (st storage) AuthRequestByCode(ctx context.Context, code string) (op.AuthRequest, error) {
	var row sqlcgen.GetAuthRequestByCodeRow
	err := st.inTenant(ctx, func(_ tenant.Tenant, q *sqlcgen.Queries) error {
		var err error
		row, err = q.GetAuthRequestByCode(ctx, hashOf(code))
		return err
	}, store.ReadOnly(), store.Idempotent())
	if err != nil {
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid or expired code")
	}
	if row.CodeUsedAt != nil {
		if err := st.codeReplayed(ctx, row.ID, row.ClientID, row.UserID); err != nil {
			return nil, oidc.ErrServerError().WithParent(err)
		}
		return nil, errCodeReused()
	}
	if !row.Done || row.CodeExpiresAt == nil || !st.s.now().Before(*row.CodeExpiresAt) {
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid or expired code")
	}
	out, err := requestFrom(row.ID, row.AppID, row.ClientID, row.Params, row.UserID, row.SessionID, row.AuthTime, row.AMR, row.ACR, row.Done, row.CreatedAt)
	if err != nil {
		return nil, oidc.ErrInvalidGrant().WithDescription("invalid or expired code")
	}
	out.byCode = true
	return out, nil
}

func errCodeReused() error {
	return oidc.ErrInvalidGrant().WithDescription("the code was already used; the tokens it issued are revoked")
}

// codeReplayed revokes, in a transaction of its own, what a used code issued, and audits
// the replay.
func (st storage) codeReplayed(ctx context.Context, id uuid.UUID, clientID string, userID *uuid.UUID) error {
	var revoked []uuid.UUID
	defer func() { st.s.dropTokens(revoked) }()
	return st.inTenant(ctx, func(_ tenant.Tenant, q *sqlcgen.Queries) error {
		var err error
		revoked, err = revokeCode(ctx, q, id, clientID, userID)
		return err
	})
}

// revokeCode revokes what a reused code issued (refresh families included), tells every
// node, and audits the replay, in the caller's transaction.
func revokeCode(ctx context.Context, q *sqlcgen.Queries, id uuid.UUID, clientID string, userID *uuid.UUID) ([]uuid.UUID, error) {
	ids, err := q.RevokeTokensOfAuthRequest(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := notifyRevoked(ctx, q, tokenPayloads(ids)...); err != nil {
		return ids, err
	}
	return ids, recordReplay(ctx, q, audit.OIDCCodeReused, clientID, userID, "auth_request_id", id)
}

// useCode marks the code of a code grant used inside the token transaction. false: another
// exchange used it first, and what it issued is now revoked (commit, then refuse).
func (st storage) useCode(ctx context.Context, q *sqlcgen.Queries, req op.TokenRequest, revoked *[]uuid.UUID) (bool, error) {
	r, ok := req.(*authRequest)
	if !ok || !r.byCode {
		return true, nil
	}
	n, err := q.MarkAuthCodeUsed(ctx, sqlcgen.MarkAuthCodeUsedParams{ID: r.id, Now: st.s.now()})
	if err != nil || n == 1 {
		return err == nil, err
	}
	*revoked, err = revokeCode(ctx, q, r.id, r.clientID, r.userID)
	return false, err
}

// recordReplay audits a code or refresh token presented a second time (what it issued is
// revoked by the caller in the same transaction).
func recordReplay(ctx context.Context, q *sqlcgen.Queries, action, clientID string, userID *uuid.UUID, key string, id any) error {
	subject := uuid.Nil
	if userID != nil {
		subject = *userID
	}
	return audit.Record(ctx, q, audit.Who{ActorLabel: "client " + clientID}, audit.Event{Action: action,
		SubjectID: subject, Details: map[string]any{"client_id": clientID, key: id}})
}

// SaveAuthCode binds the (random) code to a completed request for codeTTL.
func (st storage) SaveAuthCode(ctx context.Context, id, code string) error {
	rid, err := uuid.Parse(id)
	if err != nil {
		return err
	}
	return st.inTenant(ctx, func(_ tenant.Tenant, q *sqlcgen.Queries) error {
		exp := st.s.now().Add(codeTTL)
		n, err := q.SaveAuthCode(ctx, sqlcgen.SaveAuthCodeParams{ID: rid, CodeHash: hashOf(code), CodeExpiresAt: &exp})
		if err == nil && n != 1 {
			err = errors.New("oidc: the request is not complete or already has a code")
		}
		return err
	})
}

// DeleteAuthRequest keeps the request: the library calls it only from the token response
// of a code exchange (the implicit flow is not offered), after AuthRequestByCode marked
// the code used, and a used code must stay recognisable (a second use revokes what the
// first issued). Housekeeping removes requests when they expire. No transaction: the one
// this used to open could never delete a row (its query spares requests with a code).
func (st storage) DeleteAuthRequest(context.Context, string) error { return nil }

// grantOf is what a token request carries about the user's sign-in.
type grantOf struct {
	appID                 uuid.UUID
	clientID              string
	userID, sessionID     *uuid.UUID
	authRequestID         *uuid.UUID
	scopes, amr           []string
	acr                   string
	authTime              *time.Time
	accessTTL, refreshTTL time.Duration
}

// appOf returns an app of the tenant by id: from this node's cache (the token endpoint
// authenticated the client a moment ago), else from the transaction.
func (st storage) appOf(ctx context.Context, t tenant.Tenant, q *sqlcgen.Queries, id uuid.UUID) (sqlcgen.App, error) {
	if app, ok := st.s.cache.appByID(t.ID, id, st.s.now()); ok {
		return app, nil
	}
	return q.GetApp(ctx, id)
}

func (st storage) grantFor(ctx context.Context, t tenant.Tenant, q *sqlcgen.Queries, req op.TokenRequest) (grantOf, error) {
	switch r := req.(type) {
	case *authRequest:
		app, err := st.appOf(ctx, t, q, r.appID)
		if err != nil {
			return grantOf{}, err
		}
		at := r.authTime
		rid := r.id
		return grantOf{appID: app.ID, clientID: app.ClientID, userID: r.userID, sessionID: r.sessionID, authRequestID: &rid, scopes: r.p.Scopes,
			amr: r.amr, acr: r.acr, authTime: &at, accessTTL: time.Duration(app.AccessTokenTTLSeconds) * time.Second,
			refreshTTL: time.Duration(app.RefreshTokenTTLSeconds) * time.Second}, nil
	case *refreshRequest:
		app, err := st.appOf(ctx, t, q, r.token.AppID)
		if err != nil {
			return grantOf{}, err
		}
		uid := r.userID
		return grantOf{appID: app.ID, clientID: app.ClientID, userID: &uid, sessionID: r.sessionID, scopes: r.scopes, amr: r.token.AMR, acr: r.token.ACR,
			authTime: r.token.AuthTime, accessTTL: time.Duration(app.AccessTokenTTLSeconds) * time.Second,
			refreshTTL: time.Duration(app.RefreshTokenTTLSeconds) * time.Second}, nil
	case *clientRequest:
		return grantOf{appID: r.app.ID, clientID: r.app.ClientID, scopes: r.scopes, accessTTL: time.Duration(r.app.AccessTokenTTLSeconds) * time.Second}, nil
	}
	return grantOf{}, fmt.Errorf("oidc: token request of type %T is not supported", req)
}

func (st storage) insertAccess(ctx context.Context, q *sqlcgen.Queries, g grantOf) (uuid.UUID, time.Time, error) {
	id := uuid.New()
	exp := st.s.now().Add(g.accessTTL)
	_, err := q.InsertOIDCToken(ctx, sqlcgen.InsertOIDCTokenParams{ID: id, Kind: "access", AppID: g.appID, UserID: g.userID,
		SessionID: g.sessionID, AuthRequestID: g.authRequestID, Scopes: g.scopes, AuthTime: g.authTime, AMR: nonNil(g.amr),
		ACR: g.acr, ExpiresAt: exp})
	if err == nil {
		err = st.s.at.prepare(ctx, id, g, exp)
	}
	return id, exp, err
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (st storage) CreateAccessToken(ctx context.Context, req op.TokenRequest) (string, time.Time, error) {
	var id uuid.UUID
	var exp time.Time
	var fresh bool
	var revoked []uuid.UUID
	defer func() { st.s.dropTokens(revoked) }()
	err := st.inTenant(ctx, func(t tenant.Tenant, q *sqlcgen.Queries) error {
		revoked = nil
		var err error
		if fresh, err = st.useCode(ctx, q, req, &revoked); err != nil || !fresh {
			return err
		}
		g, err := st.grantFor(ctx, t, q, req)
		if err != nil {
			return err
		}
		if err := prefetchUser(ctx, q, req, g.userID); err != nil {
			return err
		}
		id, exp, err = st.insertAccess(ctx, q, g)
		return err
	})
	if err == nil && !fresh {
		return "", time.Time{}, errCodeReused()
	}
	if err != nil {
		return "", time.Time{}, fmt.Errorf("oidc: access token: %w", err)
	}
	return id.String(), exp, nil
}

// CreateAccessAndRefreshTokens issues an access token and a refresh token. For a refresh
// grant the presented token is marked used in the same transaction and its successor
// joins its family; if another request used it first, the family is revoked.
func (st storage) CreateAccessAndRefreshTokens(ctx context.Context, req op.TokenRequest, current string) (string, string, time.Time, error) {
	var accessID uuid.UUID
	var exp time.Time
	refresh, err := randomToken("ghr_")
	if err != nil {
		return "", "", time.Time{}, err
	}
	var reused bool
	var revoked []uuid.UUID
	defer func() { st.s.dropTokens(revoked) }()
	err = st.inTenant(ctx, func(t tenant.Tenant, q *sqlcgen.Queries) error {
		reused, revoked = false, nil
		fresh, err := st.useCode(ctx, q, req, &revoked)
		if err != nil {
			return err
		}
		if !fresh {
			reused = true
			return nil // commit the revocation, then refuse
		}
		g, err := st.grantFor(ctx, t, q, req)
		if err != nil {
			return err
		}
		// The ID token that follows needs the user's claims: read them here rather than in
		// a transaction of their own (SetUserinfoFromRequest).
		if err := prefetchUser(ctx, q, req, g.userID); err != nil {
			return err
		}
		family := uuid.New()
		if rr, ok := req.(*refreshRequest); ok {
			family = *rr.token.FamilyID
			g.authRequestID = rr.token.AuthRequestID
			n, err := q.UseRefreshToken(ctx, sqlcgen.UseRefreshTokenParams{ID: rr.token.ID, Now: st.s.now()})
			if err != nil {
				return err
			}
			if n != 1 {
				reused = true
				_, err := q.RevokeTokenFamily(ctx, &family)
				return err
			}
		}
		// Both rows in one statement; the access token's JWT is prepared as insertAccess does.
		accessID, exp = uuid.New(), st.s.now().Add(g.accessTTL)
		err = q.InsertOIDCTokenPair(ctx, sqlcgen.InsertOIDCTokenPairParams{AccessID: accessID, AppID: g.appID, UserID: g.userID,
			SessionID: g.sessionID, AuthRequestID: g.authRequestID, Scopes: g.scopes, AuthTime: g.authTime, AMR: nonNil(g.amr),
			ACR: g.acr, AccessExpiresAt: exp, RefreshID: uuid.New(), FamilyID: &family, TokenHash: hashOf(refresh),
			RefreshExpiresAt: st.s.now().Add(g.refreshTTL)})
		if err != nil {
			return err
		}
		return st.s.at.prepare(ctx, accessID, g, exp)
	})
	if reused {
		if rr, ok := req.(*authRequest); ok && rr.byCode {
			return "", "", time.Time{}, errCodeReused()
		}
		return "", "", time.Time{}, oidc.ErrInvalidGrant().WithDescription("the refresh token was already used")
	}
	if err != nil {
		return "", "", time.Time{}, fmt.Errorf("oidc: tokens: %w", err)
	}
	return accessID.String(), refresh, exp, nil
}

// TokenRequestByRefreshToken accepts a refresh token that is unused, unrevoked, unexpired
// and whose Gatehouse session lives. A used one is a replay: its whole family is revoked.
func (st storage) TokenRequestByRefreshToken(ctx context.Context, token string) (op.RefreshTokenRequest, error) {
	var out *refreshRequest
	var reused bool
	err := st.inTenant(ctx, func(_ tenant.Tenant, q *sqlcgen.Queries) error {
		out, reused = nil, false // set again by the attempt that commits
		now := st.s.now()
		row, err := q.GetRefreshToken(ctx, sqlcgen.GetRefreshTokenParams{TokenHash: hashOf(token), Now: now})
		if err != nil {
			return err
		}
		if row.UsedAt != nil && row.RevokedAt == nil {
			reused = true
			if _, err := q.RevokeTokenFamily(ctx, row.FamilyID); err != nil {
				return err
			}
			return recordReplay(ctx, q, audit.OIDCRefreshReused, row.ClientID, row.UserID, "family_id", row.FamilyID)
		}
		if row.UsedAt != nil || row.RevokedAt != nil || !now.Before(row.ExpiresAt) || !row.SessionActive || row.UserID == nil {
			return errors.New("inactive")
		}
		out = &refreshRequest{token: row, scopes: row.Scopes, userID: *row.UserID, sessionID: row.SessionID}
		if row.AuthTime != nil {
			out.authTime = *row.AuthTime
		}
		return nil
	})
	if err != nil || reused {
		return nil, op.ErrInvalidRefreshToken
	}
	return out, nil
}

// TerminateSession is RP-initiated logout without an id_token_hint naming a session: the
// app's tokens of that user are revoked (the Gatehouse session is ended by the logout
// page, which knows the browser's session).
func (st storage) TerminateSession(ctx context.Context, userID, clientID string) error {
	return nil
}

// RevokeToken (RFC 7009): an access token by its id (userID set) or a refresh token by
// its value, which revokes its family. A token of another client is left alone.
func (st storage) RevokeToken(ctx context.Context, tokenOrID, userID, clientID string) *oidc.Error {
	var revoked []uuid.UUID
	defer func() { st.s.dropTokens(revoked) }() // this node at once; the others by notification
	err := st.inTenant(ctx, func(_ tenant.Tenant, q *sqlcgen.Queries) error {
		revoked = nil
		app, err := q.GetAppByClientID(ctx, clientID)
		if err != nil {
			return err
		}
		if userID != "" {
			id, err := uuid.Parse(tokenOrID)
			if err != nil {
				return nil
			}
			n, err := q.RevokeOIDCToken(ctx, sqlcgen.RevokeOIDCTokenParams{ID: id, AppID: app.ID})
			if err != nil || n == 0 {
				return err
			}
			revoked = []uuid.UUID{id}
			return notifyRevoked(ctx, q, notifyToken+id.String())
		}
		row, err := q.GetRefreshToken(ctx, sqlcgen.GetRefreshTokenParams{TokenHash: hashOf(tokenOrID), Now: st.s.now()})
		if errors.Is(err, store.ErrNotFound) || (err == nil && row.AppID != app.ID) {
			return nil // RFC 7009 §2.2: an unknown token is not an error
		}
		if err != nil {
			return err
		}
		_, err = q.RevokeTokenFamily(ctx, row.FamilyID)
		return err
	})
	if err != nil {
		return oidc.ErrServerError().WithParent(err)
	}
	return nil
}

func (st storage) GetRefreshTokenInfo(ctx context.Context, clientID, token string) (string, string, error) {
	var userID, tokenID string
	err := st.inTenant(ctx, func(_ tenant.Tenant, q *sqlcgen.Queries) error {
		row, err := q.GetRefreshToken(ctx, sqlcgen.GetRefreshTokenParams{TokenHash: hashOf(token), Now: st.s.now()})
		if err != nil {
			return err
		}
		if row.ClientID != clientID || row.UserID == nil {
			return store.ErrNotFound
		}
		userID, tokenID = row.UserID.String(), row.ID.String()
		return nil
	}, store.ReadOnly(), store.Idempotent())
	if err != nil {
		return "", "", op.ErrInvalidRefreshToken
	}
	return userID, tokenID, nil
}

// opKey adapts a signing key.
type opKey struct{ k *signingKey }

func (k opKey) SignatureAlgorithm() jose.SignatureAlgorithm { return k.k.alg }
func (k opKey) Key() any                                    { return k.k.private }
func (k opKey) ID() string                                  { return k.k.kid }

type pubKey struct{ j jose.JSONWebKey }

func (k pubKey) ID() string                         { return k.j.KeyID }
func (k pubKey) Algorithm() jose.SignatureAlgorithm { return jose.SignatureAlgorithm(k.j.Algorithm) }
func (k pubKey) Use() string                        { return "sig" }
func (k pubKey) Key() any                           { return k.j.Key }

func (st storage) SigningKey(ctx context.Context) (op.SigningKey, error) {
	t, err := tenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	tk, err := st.s.keys.keys(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	return opKey{tk.signer}, nil
}

func (st storage) SignatureAlgorithms(context.Context) ([]jose.SignatureAlgorithm, error) {
	return []jose.SignatureAlgorithm{jose.RS256}, nil
}

func (st storage) KeySet(ctx context.Context) ([]op.Key, error) {
	t, err := tenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	tk, err := st.s.keys.keys(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	out := make([]op.Key, 0, len(tk.published))
	for _, j := range tk.published {
		out = append(out, pubKey{j})
	}
	return out, nil
}

func (st storage) GetClientByClientID(ctx context.Context, clientID string) (op.Client, error) {
	t, err := tenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	e, ok, epoch := st.s.cache.app(t.ID, clientID, st.s.now())
	if ok {
		return client{e.app}, nil
	}
	var out client
	err = st.s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		app, err := q.GetAppByClientID(ctx, clientID)
		out = client{app}
		return err
	}, store.ReadOnly(), store.Idempotent())
	if err == nil {
		st.s.cache.putApp(t.ID, out.app, false, epoch, st.s.now())
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, errors.New("oidc: unknown client")
	}
	if err != nil {
		return nil, oidc.ErrServerError().WithParent(err)
	}
	return out, nil
}

// secretMatches compares a client secret with the current and, during a rotation, the
// previous hash, in constant time.
func (st storage) secretMatches(app sqlcgen.App, secret string) bool {
	h := hashOf(secret)
	ok := app.SecretHash != nil && subtle.ConstantTimeCompare(h, app.SecretHash) == 1
	if app.PreviousSecretHash != nil && app.PreviousSecretExpiresAt != nil && st.s.now().Before(*app.PreviousSecretExpiresAt) {
		ok = ok || subtle.ConstantTimeCompare(h, app.PreviousSecretHash) == 1
	}
	return ok
}

func (st storage) AuthorizeClientIDSecret(ctx context.Context, clientID, secret string) error {
	_, err := st.authorizeClient(ctx, clientID, secret)
	return err
}

func (st storage) ClientCredentials(ctx context.Context, clientID, secret string) (op.Client, error) {
	app, err := st.authorizeClient(ctx, clientID, secret)
	if err != nil {
		return nil, err
	}
	return client{app}, nil // the library refuses an app without the grant (unauthorized_client)
}

func (st storage) ClientCredentialsTokenRequest(ctx context.Context, clientID string, scopes []string) (op.TokenRequest, error) {
	c, err := st.GetClientByClientID(ctx, clientID) // authenticated a moment ago: cached
	if err != nil {
		return nil, oidc.ErrInvalidClient()
	}
	app := c.(client).app
	for _, sc := range scopes {
		if !slices.Contains(app.AllowedScopes, sc) || sc == oidc.ScopeOpenID || sc == oidc.ScopeOfflineAccess {
			return nil, oidc.ErrInvalidScope().WithDescription("scope %q is not allowed for client_credentials", sc)
		}
	}
	return &clientRequest{app: app, scopes: nonNil(scopes)}, nil
}
