package sso

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/google/uuid"
	"golang.org/x/oauth2"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/outbound"
	"github.com/gatehouse-id/gatehouse/internal/redirect"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/token"
)

// The OIDC sign-in: the authorization code flow with PKCE (S256), a state and a nonce,
// both stored server-side hashed in sso_oidc_requests, bound to the browser, single use,
// expiring; the ID token verified by go-oidc against this connection's issuer, client ID
// and published keys; userinfo merged; then the same user resolution, session and trace
// as a SAML response (acs_user.go, acs_session.go).

// oidcMaterial is what an OIDC connection's flows need, built once per connection version.
type oidcMaterial struct {
	updated    time.Time
	conn       sqlcgen.SSOConnection
	disc       discovery
	provider   *oidc.Provider
	oauth      oauth2.Config
	mapping    AttributeMapping
	roles      map[string]string
	mappingErr error
}

func (s *Service) forgetOIDC(id uuid.UUID) { s.oidcMat.Delete(id) }

// loadOIDC opens an OIDC connection: its stored discovery, its sealed client secret. The
// provider's key set is fetched (and re-fetched on an unknown key id) through the
// outbound client.
func (s *Service) loadOIDC(t tenant.Tenant, c sqlcgen.SSOConnection) (*oidcMaterial, error) {
	if v, ok := s.oidcMat.Load(c.ID); ok {
		if m := v.(*oidcMaterial); m.updated.Equal(c.UpdatedAt) {
			return m, nil
		}
	}
	var d discovery
	if err := json.Unmarshal(c.OIDCDiscovery, &d); err != nil {
		return nil, fmt.Errorf("stored discovery of %s: %w", c.Slug, err)
	}
	if c.OIDCSecretKeyID == nil {
		return nil, fmt.Errorf("oidc connection %s has no client secret", c.Slug)
	}
	secret, err := s.box.Open(*c.OIDCSecretKeyID, c.OIDCSecretSealed, secretAAD(t.ID, c.ID))
	if err != nil {
		return nil, fmt.Errorf("open client secret of %s: %w", c.Slug, err)
	}
	// The context only carries the HTTP client: the key set keeps it for later fetches.
	pctx := oidc.ClientContext(context.Background(), s.out.HTTPClient())
	p := d.ProviderConfig.NewProvider(pctx)
	m := &oidcMaterial{updated: c.UpdatedAt, conn: c, disc: d, provider: p,
		oauth: oauth2.Config{ClientID: deref(c.OIDCClientID), ClientSecret: string(secret), Endpoint: p.Endpoint(),
			RedirectURL: s.redirectURI(t, c.Slug), Scopes: requestedScopes(c.OIDCScopes)}}
	m.mapping, m.roles, m.mappingErr = parseMappings(c.AttributeMapping, c.RoleMapping)
	s.oidcMat.Store(c.ID, m)
	return m, nil
}

// connBySlug is a connection of either protocol.
func (s *Service) connBySlug(ctx context.Context, t tenant.Tenant, slug string) (sqlcgen.SSOConnection, error) {
	if !slugRe.MatchString(slug) {
		return sqlcgen.SSOConnection{}, ErrNotFound
	}
	var c sqlcgen.SSOConnection
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		var err error
		c, err = q.GetSSOConnectionBySlug(ctx, slug)
		if errors.Is(err, store.ErrNotFound) {
			return ErrNotFound
		}
		return err
	}, store.ReadOnly(), store.Idempotent())
	return c, err
}

func verifierAAD(tenantID, connID uuid.UUID, stateHash []byte) []byte {
	return []byte("sso-oidc-pkce|" + tenantID.String() + "|" + connID.String() + "|" + hex.EncodeToString(stateHash))
}

