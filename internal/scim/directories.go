package scim

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// Directory is one IdP's provisioning endpoint, as the admin API shows it.
type Directory struct {
	ID              uuid.UUID  `json:"id"`
	Name            string     `json:"name"`
	Provider        string     `json:"provider"`
	SSOConnectionID *uuid.UUID `json:"sso_connection_id,omitempty"`
	// MapRoles: the groups map to roles through the connection's mapping (false only when
	// a tenant file says so).
	MapRoles bool `json:"map_roles"`
	// DeclaredName is the name in the tenant file that declares the directory, if any.
	DeclaredName  *string    `json:"declared_name,omitempty"`
	DeleteMode    string     `json:"delete_mode"`
	RatePerMinute int        `json:"rate_per_minute"`
	SCIMBaseURL   string     `json:"scim_base_url"`
	LastSyncAt    *time.Time `json:"last_sync_at,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	Users         int64      `json:"users"`
	Groups        int64      `json:"groups"`
	Tokens        []Token    `json:"tokens"`
}

// Token is a directory token without its secret.
type Token struct {
	ID         uuid.UUID  `json:"id"`
	Hint       string     `json:"hint"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
}

// DirectoryInput creates a directory.
type DirectoryInput struct {
	Name            string     `json:"name"`
	Provider        string     `json:"provider"`
	SSOConnectionID *uuid.UUID `json:"sso_connection_id"`
	DeleteMode      string     `json:"delete_mode"`
}

// Created is a new directory or token: the token's value exists only here.
type Created struct {
	Directory Directory `json:"directory"`
	Token     string    `json:"token"`
	TokenID   uuid.UUID `json:"token_id"`
}

// Errors of the admin API.
var (
	ErrDirectoryNotFound = apperr.New(apperr.NotFound, "not_found", "There is no such directory.")
	ErrTokenNotFound     = apperr.New(apperr.NotFound, "not_found", "There is no such token.")
	ErrInvalidDirectory  = apperr.New(apperr.Invalid, "invalid_directory", "The directory settings are not valid.")
)

func invalidDirectory(field, reason string) error {
	return ErrInvalidDirectory.WithDetails(map[string]any{"field": field, "reason": reason})
}

// TokenPrefix starts every directory token (secret scanners and people recognise it).
const TokenPrefix = "gh_scim_"

// newToken is a 256-bit random token and its SHA-256.
func newToken() (string, []byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, err
	}
	tok := TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	h := sha256.Sum256([]byte(tok))
	return tok, h[:], nil
}

func hashToken(tok string) []byte {
	h := sha256.Sum256([]byte(tok))
	return h[:]
}

func (s *Service) directoryFrom(t tenant.Tenant, d sqlcgen.Directory) Directory {
	return Directory{ID: d.ID, Name: d.Name, Provider: d.Provider, SSOConnectionID: d.SSOConnectionID, MapRoles: d.MapRoles, DeclaredName: d.DeclaredName, DeleteMode: d.DeleteMode,
		RatePerMinute: int(d.RatePerMinute), SCIMBaseURL: s.BaseURL(t), LastSyncAt: d.LastSyncAt, CreatedAt: d.CreatedAt, Tokens: []Token{}}
}

func tokenFrom(id uuid.UUID, hint string, created time.Time, used, revoked *time.Time) Token {
	return Token{ID: id, Hint: hint, CreatedAt: created, LastUsedAt: used, RevokedAt: revoked}
}

// CreateDirectory creates a directory with its first token (returned once).
// Errors: invalid_directory.
func (s *Service) CreateDirectory(ctx context.Context, t tenant.Tenant, in DirectoryInput, who audit.Who) (Created, error) {
	return s.createDirectory(ctx, t, in, nil, true, "", who)
}

// checkDirectoryInput trims and checks in, filling the defaults. Errors: invalid_directory.
func checkDirectoryInput(in *DirectoryInput) error {
	in.Name = strings.TrimSpace(in.Name)
	if in.Name == "" || utf8.RuneCountInString(in.Name) > 200 || strings.ContainsAny(in.Name, "\x00\r\n") {
		return invalidDirectory("name", "give a name of 1 to 200 characters on one line")
	}
	if in.Provider == "" {
		in.Provider = "generic"
	}
	if in.Provider != "generic" && in.Provider != "okta" && in.Provider != "entra" {
		return invalidDirectory("provider", `must be "okta", "entra" or "generic"`)
	}
	if in.DeleteMode == "" {
		in.DeleteMode = "lifecycle"
	}
	if in.DeleteMode != "lifecycle" && in.DeleteMode != "purge" {
		return invalidDirectory("delete_mode", `must be "lifecycle" (the tenant's deletion grace) or "purge"`)
	}
	return nil
}

