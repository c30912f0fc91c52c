package oidcop

import (
	"context"
	"errors"
	"slices"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// The storage's user claims: ID token, userinfo and introspection answers, and the private
// claims of access tokens (split from storage.go).

// SetUserinfoFromScopes is deprecated in the library; SetUserinfoFromRequest does the work.
func (st storage) SetUserinfoFromScopes(context.Context, *oidc.UserInfo, string, string, []string) error {
	return nil
}

// SetUserinfoFromRequest fills the ID token's claims: the user's by scope, and sid,
// tenant and roles.
func (st storage) SetUserinfoFromRequest(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) error {
	uid, err := uuid.Parse(req.GetSubject())
	if err != nil {
		return err
	}
	var sid *uuid.UUID
	switch r := req.(type) {
	case *authRequest:
		sid = r.sessionID
	case *refreshRequest:
		sid = r.sessionID
	}
	if uc := prefetched(req); uc != nil && uc.id == uid {
		t, err := tenantFrom(ctx)
		if err != nil {
			return err
		}
		uc.fill(t, info, scopes)
		if sid != nil {
			info.AppendClaims("sid", sid.String())
		}
		return nil
	}
	return st.inTenant(ctx, func(t tenant.Tenant, q *sqlcgen.Queries) error {
		uc, err := loadUser(ctx, q, uid)
		if err != nil {
			return err
		}
		uc.fill(t, info, scopes)
		if sid != nil {
			info.AppendClaims("sid", sid.String())
		}
		return nil
	}, store.ReadOnly(), store.Idempotent())
}

// loadUser reads the user's claims.
func loadUser(ctx context.Context, q *sqlcgen.Queries, uid uuid.UUID) (*userClaims, error) {
	u, err := q.GetUserClaims(ctx, uid)
	if err != nil {
		return nil, err
	}
	return &userClaims{id: u.ID, email: u.Email, emailVerified: u.EmailVerifiedAt != nil, name: u.Name, roles: u.Roles}, nil
}

// prefetchUser reads, in the token transaction, the claims of the ID token the library
// asks for next, onto the request (a code or refresh grant with a user).
func prefetchUser(ctx context.Context, q *sqlcgen.Queries, req op.TokenRequest, uid *uuid.UUID) error {
	var slot **userClaims
	switch r := req.(type) {
	case *authRequest:
		slot = &r.user
	case *refreshRequest:
		slot = &r.user
	}
	if slot == nil || uid == nil {
		return nil
	}
	uc, err := loadUser(ctx, q, *uid)
	*slot = uc
	return err
}

func prefetched(req op.IDTokenRequest) *userClaims {
	switch r := req.(type) {
	case *authRequest:
		return r.user
	case *refreshRequest:
		return r.user
	}
	return nil
}

// fill sets the user's claims of scopes, and tenant and roles.
func (uc *userClaims) fill(t tenant.Tenant, info *oidc.UserInfo, scopes []string) {
	info.Subject = uc.id.String()
	if slices.Contains(scopes, oidc.ScopeEmail) {
		info.Email = uc.email
		info.EmailVerified = oidc.Bool(uc.emailVerified)
	}
	if slices.Contains(scopes, oidc.ScopeProfile) && uc.name != "" {
		info.Name = uc.name
	}
	info.AppendClaims("tenant", t.Slug)
	info.AppendClaims("roles", slices.Clone(nonNil(uc.roles)))
}

// activeToken returns an access token that still works (its session included), with its
// user's claims: from this node's cache, else from a tenant transaction (and then cached
// until it expires, its session's deadline, or the cache's ttl, whichever is first).
func (st storage) activeToken(ctx context.Context, t tenant.Tenant, tokenID string) (tokenEntry, error) {
	id, err := uuid.Parse(tokenID)
	if err != nil {
		return tokenEntry{}, store.ErrNotFound
	}
	e, ok, epoch := st.s.cache.token(t.ID, id, st.s.now())
	if ok {
		return e, nil
	}
	err = st.s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		tok, err := q.GetActiveToken(ctx, sqlcgen.GetActiveTokenParams{ID: id, Now: st.s.now()})
		if err != nil {
			return err
		}
		e = tokenEntry{tenantID: t.ID, tok: tok, until: tok.LiveUntil}
		if tok.UserID != nil {
			e.user, err = loadUser(ctx, q, *tok.UserID)
		}
		return err
	}, store.ReadOnly(), store.Idempotent())
	if err != nil {
		return tokenEntry{}, err
	}
	st.s.cache.putToken(e, epoch, st.s.now())
	return e, nil
}