// startOIDC makes the authorization request: state, nonce and PKCE verifier are fresh
// random values; the state and nonce are stored hashed, the verifier sealed, bound to the
// browser. Re-authentication asks for prompt=login and max_age=0.
func (s *Service) startOIDC(ctx context.Context, t tenant.Tenant, c sqlcgen.SSOConnection, in StartInput) (Start, error) {
	if !c.Enabled && in.Purpose != PurposeTest {
		return Start{}, ErrDisabled
	}
	m, err := s.loadOIDC(t, c)
	if err != nil {
		return Start{}, err
	}
	returnTo := redirect.LocalOr(in.ReturnTo, redirect.LocalOr(c.DefaultRedirect, "/"))
	state, stateHash := token.New()
	nonce, nonceHash := token.New()
	verifier := oauth2.GenerateVerifier()
	keyID, sealed, err := s.box.Seal([]byte(verifier), verifierAAD(t.ID, c.ID, stateHash))
	if err != nil {
		return Start{}, fmt.Errorf("seal pkce verifier: %w", err)
	}
	browser := in.Browser
	if _, err := token.Parse(browser); err != nil {
		browser, _ = token.New()
	}
	bh := sha256.Sum256([]byte(browser))
	err = s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		return q.InsertOIDCRequest(ctx, sqlcgen.InsertOIDCRequestParams{ConnectionID: c.ID, StateHash: stateHash, BrowserHash: bh[:],
			NonceHash: nonceHash, VerifierKeyID: keyID, VerifierSealed: sealed, Purpose: in.Purpose, ReturnTo: returnTo,
			SessionID: in.SessionID, TTLSeconds: int32(s.cfg.RequestTTL.Seconds())})
	})
	if err != nil {
		return Start{}, err
	}
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)}
	if in.Purpose == PurposeReauth {
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "login"), oauth2.SetAuthURLParam("max_age", "0"))
	}
	if in.LoginHint != "" && len(in.LoginHint) <= 320 {
		opts = append(opts, oauth2.SetAuthURLParam("login_hint", in.LoginHint))
	}
	if c.OIDCHostedDomain != nil {
		opts = append(opts, oauth2.SetAuthURLParam("hd", *c.OIDCHostedDomain))
	}
	return Start{RedirectURL: m.oauth.AuthCodeURL(state, opts...), Browser: browser}, nil
}

// CallbackInput is the IdP's answer at /sso/oidc/{connection}/callback.
type CallbackInput struct {
	Slug             string
	State            string
	Code             string
	Error            string // the IdP's error parameter, if any
	ErrorDescription string
	Browser          string // the BrowserCookie value, if the browser sent it
	Meta             session.Meta
	Who              audit.Who
}

// Callback validates the IdP's answer and signs the user in (or steps the session up, or
// reports a test). Every attempt is recorded; a refusal is a *Failure.
func (s *Service) Callback(ctx context.Context, t tenant.Tenant, in CallbackInput) (ACSResult, error) {
	tr := &trace{mode: PurposeLogin, report: Report{Attributes: map[string][]string{}}}
	c, req, err := s.openOIDC(ctx, t, in.Slug, in.State)
	if err != nil {
		return ACSResult{}, err
	}
	tr.conn = &c
	res, reason, err := s.callback(ctx, t, c, req, in, tr)
	if err != nil && reason == "" {
		return ACSResult{}, err
	}
	if reason != "" {
		tr.report.Reason = reason
		ref := s.recordFailure(ctx, t, tr, reason, err, in.Who)
		s.count(ctx, "failure", reason, tr.mode)
		return ACSResult{Purpose: tr.mode, Reference: ref, Report: &tr.report}, &Failure{Reason: reason, Reference: ref, Detail: errDetail(err)}
	}
	s.count(ctx, "success", "ok", tr.mode)
	return res, nil
}

