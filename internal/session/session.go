// Package session owns server-side sessions: creation at login, authentication of the
// cookie or bearer token on every request (with an in-process cache whose entries every
// node drops when a session is revoked anywhere), listing and revocation. Only the SHA-256
// of a token is stored; expiry (idle and absolute) is computed by the database clock.
package session

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	useragent "github.com/medama-io/go-useragent"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/events"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/token"
)

// CookieName is the session cookie: the __Host- prefix pins it to the tenant's own host,
// Secure and Path=/ (each tenant subdomain has its own session).
const CookieName = "__Host-gatehouse"

// RevokedChannel carries the hex SHA-256 of every revoked session token.
const RevokedChannel = "gatehouse_session_revoked"

// Session is a signed-in device.
type Session struct {
	ID           uuid.UUID `json:"id"`
	UserID       uuid.UUID `json:"-"`
	CreatedAt    time.Time `json:"created_at"`
	LastActiveAt time.Time `json:"last_active_at"`
	ExpiresAt    time.Time `json:"expires_at"`
	AuthTime     time.Time `json:"auth_time"`
	Methods      []string  `json:"methods"`
	AAL          string    `json:"aal"`
	// Assurance is "phr" (phishing-resistant: a passkey) or the AAL.
	Assurance string     `json:"assurance"`
	IP        netip.Addr `json:"-"`
	UserAgent string     `json:"-"`
	Device    string     `json:"-"`
	Browser   string     `json:"-"`
	OS        string     `json:"-"`
	// SSO origin (nil/empty for other logins).
	SSOConnectionID *uuid.UUID `json:"sso_connection_id,omitempty"`
	NameID          string     `json:"-"`
	SessionIndex    string     `json:"-"`
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
	// NewDevice is true when the user signed in before, but never from this browser, OS
	// and device class.
	NewDevice bool
}

// ErrUnauthenticated answers a missing, unknown, expired or revoked token alike.
var ErrUnauthenticated = apperr.New(apperr.Unauthenticated, "unauthenticated", "Sign in to continue.")

// ErrNotFound answers a session id that is not one of the caller's own (never 403).
var ErrNotFound = apperr.New(apperr.NotFound, "not_found", "There is no such session.")

// Service authenticates, lists and revokes sessions.
type Service struct {
	store *store.Store
	now   func() time.Time
	cache *cache // nil: every check reads the database
	ender Ender
}

// Ender is told which sessions ended, inside the transaction that ended them, before it
// commits: every way a session ends (sign-out, revocation of one, the others or all,
// password change and reset, MFA reset, deletion, admin action, SAML single logout,
// eviction by a newer session) goes through Service.ended, the one place it fans out
// (the OpenID Provider revokes the sessions' tokens and enqueues back-channel logout).
// An error rolls the revocation back.
type Ender interface {
	SessionsEnded(ctx context.Context, tx pgx.Tx, q *sqlcgen.Queries, ids []uuid.UUID) error
}

// Config tunes the session check cache.
type Config struct {
	CacheSize int           // entries; 0 disables the cache
	CacheTTL  time.Duration // the longest an entry is trusted (and the touch interval)
}

// NewService returns the session service. With a listener and a cache size the checks are
// cached; the service registers for revocation broadcasts on the listener. ender is told
// of every session end. Errors: a missing store, clock or ender.
func NewService(st *store.Store, now func() time.Time, listener *store.Listener, cfg Config, ender Ender) (*Service, error) {
	if st == nil || now == nil || ender == nil {
		return nil, errors.New("session: store, clock and session-end hook are required")
	}
	s := &Service{store: st, now: now, ender: ender}
	if listener != nil && cfg.CacheSize > 0 && cfg.CacheTTL > 0 {
		s.cache = newCache(cfg.CacheSize, cfg.CacheTTL, listener.Healthy)
		listener.Handle(RevokedChannel, s.cache.invalidateHex, s.cache.clear)
	}
	return s, nil
}

// parser is immutable after construction, safe for concurrent use and costly to build
// (a trie of every known agent), so one serves the whole process.
var parser = useragent.NewParser()

