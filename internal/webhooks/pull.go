package webhooks

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/events"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// ErrInvalidCursor is a malformed after= cursor.
var ErrInvalidCursor = apperr.New(apperr.Invalid, "invalid_cursor", "The cursor is not one this API returned.")

// EventsPage is one page of the pull API: events oldest first, and the cursor to ask
// after next (the same cursor when nothing new has committed).
type EventsPage struct {
	Events []Payload `json:"events"`
	Next   string    `json:"next"`
}

// Events returns the tenant's events after the cursor ("" from the oldest kept), of the
// types given (none: every type), at most limit (default 100, at most 500). The cursor
// never skips an event whose transaction commits late (events.ListEventsAfter).
// Errors: invalid_cursor, invalid_event_type.
func (s *Service) Events(ctx context.Context, t tenant.Tenant, after string, types []string, limit int) (EventsPage, error) {
	var xact, seq int64
	if after != "" {
		a, b, ok := strings.Cut(after, "-")
		var err1, err2 error
		xact, err1 = strconv.ParseInt(a, 10, 64)
		seq, err2 = strconv.ParseInt(b, 10, 64)
		if !ok || err1 != nil || err2 != nil || xact < 0 || seq < 0 {
			return EventsPage{}, ErrInvalidCursor
		}
	}
	for _, ty := range types {
		if !events.Known(ty) {
			return EventsPage{}, ErrInvalidType
		}
	}
	if types == nil {
		types = []string{}
	}
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	page := EventsPage{Events: []Payload{}, Next: after}
	err := s.store.InTenant(ctx, t.ID, func(q *sqlcgen.Queries) error {
		rows, err := q.ListEventsAfter(ctx, sqlcgen.ListEventsAfterParams{AfterXact: xact, AfterSeq: seq, Types: types, PageSize: int32(limit)})
		if err != nil {
			return err
		}
		for _, r := range rows {
			page.Events = append(page.Events, Payload{ID: r.ID, Type: r.Type, Tenant: PayloadTenant{ID: t.ID, Slug: t.Slug},
				OccurredAt: r.OccurredAt.UTC(), Data: r.Data})
			if r.Seq != nil {
				page.Next = fmt.Sprintf("%d-%d", r.Xact, *r.Seq)
			}
		}
		return nil
	}, store.ReadOnly(), store.Idempotent())
	return page, err
}