// SetUserinfoFromToken answers /oauth2/userinfo for a valid access token whose session
// still lives.
func (st storage) SetUserinfoFromToken(ctx context.Context, info *oidc.UserInfo, tokenID, subject, _ string) error {
	t, err := tenantFrom(ctx)
	if err != nil {
		return err
	}
	e, err := st.activeToken(ctx, t, tokenID)
	if err != nil {
		return err
	}
	if e.user == nil || e.tok.UserID.String() != subject {
		return errors.New("oidc: the token has no user")
	}
	if h, ok := tokenHashFrom(ctx); ok {
		st.s.cache.bindVerified(t.ID, h, e.tok.ID, subject)
	}
	e.user.fill(t, info, e.tok.Scopes)
	return nil
}

// SetIntrospectionFromToken answers RFC 7662 for an access token: active only while the
// token is unrevoked, unexpired and its session lives.
func (st storage) SetIntrospectionFromToken(ctx context.Context, resp *oidc.IntrospectionResponse, tokenID, subject, clientID string) error {
	t, err := tenantFrom(ctx)
	if err != nil {
		return err
	}
	e, err := st.activeToken(ctx, t, tokenID)
	if err != nil {
		return err
	}
	if h, ok := tokenHashFrom(ctx); ok {
		st.s.cache.bindVerified(t.ID, h, e.tok.ID, subject)
	}
	tok := e.tok
	resp.Active = true
	resp.Scope = oidc.SpaceDelimitedArray(slices.Clone(tok.Scopes))
	resp.ClientID = tok.ClientID
	resp.Subject = subject
	resp.TokenType = oidc.BearerToken
	resp.Expiration = oidc.FromTime(tok.ExpiresAt)
	resp.IssuedAt = oidc.FromTime(tok.CreatedAt)
	resp.Issuer = st.s.Issuer(t)
	resp.Audience = oidc.Audience{tok.ClientID}
	resp.JWTID = tok.ID.String()
	if e.user != nil {
		info := new(oidc.UserInfo)
		e.user.fill(t, info, tok.Scopes)
		resp.SetUserInfo(info)
	}
	return nil
}

// GetPrivateClaimsFromRequest adds to access tokens what a resource server needs besides
// the registered claims: the tenant, and the session (sid) the token lives by.
func (st storage) GetPrivateClaimsFromRequest(ctx context.Context, req op.TokenRequest, _ []string) (map[string]any, error) {
	t, err := tenantFrom(ctx)
	if err != nil {
		return nil, err
	}
	claims := map[string]any{"tenant": t.Slug}
	switch r := req.(type) {
	case *authRequest:
		if r.sessionID != nil {
			claims["sid"] = r.sessionID.String()
		}
	case *refreshRequest:
		if r.sessionID != nil {
			claims["sid"] = r.sessionID.String()
		}
	}
	return claims, nil
}

func (st storage) GetPrivateClaimsFromScopes(ctx context.Context, _, _ string, _ []string) (map[string]any, error) {
	return nil, nil
}

// JWT profile grants (RFC 7523) are not offered.
func (st storage) GetKeyByIDAndClientID(context.Context, string, string) (*jose.JSONWebKey, error) {
	return nil, errors.New("oidc: JWT profile grants are not supported")
}

func (st storage) ValidateJWTProfileScopes(context.Context, string, []string) ([]string, error) {
	return nil, errors.New("oidc: JWT profile grants are not supported")
}

func (st storage) Health(ctx context.Context) error { return st.s.store.Ping(ctx) }