// Describe parses a user agent into device class, browser and OS names.
func Describe(ua string) (device, browser, os string) {
	u := parser.Parse(ua)
	return clip(u.GetDevice()), clip(u.GetBrowser()), clip(u.GetOS())
}

func clip(s string) string {
	if len(s) > 64 {
		return s[:64]
	}
	return s
}

// Create starts a session for userID inside the caller's transaction, with the tenant's
// lifetimes, evicting the user's oldest sessions beyond max_per_user. It returns the
// hashes of evicted sessions' tokens in evicted, for Invalidate after commit.
func (s *Service) Create(ctx context.Context, tx pgx.Tx, q *sqlcgen.Queries, userID uuid.UUID, p tenant.SessionPolicy, meta Meta, methods []string, now time.Time) (Issued, [][]byte, error) {
	return s.CreateFrom(ctx, tx, q, userID, p, meta, Origin{Methods: methods, AuthTime: now})
}

// Origin is how a session was authenticated: the methods, when (auth_time), and for SAML
// the connection, NameID and the IdP's SessionIndex (for single logout).
type Origin struct {
	Methods      []string
	AuthTime     time.Time
	ConnectionID *uuid.UUID
	NameID       string
	SessionIndex string
}

// CreateFrom is Create with the full origin of the session.
func (s *Service) CreateFrom(ctx context.Context, tx pgx.Tx, q *sqlcgen.Queries, userID uuid.UUID, p tenant.SessionPolicy, meta Meta, o Origin) (Issued, [][]byte, error) {
	methods := o.Methods
	aal := int16(1)
	if len(methods) > 1 || slices.Contains(methods, MethodPasskey) {
		aal = 2 // a password and a second factor, or a user-verified passkey (multi-factor in itself)
	}
	tok, hash := token.New()
	ua := meta.UserAgent
	if len(ua) > 512 {
		ua = ua[:512]
	}
	ua = strings.ToValidUTF8(ua, "") // a text column refuses a cut character
	device, browser, osName := Describe(ua)
	var ip *netip.Addr
	if meta.IP.IsValid() {
		ip = &meta.IP
	}
	row, err := q.InsertSession(ctx, sqlcgen.InsertSessionParams{
		UserID: userID, TokenHash: hash, IdleSeconds: int32(p.IdleTimeoutSeconds), AbsoluteSeconds: int32(p.AbsoluteTimeoutSeconds),
		IP: ip, UserAgent: ua, Device: device, Browser: browser, Os: osName, Methods: methods, AAL: aal, AuthTime: o.AuthTime,
		SSOConnectionID: o.ConnectionID, SAMLSessionIndex: nonEmpty(o.SessionIndex), SAMLNameID: nonEmpty(o.NameID),
	})
	if err != nil {
		return Issued{}, nil, fmt.Errorf("insert session: %w", err)
	}
	if _, err := events.Emit(ctx, q, events.Event{Type: events.SessionCreated, User: userID,
		Data: events.Session{SessionID: row.ID, UserID: userID, Methods: methods, ConnectionID: o.ConnectionID}}); err != nil {
		return Issued{}, nil, err
	}
	rows, err := q.EvictOldestSessions(ctx, sqlcgen.EvictOldestSessionsParams{UserID: userID, Keep: int32(p.MaxPerUser)})
	if err != nil {
		return Issued{}, nil, fmt.Errorf("evict sessions: %w", err)
	}
	evicted, err := s.ended(ctx, tx, q, "evicted", ends(rows, func(r sqlcgen.EvictOldestSessionsRow) (uuid.UUID, uuid.UUID, []byte) {
		return r.ID, r.UserID, r.TokenHash
	}))
	if err != nil {
		return Issued{}, nil, err
	}
	fp := sha256.Sum256([]byte(device + "\x00" + browser + "\x00" + osName))
	seen, err := q.SeeDevice(ctx, sqlcgen.SeeDeviceParams{UserID: userID, Fingerprint: fp[:]})
	if err != nil {
		return Issued{}, nil, fmt.Errorf("record device: %w", err)
	}
	return Issued{Session: fromRow(row), Token: tok, NewDevice: seen.NewDevice && seen.HadDevices}, evicted, nil
}

