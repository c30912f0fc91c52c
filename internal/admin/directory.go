package admin

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// Directory limits.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
	MaxQueryLen     = 254
)

// Filter narrows the user directory. Query is a literal substring of the address (% and _
// are plain characters); the booleans are nil for "either".
type Filter struct {
	Query    string
	Status   string
	Verified *bool
	WithMFA  *bool
	WithSSO  *bool
	Cursor   string // opaque, from the previous page
	Limit    int    // 0: DefaultPageSize
}

// UserPage is one page of the directory, newest first, and the cursor of the next ("" at
// the end).
type UserPage struct {
	Users      []User `json:"users"`
	NextCursor string `json:"next_cursor"`
}

func invalidFilter(msg string) error { return apperr.New(apperr.Invalid, "invalid_request", msg) }

// Validate checks a filter as the API states it.
func (f Filter) Validate() error {
	switch {
	case f.Limit < 0 || f.Limit > MaxPageSize:
		return invalidFilter(fmt.Sprintf("limit is a number from 1 to %d.", MaxPageSize))
	case len(f.Query) > MaxQueryLen || !utf8.ValidString(f.Query):
		return invalidFilter("The search is too long.")
	case f.Status != "" && f.Status != "active" && f.Status != "disabled" && f.Status != "pending_deletion":
		return invalidFilter("status is active, disabled or pending_deletion.")
	}
	return nil
}

// ListUsers returns one page of the tenant's users, newest first, by keyset pagination
// over (created_at, id) (index users_directory_idx). Errors: invalid_request,
// invalid_cursor.
func (s *Service) ListUsers(ctx context.Context, t tenant.Tenant, f Filter) (UserPage, error) {
	if err := f.Validate(); err != nil {
		return UserPage{}, err
	}
	limit := f.Limit
	if limit == 0 {
		limit = DefaultPageSize
	}
	p := sqlcgen.ListUsersParams{PageSize: int32(limit + 1), Verified: f.Verified, WithMFA: f.WithMFA, WithSSO: f.WithSSO}
	if q := strings.TrimSpace(f.Query); q != "" {
		p.Q = &q
	}
	if f.Status != "" {
		p.Status = &f.Status
	}
	if f.Cursor != "" {
		at, id, err := audit.DecodeCursor(f.Cursor)
		if err != nil {
			return UserPage{}, err
		}
		p.BeforeAt, p.BeforeID = &at, &id
	}
	page := UserPage{Users: []User{}}
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		rows, err := q.ListUsers(ctx, p)
		if err != nil {
			return fmt.Errorf("list users: %w", err)
		}
		page = UserPage{Users: make([]User, 0, len(rows))}
		for i, u := range rows {
			if i == limit {
				page.NextCursor = audit.EncodeCursor(rows[i-1].CreatedAt, rows[i-1].ID)
				break
			}
			page.Users = append(page.Users, userFromListRow(u))
		}
		return nil
	}, store.ReadOnly(), store.Idempotent())
	return page, err
}