// openOIDC finds the OIDC connection and consumes the pending request the state names,
// in one transaction (single use: consumed whether or not the answer then validates).
func (s *Service) openOIDC(ctx context.Context, t tenant.Tenant, slug, state string) (sqlcgen.SSOConnection, *sqlcgen.SSOOIDCRequest, error) {
	var c sqlcgen.SSOConnection
	var req *sqlcgen.SSOOIDCRequest
	if !slugRe.MatchString(slug) {
		return c, nil, ErrNotFound
	}
	stateHash, perr := token.Parse(state)
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		c, req = sqlcgen.SSOConnection{}, nil // nothing of an attempt the store retries
		conn, err := q.GetSSOConnectionBySlug(ctx, slug)
		if errors.Is(err, store.ErrNotFound) || err == nil && conn.Protocol != ProtocolOIDC {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		var pending *sqlcgen.SSOOIDCRequest
		if perr == nil {
			r, err := q.ConsumeOIDCRequest(ctx, sqlcgen.ConsumeOIDCRequestParams{StateHash: stateHash, ConnectionID: conn.ID})
			switch {
			case err == nil:
				pending = &r
			case !errors.Is(err, store.ErrNotFound):
				return err
			}
		}
		c, req = conn, pending
		return nil
	})
	return c, req, err
}

// stateFailure names why a state matches no usable request.
func (s *Service) stateFailure(ctx context.Context, t tenant.Tenant, c sqlcgen.SSOConnection, state string) (string, error) {
	h, err := token.Parse(state)
	if err != nil {
		return "state_mismatch", nil
	}
	var r sqlcgen.SSOOIDCRequest
	err = s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		var err error
		r, err = q.GetOIDCRequestByState(ctx, h)
		return err
	}, store.ReadOnly(), store.Idempotent())
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "state_mismatch", nil
	case err != nil:
		return "", fmt.Errorf("look up the request of a state: %w", err)
	case r.ConnectionID != c.ID:
		return "request_for_other_connection", nil
	case r.ConsumedAt != nil:
		return "request_already_used", nil
	}
	return "request_expired", nil
}

// idToken is what Gatehouse reads of a verified ID token besides go-oidc's fields.
type idTokenClaims struct {
	AuthTime      *json.Number `json:"auth_time"`
	HostedDomain  string       `json:"hd"`
	TenantID      string       `json:"tid"`
	Email         string       `json:"email"`
	EmailVerified any          `json:"email_verified"`
}