func fromRow(r sqlcgen.Session) Session {
	s := Session{ID: r.ID, UserID: r.UserID, CreatedAt: r.CreatedAt, LastActiveAt: r.LastActiveAt, ExpiresAt: r.ExpiresAt,
		AuthTime: r.AuthTime, Methods: r.Methods, AAL: fmt.Sprintf("aal%d", r.AAL), UserAgent: r.UserAgent,
		Device: r.Device, Browser: r.Browser, OS: r.Os, SSOConnectionID: r.SSOConnectionID}
	if r.IP != nil {
		s.IP = *r.IP
	}
	if r.SAMLNameID != nil {
		s.NameID = *r.SAMLNameID
	}
	if r.SAMLSessionIndex != nil {
		s.SessionIndex = *r.SAMLSessionIndex
	}
	if s.Methods == nil {
		s.Methods = []string{}
	}
	s.Assurance = Assurance(s.Methods, s.AAL)
	return s
}

// MethodPasskey is the method of a passkey sign-in or step-up.
const MethodPasskey = "passkey"

// Assurance is "phr" for a session a passkey authenticated (phishing-resistant), else its
// AAL ("aal1", "aal2").
func Assurance(methods []string, aal string) string {
	if slices.Contains(methods, MethodPasskey) {
		return "phr"
	}
	return aal
}

// PhishingResistant reports whether the session was authenticated by a passkey.
func (s Session) PhishingResistant() bool { return slices.Contains(s.Methods, MethodPasskey) }

// Authenticate returns the principal of an active session token of the tenant: from the
// cache when the revocation listener is connected and the entry is fresh, else from the
// database (which also records activity, at most once a minute). Errors: unauthenticated.
func (s *Service) Authenticate(ctx context.Context, tenantID uuid.UUID, tok string) (Principal, error) {
	key, err := token.ParseKey(tok)
	if err != nil {
		return Principal{}, ErrUnauthenticated
	}
	var epoch uint64
	if s.cache != nil {
		var p Principal
		var ok bool
		p, ok, epoch = s.cache.get(key, tenantID, s.now())
		if ok {
			return p, nil
		}
	}
	return s.lookup(ctx, tenantID, key, epoch)
}

// lookup is Authenticate's cache miss: the session from the database, then cached. (A
// function of its own so that the hit path keeps its key on the stack.)
func (s *Service) lookup(ctx context.Context, tenantID uuid.UUID, key [32]byte, epoch uint64) (Principal, error) {
	hash := key[:]
	var p Principal
	var deadline time.Time
	err := s.store.InTenant(ctx, tenantID, func(q *sqlcgen.Queries) error {
		row, err := q.GetActiveSessionByHash(ctx, hash)
		if errors.Is(err, store.ErrNotFound) {
			return ErrUnauthenticated
		}
		if err != nil {
			return fmt.Errorf("look up session: %w", err)
		}
		if row.UserStatus != "active" {
			return ErrUnauthenticated
		}
		last := row.LastActiveAt
		if t, err := q.TouchSession(ctx, row.ID); err == nil {
			last = t
		} else if !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("touch session: %w", err)
		}
		sess := fromRow(sqlcgen.Session{ID: row.ID, UserID: row.UserID, CreatedAt: row.CreatedAt, LastActiveAt: last,
			ExpiresAt: row.ExpiresAt, AuthTime: row.AuthTime, Methods: row.Methods, AAL: row.AAL, IP: row.IP,
			UserAgent: row.UserAgent, Device: row.Device, Browser: row.Browser, Os: row.Os,
			SSOConnectionID: row.SSOConnectionID, SAMLNameID: row.SAMLNameID, SAMLSessionIndex: row.SAMLSessionIndex})
		p = Principal{Session: sess, TenantID: row.TenantID, UserID: row.UserID, Email: row.Email, Name: row.Name,
			Status: row.UserStatus, EmailVerifiedAt: row.EmailVerifiedAt, UserCreatedAt: row.UserCreatedAt}
		// The session's own deadline in database time, moved onto the local clock.
		idle := time.Duration(row.IdleTimeout.Microseconds)*time.Microsecond + time.Duration(row.IdleTimeout.Days)*24*time.Hour
		dbDeadline := earliest(row.ExpiresAt, last.Add(idle))
		deadline = s.now().Add(dbDeadline.Sub(row.DbNow))
		return nil
	}, store.Idempotent())
	if err != nil {
		return Principal{}, err
	}
	if s.cache != nil {
		s.cache.put(key, tenantID, p, deadline, epoch, s.now())
	}
	return p, nil
}