// createDirectory creates a directory (declared by a tenant file when declared is set)
// with its first token: tok when given (a tenant file's token_env), else a new one.
func (s *Service) createDirectory(ctx context.Context, t tenant.Tenant, in DirectoryInput, declared *string, mapRoles bool, tok string, who audit.Who) (Created, error) {
	if err := checkDirectoryInput(&in); err != nil {
		return Created{}, err
	}
	hash := hashToken(tok)
	if tok == "" {
		var err error
		if tok, hash, err = newToken(); err != nil {
			return Created{}, err
		}
	}
	var out Created
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		if in.SSOConnectionID != nil {
			if _, err := q.GetSSOConnection(ctx, *in.SSOConnectionID); errors.Is(err, store.ErrNotFound) {
				return invalidDirectory("sso_connection_id", "no SSO connection of this tenant has this id")
			} else if err != nil {
				return err
			}
		}
		d, err := q.InsertDirectory(ctx, sqlcgen.InsertDirectoryParams{Name: in.Name, Provider: in.Provider,
			SSOConnectionID: in.SSOConnectionID, DeleteMode: in.DeleteMode, DeclaredName: declared, MapRoles: mapRoles})
		if err != nil {
			return err
		}
		tr, err := q.InsertDirectoryToken(ctx, sqlcgen.InsertDirectoryTokenParams{DirectoryID: d.ID, TokenHash: hash, Hint: hint(tok)})
		if err != nil {
			return err
		}
		out = Created{Directory: s.directoryFrom(t, d), Token: tok, TokenID: tr.ID}
		out.Directory.Tokens = []Token{tokenFrom(tr.ID, tr.Hint, tr.CreatedAt, tr.LastUsedAt, tr.RevokedAt)}
		if err := audit.Record(ctx, q, who, audit.Event{Action: audit.DirectoryCreated, SubjectID: d.ID, SubjectLabel: d.Name,
			Details: map[string]any{"provider": d.Provider, "delete_mode": d.DeleteMode, "sso_connection_id": d.SSOConnectionID, "map_roles": d.MapRoles}}); err != nil {
			return err
		}
		return audit.Record(ctx, q, who, audit.Event{Action: audit.DirectoryTokenCreated, SubjectID: d.ID, SubjectLabel: d.Name,
			Details: map[string]any{"token_id": tr.ID, "hint": tr.Hint}})
	})
	return out, err
}

// hint is the part of a token shown in lists: its last four characters.
func hint(tok string) string { return "…" + tok[len(tok)-4:] }

// GetDirectory returns a directory with counts and tokens. Errors: not_found.
func (s *Service) GetDirectory(ctx context.Context, t tenant.Tenant, id uuid.UUID) (Directory, error) {
	var out Directory
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		d, err := q.GetDirectory(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return ErrDirectoryNotFound
		}
		if err != nil {
			return err
		}
		out, err = s.describe(ctx, q, t, d)
		return err
	}, store.ReadOnly(), store.Idempotent())
	return out, err
}

func (s *Service) describe(ctx context.Context, q *sqlcgen.Queries, t tenant.Tenant, d sqlcgen.Directory) (Directory, error) {
	out := s.directoryFrom(t, d)
	var err error
	if out.Users, err = q.CountDirectoryUsers(ctx, d.ID); err != nil {
		return out, err
	}
	if out.Groups, err = q.CountDirectoryGroups(ctx, d.ID); err != nil {
		return out, err
	}
	toks, err := q.ListDirectoryTokens(ctx, d.ID)
	for _, tr := range toks {
		out.Tokens = append(out.Tokens, tokenFrom(tr.ID, tr.Hint, tr.CreatedAt, tr.LastUsedAt, tr.RevokedAt))
	}
	return out, err
}

// ListDirectories returns the tenant's directories, oldest first.
func (s *Service) ListDirectories(ctx context.Context, t tenant.Tenant) ([]Directory, error) {
	out := []Directory{}
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		out = out[:0]
		rows, err := q.ListDirectories(ctx)
		if err != nil {
			return err
		}
		for _, d := range rows {
			v, err := s.describe(ctx, q, t, d)
			if err != nil {
				return err
			}
			out = append(out, v)
		}
		return nil
	}, store.ReadOnly(), store.Idempotent())
	return out, err
}

