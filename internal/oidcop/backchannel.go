package oidcop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/gatehouse-id/gatehouse/internal/outbound"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
)

// Back-channel logout (OpenID Connect Back-Channel Logout 1.0; docs/apps.md "Sign-out").
// When a Gatehouse session ends, SessionEnds revokes the tokens issued under it and, in
// the same transaction, enqueues one delivery job per app the session signed in to that
// has a backchannel_logout_uri. The worker signs a fresh logout_token at each attempt (it
// lives logoutTokenTTL) and POSTs it through the outbound client; anything but a 2xx is
// retried with the job queue's backoff.
const (
	// BackchannelQueue is the River queue of back-channel logout deliveries.
	BackchannelQueue = "oidc"
	// BackchannelEvent is the logout_token's only event.
	BackchannelEvent = "http://schemas.openid.net/event/backchannel-logout"

	backchannelAttempts = 10
	backchannelTimeout  = 10 * time.Second
	logoutTokenTTL      = 2 * time.Minute
	logoutTokenType     = "logout+jwt"
)

// BackchannelArgs is one delivery: tell an app that a session ended. It carries ids only;
// the app's client_id and URI are read at delivery (an app deleted or without a URI since
// gets nothing). sub and sid stay valid after the session and user rows are gone.
type BackchannelArgs struct {
	TenantID  uuid.UUID `json:"tenant_id"`
	SessionID uuid.UUID `json:"session_id"`
	UserID    uuid.UUID `json:"user_id"`
	AppID     uuid.UUID `json:"app_id"`
}

// Kind names the job.
func (BackchannelArgs) Kind() string { return "oidc.backchannel_logout" }

// InsertOpts puts deliveries on their own queue.
func (BackchannelArgs) InsertOpts() river.InsertOpts {
	return river.InsertOpts{Queue: BackchannelQueue, MaxAttempts: backchannelAttempts}
}

// Inserter is the part of the River client SessionEnds needs (an insert-only client).
type Inserter interface {
	InsertManyTx(ctx context.Context, tx pgx.Tx, params []river.InsertManyParams) ([]*rivertype.JobInsertResult, error)
}

// SessionEnds is the session service's Ender: what ending a Gatehouse session means to the
// OpenID Provider.
type SessionEnds struct{ ins Inserter }

var _ session.Ender = (*SessionEnds)(nil)

// NewSessionEnds returns the hook. Errors: no inserter.
func NewSessionEnds(ins Inserter) (*SessionEnds, error) {
	if ins == nil {
		return nil, errors.New("oidcop: a job inserter is required")
	}
	return &SessionEnds{ins: ins}, nil
}

// SessionsEnded runs inside the transaction that ended the sessions: their tokens are
// revoked and a back-channel logout job is enqueued per (session, app with a URI); both
// commit with the revocation or neither does.
func (e *SessionEnds) SessionsEnded(ctx context.Context, tx pgx.Tx, q *sqlcgen.Queries, ids []uuid.UUID) error {
	// Ids go as text: a uuid[] parameter does not encode in pgx's exec mode (PgBouncer).
	sids := make([]string, len(ids))
	for i, id := range ids {
		sids[i] = id.String()
	}
	targets, err := q.ListBackchannelTargets(ctx, sids)
	if err != nil {
		return fmt.Errorf("list back-channel logout targets: %w", err)
	}
	if _, err := q.RevokeTokensOfSessions(ctx, sids); err != nil {
		return fmt.Errorf("revoke tokens of ended sessions: %w", err)
	}
	// Every node's token cache (this one's included) drops the sessions' tokens when the
	// revocation commits.
	payloads := make([]string, len(sids))
	for i, sid := range sids {
		payloads[i] = notifySession + sid
	}
	if err := notifyRevoked(ctx, q, payloads...); err != nil {
		return fmt.Errorf("notify the token caches: %w", err)
	}
	if len(targets) == 0 {
		return nil
	}
	jobs := make([]river.InsertManyParams, 0, len(targets))
	for _, t := range targets {
		jobs = append(jobs, river.InsertManyParams{Args: BackchannelArgs{TenantID: t.TenantID, SessionID: t.SessionID, UserID: t.UserID, AppID: t.AppID}})
	}
	if _, err := e.ins.InsertManyTx(ctx, tx, jobs); err != nil {
		return fmt.Errorf("enqueue back-channel logout: %w", err)
	}
	return nil
}