// CachedSessions is how many validated sessions this process holds (0 without a cache).
func (s *Service) CachedSessions() int {
	if s.cache == nil {
		return 0
	}
	return s.cache.size()
}

// Invalidate drops sessions from this process's cache; callers that revoke sessions
// inside their own transaction call it after commit (other processes learn it from the
// broadcast).
func (s *Service) Invalidate(hashes [][]byte) {
	if s.cache != nil {
		s.cache.invalidate(hashes)
	}
}

// InvalidateUser drops a user's sessions from this process's cache after a change to the
// user (other processes learn it from the users trigger's broadcast).
func (s *Service) InvalidateUser(userID uuid.UUID) {
	if s.cache != nil {
		s.cache.invalidateUser(userID)
	}
}

// View is a session as its owner sees it in the list.
type View struct {
	ID           uuid.UUID `json:"id"`
	Current      bool      `json:"current"`
	Device       string    `json:"device"`
	Browser      string    `json:"browser"`
	OS           string    `json:"os"`
	IP           string    `json:"ip"`
	CreatedAt    time.Time `json:"created_at"`
	LastActiveAt time.Time `json:"last_active_at"`
	AuthMethod   string    `json:"auth_method"`
}

// List returns the user's active sessions: the caller's own first (marked Current), then
// the others, most recently active first.
func (s *Service) List(ctx context.Context, p Principal) ([]View, error) {
	var out []View
	err := s.store.InTenant(ctx, p.TenantID, func(q *sqlcgen.Queries) error {
		rows, err := q.ListUserSessions(ctx, p.UserID)
		if err != nil {
			return fmt.Errorf("list sessions: %w", err)
		}
		out = make([]View, 0, len(rows))
		for _, r := range rows {
			v := View{ID: r.ID, Current: r.ID == p.Session.ID, Device: r.Device, Browser: r.Browser, OS: r.Os,
				CreatedAt: r.CreatedAt, LastActiveAt: r.LastActiveAt}
			if r.IP != nil {
				v.IP = r.IP.String()
			}
			if len(r.Methods) > 0 {
				v.AuthMethod = r.Methods[0]
			}
			out = append(out, v)
		}
		// last_active_at is only written every so often, so the caller's own session is
		// not always the most recent: it goes first by rule.
		slices.SortStableFunc(out, func(a, b View) int {
			switch {
			case a.Current == b.Current:
				return 0
			case a.Current:
				return -1
			}
			return 1
		})
		return nil
	}, store.ReadOnly(), store.Idempotent())
	return out, err
}

// Revoke ends one of the caller's sessions. Errors: not_found (also for another user's or
// tenant's session).
func (s *Service) Revoke(ctx context.Context, p Principal, id uuid.UUID, reason string) error {
	return s.revoke(ctx, p.TenantID, func(tx pgx.Tx, q *sqlcgen.Queries) ([][]byte, error) {
		rows, err := q.RevokeSession(ctx, sqlcgen.RevokeSessionParams{ID: id, UserID: p.UserID, Reason: &reason})
		if err == nil && len(rows) == 0 {
			return nil, ErrNotFound
		}
		if err != nil {
			return nil, err
		}
		hashes, err := s.ended(ctx, tx, q, reason, ends(rows, func(r sqlcgen.RevokeSessionRow) (uuid.UUID, uuid.UUID, []byte) { return r.ID, r.UserID, r.TokenHash }))
		if err != nil {
			return nil, err
		}
		return hashes, audit.Record(ctx, q, audit.By(ctx, p.UserID, p.Email), audit.Event{Action: audit.SessionRevoked,
			SubjectID: p.UserID, SubjectLabel: p.Email, Details: map[string]any{"session_id": id, "reason": reason}})
	})
}

