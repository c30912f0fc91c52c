package scim

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/ratelimit"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// Caller is an authenticated directory on its tenant's host.
type Caller struct {
	Tenant    tenant.Tenant
	Directory sqlcgen.Directory
	Who       audit.Who // the request's address and id, acting as the directory
}

// Authenticate finds the directory of a bearer token on the tenant's host: a token of
// another tenant does not exist here (the look-up runs under the tenant's row-level
// security), a revoked one no longer does. Errors: 401 (SCIM).
func (s *Service) Authenticate(ctx context.Context, t tenant.Tenant, bearer string, who audit.Who) (Caller, error) {
	bearer = strings.TrimSpace(bearer)
	if !strings.HasPrefix(bearer, TokenPrefix) || len(bearer) > 128 {
		return Caller{}, errUnauthorized
	}
	var c Caller
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		row, err := q.LookupDirectoryToken(ctx, hashToken(bearer))
		if errors.Is(err, store.ErrNotFound) {
			return errUnauthorized
		}
		if err != nil {
			return err
		}
		if row.LastUsedAt == nil || row.LastUsedAt.Before(s.now().Add(-time.Minute)) {
			if err := q.TouchDirectoryToken(ctx, row.TokenID); err != nil {
				return err
			}
		}
		d := sqlcgen.Directory{TenantID: row.TenantID, ID: row.ID, Name: row.Name, Provider: row.Provider,
			SSOConnectionID: row.SSOConnectionID, DeleteMode: row.DeleteMode, RatePerMinute: row.RatePerMinute,
			LastSyncAt: row.LastSyncAt, CreatedAt: row.CreatedAt, UpdatedAt: row.UpdatedAt, DeclaredName: row.DeclaredName, MapRoles: row.MapRoles}
		who.ActorLabel = "directory " + d.Name
		c = Caller{Tenant: t, Directory: d, Who: who}
		return nil
	})
	return c, err
}

// Allow counts a request against the directory's rate (per minute). Errors: 429 (SCIM).
func (s *Service) Allow(ctx context.Context, c Caller) (time.Duration, error) {
	ok, retry, err := s.limit.Allow(ctx, c.Tenant.ID, ratelimit.Key("scim", c.Directory.ID.String()),
		ratelimit.Rule{Name: "scim_directory", Limit: int(c.Directory.RatePerMinute), Window: time.Minute})
	if err != nil {
		return 0, err
	}
	if !ok {
		return retry, errRateLimited
	}
	return 0, nil
}

// Logged is what the request log keeps of one request.
type Logged struct {
	Method, Path, Resource string
	Status                 int
	SCIMType               string
	Latency                time.Duration
	UserID                 uuid.UUID
}

// Log records a request in the directory's log (never a token or a body) and counts it.
func (s *Service) Log(ctx context.Context, c Caller, l Logged) {
	result := "ok"
	if l.Status >= 400 {
		result = l.SCIMType
		if result == "" {
			result = "status_" + itoa(l.Status)
		}
	}
	s.requests.Add(ctx, result, attribute.String("resource", l.Resource), attribute.String("method", l.Method))
	var uid *uuid.UUID
	if l.UserID != uuid.Nil {
		uid = &l.UserID
	}
	err := s.store.InTenant(ctx, c.Tenant.ID, func(q *sqlcgen.Queries) error {
		if err := q.InsertDirectoryRequest(ctx, sqlcgen.InsertDirectoryRequestParams{DirectoryID: c.Directory.ID, Method: l.Method,
			Path: truncate(l.Path, 512), Status: int32(l.Status), SCIMType: l.SCIMType, LatencyMs: int32(l.Latency.Milliseconds()), UserID: uid}); err != nil {
			return err
		}
		if l.Status < 400 && l.Method != "GET" {
			return q.TouchDirectorySync(ctx, c.Directory.ID)
		}
		return nil
	})
	if err != nil {
		s.logger.WarnContext(ctx, "scim request log", "err", err)
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [12]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// ReportInternal logs an unexpected error of a SCIM request (the answer says only
// "Internal error."). The path never holds a token; the query (filters) is left out.
func (s *Service) ReportInternal(ctx context.Context, err error, method, path string) {
	s.logger.ErrorContext(ctx, "scim internal error", "err", err, "method", method, "path", path)
}
