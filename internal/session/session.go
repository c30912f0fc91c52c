// Package session owns server-side sessions: creation at login, authentication of the
// cookie or bearer token on every request, and revocation. Only the SHA-256 of a token is
// stored; expiry (idle and absolute) is computed by the database clock.
package session

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/token"
)

// CookieName is the session cookie: the __Host- prefix pins it to the tenant's own host,
// Secure and Path=/ (each tenant subdomain has its own session).
const CookieName = "__Host-gatehouse"

// Session is a signed-in device.
type Session struct {
	ID           uuid.UUID  `json:"id"`
	UserID       uuid.UUID  `json:"-"`
	CreatedAt    time.Time  `json:"created_at"`
	LastActiveAt time.Time  `json:"last_active_at"`
	ExpiresAt    time.Time  `json:"expires_at"`
	AuthTime     time.Time  `json:"auth_time"`
	Methods      []string   `json:"methods"`
	AAL          string     `json:"aal"`
	IP           netip.Addr `json:"-"`
	UserAgent    string     `json:"-"`
}

// Principal is who a request is: the session and the essentials of its user.
type Principal struct {
	Session         Session
	TenantID        uuid.UUID
	UserID          uuid.UUID
	Email           string
	Name            string
	Status          string
	EmailVerifiedAt *time.Time
	UserCreatedAt   time.Time
}

// Meta describes the client creating a session.
type Meta struct {
	IP        netip.Addr
	UserAgent string
}

// Issued is a new session with its token, which exists nowhere else.
type Issued struct {
	Session Session
	Token   string
}

// ErrUnauthenticated answers a missing, unknown, expired or revoked token alike.
var ErrUnauthenticated = apperr.New(apperr.Unauthenticated, "unauthenticated", "Sign in to continue.")

// Service authenticates and revokes sessions.
type Service struct {
	store *store.Store
	now   func() time.Time
}

// NewService returns the session service.
func NewService(st *store.Store, now func() time.Time) *Service { return &Service{store: st, now: now} }

// Create starts a session for userID inside the caller's transaction, with the tenant's
// lifetimes.
func Create(ctx context.Context, q *sqlcgen.Queries, userID uuid.UUID, p tenant.SessionPolicy, meta Meta, methods []string) (Issued, error) {
	tok, hash := token.New()
	ua := meta.UserAgent
	if len(ua) > 512 {
		ua = ua[:512]
	}
	var ip *netip.Addr
	if meta.IP.IsValid() {
		ip = &meta.IP
	}
	row, err := q.InsertSession(ctx, sqlcgen.InsertSessionParams{
		UserID: userID, TokenHash: hash, IdleSeconds: int32(p.IdleTimeoutSeconds), AbsoluteSeconds: int32(p.AbsoluteTimeoutSeconds),
		Ip: ip, UserAgent: ua, Methods: methods, Aal: 1,
	})
	if err != nil {
		return Issued{}, fmt.Errorf("insert session: %w", err)
	}
	return Issued{Session: fromRow(row.ID, row.UserID, row.CreatedAt, row.LastActiveAt, row.ExpiresAt, row.AuthTime, row.Methods, row.Aal, row.Ip, row.UserAgent), Token: tok}, nil
}

func fromRow(id, userID uuid.UUID, created, last, expires, authTime time.Time, methods []string, aal int16, ip *netip.Addr, ua string) Session {
	s := Session{ID: id, UserID: userID, CreatedAt: created, LastActiveAt: last, ExpiresAt: expires, AuthTime: authTime,
		Methods: methods, AAL: fmt.Sprintf("aal%d", aal), UserAgent: ua}
	if ip != nil {
		s.IP = *ip
	}
	if s.Methods == nil {
		s.Methods = []string{}
	}
	return s
}

// Authenticate returns the principal of an active session token of the tenant.
// Errors: unauthenticated.
func (s *Service) Authenticate(ctx context.Context, tenantID uuid.UUID, tok string) (Principal, error) {
	hash, err := token.Parse(tok)
	if err != nil {
		return Principal{}, ErrUnauthenticated
	}
	var p Principal
	err = s.store.InTenant(ctx, tenantID, func(q *sqlcgen.Queries) error {
		row, err := q.GetActiveSessionByHash(ctx, hash)
		if store.IsNotFound(err) {
			return ErrUnauthenticated
		}
		if err != nil {
			return fmt.Errorf("look up session: %w", err)
		}
		if row.UserStatus != "active" {
			return ErrUnauthenticated
		}
		if err := q.TouchSession(ctx, row.ID); err != nil {
			return fmt.Errorf("touch session: %w", err)
		}
		p = Principal{
			Session:  fromRow(row.ID, row.UserID, row.CreatedAt, row.LastActiveAt, row.ExpiresAt, row.AuthTime, row.Methods, row.Aal, row.Ip, row.UserAgent),
			TenantID: row.TenantID, UserID: row.UserID, Email: row.Email, Name: row.Name, Status: row.UserStatus,
			EmailVerifiedAt: row.EmailVerifiedAt, UserCreatedAt: row.UserCreatedAt,
		}
		return nil
	}, store.Idempotent())
	return p, err
}

// Revoke ends one session.
func (s *Service) Revoke(ctx context.Context, tenantID, sessionID uuid.UUID, reason string) error {
	return s.store.InTenant(ctx, tenantID, func(q *sqlcgen.Queries) error {
		_, err := q.RevokeSession(ctx, sqlcgen.RevokeSessionParams{ID: sessionID, Reason: &reason})
		return err
	}, store.Idempotent())
}

// RevokeAll ends every session of userID inside the caller's transaction.
func RevokeAll(ctx context.Context, q *sqlcgen.Queries, userID uuid.UUID, reason string) (int64, error) {
	n, err := q.RevokeUserSessions(ctx, sqlcgen.RevokeUserSessionsParams{UserID: userID, Reason: &reason})
	if err != nil {
		return 0, fmt.Errorf("revoke sessions: %w", err)
	}
	return n, nil
}