// callback runs the checks in order, recording each in the trace, then the sign-in
// transaction. A refusal has a reason; an error without one is infrastructure.
func (s *Service) callback(ctx context.Context, t tenant.Tenant, c sqlcgen.SSOConnection, req *sqlcgen.SSOOIDCRequest, in CallbackInput, tr *trace) (ACSResult, string, error) {
	tr.report.Issuer = deref(c.OIDCIssuer)
	if req == nil {
		reason, err := s.stateFailure(ctx, t, c, in.State)
		if err != nil {
			return ACSResult{}, "", err
		}
		err = errors.New("the state names no pending request of this connection (unknown, used or expired)")
		tr.step("request", err, "")
		return ACSResult{}, reason, err
	}
	bh := sha256.Sum256([]byte(in.Browser))
	if in.Browser == "" || subtle.ConstantTimeCompare(bh[:], req.BrowserHash) != 1 {
		err := errors.New("the answer arrived in a different browser than the one that started the login")
		tr.step("request", err, "")
		return ACSResult{}, "browser_mismatch", err
	}
	tr.mode = req.Purpose
	tr.step("request", nil, "answers request "+req.ID.String())
	if !c.Enabled && tr.mode != PurposeTest {
		tr.step("connection", ErrDisabled, "connection is disabled")
		return ACSResult{}, "connection_disabled", ErrDisabled
	}
	if in.Error != "" {
		err := fmt.Errorf("the IdP answered %s: %s", clipMsg(in.Error), clipMsg(in.ErrorDescription))
		tr.step("idp_answer", err, "")
		return ACSResult{}, "idp_error", err
	}
	m, err := s.loadOIDC(t, c)
	if err != nil {
		return ACSResult{}, "", err
	}
	verifier, err := s.box.Open(req.VerifierKeyID, req.VerifierSealed, verifierAAD(t.ID, c.ID, req.StateHash))
	if err != nil {
		return ACSResult{}, "", fmt.Errorf("open pkce verifier: %w", err)
	}
	hctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	hctx = oidc.ClientContext(hctx, s.out.HTTPClient())
	if in.Code == "" || len(in.Code) > 4096 {
		err := errors.New("the answer has no authorization code")
		tr.step("token", err, "")
		return ACSResult{}, "code_missing", err
	}
	tok, err := m.oauth.Exchange(hctx, in.Code, oauth2.VerifierOption(string(verifier)))
	if err != nil {
		cause := errors.New("the token endpoint refused the code: " + tokenError(err))
		tr.step("token", cause, "")
		return ACSResult{}, "token_exchange_failed", cause
	}
	tr.step("token", nil, "code exchanged with PKCE")
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		err := errors.New("the token response has no id_token")
		tr.step("id_token", err, "")
		return ACSResult{}, "id_token_missing", err
	}
	algs := m.disc.Algorithms
	if len(algs) == 0 {
		algs = []string{oidc.RS256}
	}
	v := m.provider.VerifierContext(hctx, &oidc.Config{ClientID: m.oauth.ClientID, SupportedSigningAlgs: withoutNone(algs), Now: s.now})
	idt, err := v.Verify(hctx, raw)
	if err != nil {
		reason := verifyReason(err)
		cause := errors.New(clipMsg(err.Error()))
		tr.step("id_token", cause, "")
		return ACSResult{}, reason, cause
	}
	tr.step("id_token", nil, "signature, issuer, audience, expiry")
	if h := sha256.Sum256([]byte(idt.Nonce)); idt.Nonce == "" || subtle.ConstantTimeCompare(h[:], req.NonceHash) != 1 {
		err := errors.New("the ID token's nonce is not the one of this request")
		tr.step("nonce", err, "")
		return ACSResult{}, "nonce_mismatch", err
	}
	tr.step("nonce", nil, "")
	var cl idTokenClaims
	all := map[string]any{}
	if err := idt.Claims(&cl); err != nil {
		tr.step("claims", err, "")
		return ACSResult{}, "malformed_response", err
	}
	_ = idt.Claims(&all)
	tr.report.NameID, tr.report.NameIDFormat = idt.Subject, "sub"
	if idt.Subject == "" || len(idt.Subject) > maxNameID {
		err := errors.New("the ID token has no usable sub")
		tr.step("claims", err, "")
		return ACSResult{}, "name_id_missing", err
	}
	if reason, err := idpChecks(c, cl); reason != "" {
		tr.step("idp_checks", err, "")
		return ACSResult{}, reason, err
	}
	tr.step("idp_checks", nil, idpChecksDetail(c))
	if m.disc.UserInfoURL != "" {
		ui, err := m.provider.UserInfo(hctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			cause := errors.New("userinfo: " + clipMsg(outbound.Reason(err)))
			tr.step("userinfo", cause, "")
			return ACSResult{}, "userinfo_failed", cause
		}
		if ui.Subject != idt.Subject {
			err := errors.New("userinfo is about another subject than the ID token")
			tr.step("userinfo", err, "")
			return ACSResult{}, "userinfo_subject_mismatch", err
		}
		extra := map[string]any{}
		if err := ui.Claims(&extra); err == nil {
			for k, val := range extra {
				if _, ok := all[k]; !ok { // the signed ID token wins
					all[k] = val
				}
			}
		}
		tr.step("userinfo", nil, "merged")
	}
	fillClaims(&tr.report, all)
	if cl.AuthTime != nil {
		if n, err := cl.AuthTime.Int64(); err == nil {
			at := time.Unix(n, 0).UTC()
			tr.report.AuthnInstant = &at
		}
	}
	if m.mappingErr != nil {
		tr.report.Email = ""
		tr.step("mapping", m.mappingErr, "")
		return ACSResult{}, "corrupt_mapping", m.mappingErr
	}
	tr.report.Email = attr(tr.report.Attributes, m.mapping.Email, "email")
	ev := emailVerified(all["email_verified"])
	tr.report.EmailVerified = &ev
	authnAt := s.now()
	if tr.report.AuthnInstant != nil {
		authnAt = *tr.report.AuthnInstant
	}
	if req.Purpose == PurposeReauth {
		if reason, err := s.checkFreshOIDC(ctx, t, c, req, idt.Subject, tr.report.AuthnInstant); reason != "" || err != nil {
			if reason != "" {
				tr.step("freshness", err, "")
			}
			return ACSResult{}, reason, err
		}
		tr.step("freshness", nil, "same subject, authenticated after the request")
	}
	if req.Purpose == PurposeTest {
		tr.step("test_mode", nil, "no session created")
		ref := s.recordSuccess(ctx, t, tr, in.Who)
		return ACSResult{Purpose: PurposeTest, Reference: ref, Report: &tr.report, ReturnTo: req.ReturnTo}, "", nil
	}
	idHash := sha256.Sum256([]byte(raw))
	a := accepted{msgIDs: []string{"oidc:" + hex.EncodeToString(idHash[:])}, nameID: idt.Subject, authnAt: authnAt, replayUntil: idt.Expiry}
	sreq := &sqlcgen.SAMLRequest{ID: req.ID.String(), ConnectionID: c.ID, Purpose: req.Purpose, ReturnTo: req.ReturnTo, SessionID: req.SessionID, CreatedAt: req.CreatedAt}
	sm := &material{updated: m.updated, conn: c, mapping: m.mapping, roles: m.roles}
	out, err := s.signIn(ctx, t, c, sm, sreq, ACSInput{Slug: c.Slug, Browser: in.Browser, Meta: in.Meta, Who: in.Who}, tr, a)
	var r *refusal
	if errors.As(err, &r) {
		name := "user"
		if r.reason == "replayed" {
			name = "replay"
		}
		tr.step(name, r.err, "")
		return ACSResult{}, r.reason, r.err
	}
	if err != nil {
		return ACSResult{}, "", err
	}
	tr.report = out.report
	s.sessions.Invalidate(out.evicted)
	if out.provisioned {
		s.cfg.RolesChanged(t.ID)
	}
	if out.oldHash != nil {
		s.sessions.Invalidate([][]byte{out.oldHash})
	}
	res := out.res
	res.Report = &tr.report
	return res, "", nil
}