// BackchannelWorker delivers logout tokens.
type BackchannelWorker struct {
	river.WorkerDefaults[BackchannelArgs]
	s      *Service
	client *http.Client
}

// NewBackchannelWorker returns the delivery worker. Redirects are not followed (a logout
// token goes to the registered URI only), and each request is bounded by 10 s.
func (s *Service) NewBackchannelWorker() *BackchannelWorker {
	c := s.out.HTTPClient()
	c.Timeout = backchannelTimeout
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &BackchannelWorker{s: s, client: c}
}

// Timeout bounds one attempt (the request's own bound, plus signing).
func (w *BackchannelWorker) Timeout(*river.Job[BackchannelArgs]) time.Duration {
	return backchannelTimeout + 5*time.Second
}

// Work delivers one logout token: done on a 2xx answer, an error (retried) otherwise.
func (w *BackchannelWorker) Work(ctx context.Context, job *river.Job[BackchannelArgs]) error {
	a := job.Args
	var slug, clientID, uri string
	err := w.s.store.InTenant(ctx, a.TenantID, func(q *sqlcgen.Queries) error {
		t, err := q.GetTenantByID(ctx, a.TenantID)
		if err != nil {
			return err
		}
		app, err := q.GetBackchannelApp(ctx, a.AppID)
		if err != nil {
			return err
		}
		slug, clientID = t.Slug, app.ClientID
		if app.BackchannelLogoutURI != nil {
			uri = *app.BackchannelLogoutURI
		}
		return nil
	}, store.ReadOnly(), store.Idempotent())
	if errors.Is(err, store.ErrNotFound) {
		return nil // the tenant or the app is gone: nobody to tell
	}
	if err != nil {
		return fmt.Errorf("back-channel logout: %w", err)
	}
	if uri == "" {
		return nil // the URI was removed since the session ended
	}
	log := w.s.logger.With("tenant", slug, "app_id", a.AppID, "session_id", a.SessionID, "attempt", job.Attempt)
	u, err := w.s.out.CheckURL(uri, "back-channel logout URIs")
	if err != nil {
		log.Warn("back-channel logout not sent", "reason", outbound.Reason(err))
		return river.JobCancel(fmt.Errorf("back-channel logout URI refused: %s", outbound.Reason(err)))
	}
	tok, err := w.s.logoutToken(ctx, a.TenantID, w.s.urls.Link(slug, "", nil), clientID, a.UserID.String(), a.SessionID.String())
	if err != nil {
		return fmt.Errorf("back-channel logout: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, backchannelTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(url.Values{"logout_token": {tok}}.Encode()))
	if err != nil {
		return river.JobCancel(fmt.Errorf("back-channel logout request: %w", err))
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Cache-Control", "no-store")
	resp, err := w.client.Do(req)
	if err != nil {
		log.Warn("back-channel logout failed", "reason", outbound.Reason(err))
		return fmt.Errorf("back-channel logout: %s", outbound.Reason(err))
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		log.Warn("back-channel logout refused by the app", "status", resp.StatusCode)
		return fmt.Errorf("back-channel logout: the app answered %d", resp.StatusCode)
	}
	log.LogAttrs(ctx, slog.LevelInfo, "back-channel logout delivered")
	return nil
}

// logoutToken signs a logout_token (Back-Channel Logout 1.0 §2.4) with the tenant's
// current signing key: typ logout+jwt, iss, aud, iat, exp (2 minutes), jti, sub, sid and
// the back-channel logout event; never a nonce.
func (s *Service) logoutToken(ctx context.Context, tenantID uuid.UUID, issuer, clientID, sub, sid string) (string, error) {
	tk, err := s.keys.keys(ctx, tenantID)
	if err != nil {
		return "", err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: tk.signer.alg, Key: jose.JSONWebKey{Key: tk.signer.private, KeyID: tk.signer.kid}},
		(&jose.SignerOptions{}).WithType(logoutTokenType))
	if err != nil {
		return "", fmt.Errorf("logout token signer: %w", err)
	}
	now := s.now()
	payload, err := json.Marshal(map[string]any{
		"iss": issuer, "aud": clientID, "iat": now.Unix(), "exp": now.Add(logoutTokenTTL).Unix(), "jti": uuid.NewString(),
		"sub": sub, "sid": sid, "events": map[string]any{BackchannelEvent: map[string]any{}},
	})
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("sign logout token: %w", err)
	}
	return jws.CompactSerialize()
}