// RevokeOthers ends every session of the caller but the current one and returns how many.
func (s *Service) RevokeOthers(ctx context.Context, p Principal) (int, error) {
	n := 0
	err := s.revoke(ctx, p.TenantID, func(tx pgx.Tx, q *sqlcgen.Queries) ([][]byte, error) {
		hashes, err := s.RevokeOthersTx(ctx, tx, q, p.UserID, p.Session.ID, "revoke_others")
		if err != nil {
			return nil, err
		}
		n = len(hashes)
		return hashes, audit.Record(ctx, q, audit.By(ctx, p.UserID, p.Email), audit.Event{Action: audit.SessionRevoked,
			SubjectID: p.UserID, SubjectLabel: p.Email, Details: map[string]any{"reason": "revoke_others", "count": n}})
	})
	return n, err
}

// RevokeAllOf ends every session of a user on behalf of actor (admin action, account
// deletion), recording who did it.
func (s *Service) RevokeAllOf(ctx context.Context, tenantID, userID uuid.UUID, reason string, actor audit.Who) (int, error) {
	n := 0
	err := s.revoke(ctx, tenantID, func(tx pgx.Tx, q *sqlcgen.Queries) ([][]byte, error) {
		hashes, err := s.RevokeAllTx(ctx, tx, q, userID, reason)
		if err != nil {
			return nil, err
		}
		n = len(hashes)
		return hashes, audit.Record(ctx, q, actor, audit.Event{Action: audit.SessionRevoked, SubjectID: userID,
			Details: map[string]any{"reason": reason, "count": n}})
	})
	return n, err
}

// revoke runs a revocation and drops the sessions from this process's cache both before
// the commit and after it, so no request that starts after the commit returns here can be
// served from the cache (a lookup racing the commit is not cached: the epoch moved).
func (s *Service) revoke(ctx context.Context, tenantID uuid.UUID, f func(tx pgx.Tx, q *sqlcgen.Queries) ([][]byte, error)) error {
	var hashes [][]byte
	err := s.store.InTenantTx(ctx, tenantID, func(tx pgx.Tx, q *sqlcgen.Queries) error {
		var err error
		hashes, err = f(tx, q)
		if err != nil {
			return err
		}
		s.Invalidate(hashes)
		return nil
	})
	s.Invalidate(hashes)
	return err
}

// RevokeAllTx ends every session of userID inside the caller's transaction and returns
// the token hashes (call Invalidate with them after commit).
func (s *Service) RevokeAllTx(ctx context.Context, tx pgx.Tx, q *sqlcgen.Queries, userID uuid.UUID, reason string) ([][]byte, error) {
	rows, err := q.RevokeUserSessions(ctx, sqlcgen.RevokeUserSessionsParams{UserID: userID, Reason: &reason})
	if err != nil {
		return nil, fmt.Errorf("revoke sessions: %w", err)
	}
	return s.ended(ctx, tx, q, reason, ends(rows, func(r sqlcgen.RevokeUserSessionsRow) (uuid.UUID, uuid.UUID, []byte) {
		return r.ID, r.UserID, r.TokenHash
	}))
}

// RevokeOthersTx ends every session of userID but keep inside the caller's transaction.
func (s *Service) RevokeOthersTx(ctx context.Context, tx pgx.Tx, q *sqlcgen.Queries, userID, keep uuid.UUID, reason string) ([][]byte, error) {
	rows, err := q.RevokeOtherSessions(ctx, sqlcgen.RevokeOtherSessionsParams{UserID: userID, KeepID: keep, Reason: &reason})
	if err != nil {
		return nil, fmt.Errorf("revoke sessions: %w", err)
	}
	return s.ended(ctx, tx, q, reason, ends(rows, func(r sqlcgen.RevokeOtherSessionsRow) (uuid.UUID, uuid.UUID, []byte) {
		return r.ID, r.UserID, r.TokenHash
	}))
}