// DeleteDirectory removes a directory, its tokens, groups and log. The users it managed
// stay (unlinked: they keep their accounts and roles). Errors: not_found.
func (s *Service) DeleteDirectory(ctx context.Context, t tenant.Tenant, id uuid.UUID, who audit.Who) error {
	return s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		d, err := q.GetDirectory(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return ErrDirectoryNotFound
		}
		if err != nil {
			return err
		}
		if _, err := q.DeleteDirectory(ctx, id); err != nil {
			return err
		}
		return audit.Record(ctx, q, who, audit.Event{Action: audit.DirectoryDeleted, SubjectID: d.ID, SubjectLabel: d.Name})
	})
}

// CreateToken adds a token to a directory (rotation: both work until the old one is
// revoked). Errors: not_found.
func (s *Service) CreateToken(ctx context.Context, t tenant.Tenant, id uuid.UUID, who audit.Who) (Created, error) {
	tok, hash, err := newToken()
	if err != nil {
		return Created{}, err
	}
	var out Created
	err = s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		d, err := q.GetDirectory(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return ErrDirectoryNotFound
		}
		if err != nil {
			return err
		}
		tr, err := q.InsertDirectoryToken(ctx, sqlcgen.InsertDirectoryTokenParams{DirectoryID: d.ID, TokenHash: hash, Hint: hint(tok)})
		if err != nil {
			return err
		}
		if out.Directory, err = s.describe(ctx, q, t, d); err != nil {
			return err
		}
		out.Token, out.TokenID = tok, tr.ID
		return audit.Record(ctx, q, who, audit.Event{Action: audit.DirectoryTokenCreated, SubjectID: d.ID, SubjectLabel: d.Name,
			Details: map[string]any{"token_id": tr.ID, "hint": tr.Hint}})
	})
	return out, err
}

// RevokeToken ends a token at once. Errors: not_found.
func (s *Service) RevokeToken(ctx context.Context, t tenant.Tenant, id, tokenID uuid.UUID, who audit.Who) error {
	return s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		d, err := q.GetDirectory(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return ErrDirectoryNotFound
		}
		if err != nil {
			return err
		}
		n, err := q.RevokeDirectoryToken(ctx, sqlcgen.RevokeDirectoryTokenParams{ID: tokenID, DirectoryID: id})
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrTokenNotFound
		}
		return audit.Record(ctx, q, who, audit.Event{Action: audit.DirectoryTokenRevoked, SubjectID: d.ID, SubjectLabel: d.Name,
			Details: map[string]any{"token_id": tokenID}})
	})
}

// LogEntry is one SCIM request of a directory.
type LogEntry struct {
	Method    string     `json:"method"`
	Path      string     `json:"path"`
	Status    int        `json:"status"`
	SCIMType  string     `json:"scim_type,omitempty"`
	LatencyMS int        `json:"latency_ms"`
	UserID    *uuid.UUID `json:"user_id,omitempty"`
	At        time.Time  `json:"at"`
}

// RequestLog returns a directory's most recent requests, newest first. Errors: not_found.
func (s *Service) RequestLog(ctx context.Context, t tenant.Tenant, id uuid.UUID, limit int) ([]LogEntry, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	out := []LogEntry{}
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		if _, err := q.GetDirectory(ctx, id); errors.Is(err, store.ErrNotFound) {
			return ErrDirectoryNotFound
		} else if err != nil {
			return err
		}
		rows, err := q.ListDirectoryRequests(ctx, sqlcgen.ListDirectoryRequestsParams{DirectoryID: id, Max: int32(limit)})
		out = out[:0]
		for _, r := range rows {
			out = append(out, LogEntry{Method: r.Method, Path: r.Path, Status: int(r.Status), SCIMType: r.SCIMType,
				LatencyMS: int(r.LatencyMs), UserID: r.UserID, At: r.CreatedAt})
		}
		return err
	}, store.ReadOnly(), store.Idempotent())
	return out, err
}

// ConnectionOption is an SSO connection a directory may be tied to.
type ConnectionOption struct {
	ID   uuid.UUID
	Name string
}

// Connections lists the tenant's SSO connections (for the portal's form).
func (s *Service) Connections(ctx context.Context, t tenant.Tenant) ([]ConnectionOption, error) {
	out := []ConnectionOption{}
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		rows, err := q.ListSSOConnections(ctx)
		out = out[:0]
		for _, r := range rows {
			out = append(out, ConnectionOption{ID: r.ID, Name: r.Name})
		}
		return err
	}, store.ReadOnly(), store.Idempotent())
	return out, err
}