// checkFreshOIDC accepts a re-authentication only for the subject of the session being
// stepped up, at this connection, authenticated at the IdP after the request was made.
func (s *Service) checkFreshOIDC(ctx context.Context, t tenant.Tenant, c sqlcgen.SSOConnection, req *sqlcgen.SSOOIDCRequest, sub string, authAt *time.Time) (string, error) {
	if req.SessionID == nil {
		return "reauth_user_mismatch", errors.New("the re-authentication names no session")
	}
	var sess sqlcgen.Session
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		var err error
		sess, err = q.GetSessionByID(ctx, *req.SessionID)
		return err
	}, store.ReadOnly(), store.Idempotent())
	if errors.Is(err, store.ErrNotFound) {
		return "reauth_user_mismatch", errors.New("the session to step up is gone")
	}
	if err != nil {
		return "", err
	}
	if sess.SSOConnectionID == nil || *sess.SSOConnectionID != c.ID || deref(sess.SAMLNameID) != sub {
		return "reauth_user_mismatch", errors.New("the IdP authenticated someone other than the signed-in user")
	}
	if authAt == nil {
		return "not_fresh", errors.New("the ID token has no auth_time")
	}
	if authAt.Before(req.CreatedAt.Add(-s.cfg.Skew)) {
		return "not_fresh", fmt.Errorf("the IdP's authentication (%s) is older than the request", authAt.Format(time.RFC3339))
	}
	return "", nil
}