// RevokeSAMLTx ends, inside the caller's transaction, the live sessions of a NameID at an
// SSO connection (of one SessionIndex when index is set): IdP-initiated single logout.
func (s *Service) RevokeSAMLTx(ctx context.Context, tx pgx.Tx, q *sqlcgen.Queries, connectionID uuid.UUID, nameID string, index *string) ([][]byte, error) {
	rows, err := q.RevokeSAMLSessions(ctx, sqlcgen.RevokeSAMLSessionsParams{ConnectionID: &connectionID, NameID: &nameID, SessionIndex: index})
	if err != nil {
		return nil, fmt.Errorf("revoke sessions: %w", err)
	}
	return s.ended(ctx, tx, q, "saml_logout", ends(rows, func(r sqlcgen.RevokeSAMLSessionsRow) (uuid.UUID, uuid.UUID, []byte) {
		return r.ID, r.UserID, r.TokenHash
	}))
}

// ended is where every session end fans out: the ender hears of the sessions in the
// transaction that ended them. It returns the token hashes, for Invalidate after commit.
// Each ended session is recorded as session.revoked with the reason.
func (s *Service) ended(ctx context.Context, tx pgx.Tx, q *sqlcgen.Queries, reason string, e sessionEnds) ([][]byte, error) {
	if len(e.ids) == 0 {
		return nil, nil
	}
	for i, id := range e.ids {
		if _, err := events.Emit(ctx, q, events.Event{Type: events.SessionRevoked, User: e.users[i],
			Data: events.SessionEnded{SessionID: id, UserID: e.users[i], Reason: reason}}); err != nil {
			return nil, err
		}
	}
	if err := s.ender.SessionsEnded(ctx, tx, q, e.ids); err != nil {
		return nil, fmt.Errorf("session end: %w", err)
	}
	return e.hashes, nil
}

// sessionEnds are the ids, users and token hashes of sessions a revocation query ended.
type sessionEnds struct {
	ids    []uuid.UUID
	users  []uuid.UUID
	hashes [][]byte
}

func ends[R any](rows []R, f func(R) (uuid.UUID, uuid.UUID, []byte)) sessionEnds {
	e := sessionEnds{ids: make([]uuid.UUID, 0, len(rows)), users: make([]uuid.UUID, 0, len(rows)), hashes: make([][]byte, 0, len(rows))}
	for _, r := range rows {
		id, u, h := f(r)
		e.ids = append(e.ids, id)
		e.users = append(e.users, u)
		e.hashes = append(e.hashes, h)
	}
	return e
}

func ptr[T any](v T) *T { return &v }

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	if len(s) > 512 {
		s = s[:512]
	}
	return &s
}

// StepUp records a successful re-authentication with method inside the caller's
// transaction: the session gets a new token (the old one stops working everywhere once the
// transaction commits), a fresh auth_time, and the assurance of that method. It returns the
// new token and the old token's hash (for Invalidate after commit).
func StepUp(ctx context.Context, q *sqlcgen.Queries, sessionID uuid.UUID, method string, now time.Time) (Issued, []byte, error) {
	tok, hash := token.New()
	aal := int16(1)
	if method == "totp" || method == "recovery_code" || method == MethodPasskey {
		aal = 2
	}
	row, err := q.StepUpSession(ctx, sqlcgen.StepUpSessionParams{ID: sessionID, NewTokenHash: hash, Methods: []string{method}, AAL: aal, AuthTime: now})
	if errors.Is(err, store.ErrNotFound) {
		return Issued{}, nil, ErrUnauthenticated
	}
	if err != nil {
		return Issued{}, nil, fmt.Errorf("step up session: %w", err)
	}
	s := fromRow(sqlcgen.Session{ID: row.ID, UserID: row.UserID, CreatedAt: row.CreatedAt, LastActiveAt: row.LastActiveAt,
		ExpiresAt: row.ExpiresAt, AuthTime: row.AuthTime, Methods: row.Methods, AAL: row.AAL, IP: row.IP, UserAgent: row.UserAgent,
		Device: row.Device, Browser: row.Browser, Os: row.Os})
	return Issued{Session: s, Token: tok}, row.OldTokenHash, nil
}
