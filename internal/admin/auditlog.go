package admin

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// MaxExport bounds an audit export.
const MaxExport = 10000

// AuditPage is one page of the audit log and the cursor of the next.
type AuditPage struct {
	Events     []audit.View `json:"events"`
	NextCursor string       `json:"next_cursor"`
}

// Audit returns one page of the tenant's audit log, newest first. Errors: invalid_cursor.
func (s *Service) Audit(ctx context.Context, t tenant.Tenant, f audit.Filter) (AuditPage, error) {
	events, next, err := audit.List(ctx, s.store, t.ID, f)
	if err != nil {
		return AuditPage{}, err
	}
	return AuditPage{Events: events, NextCursor: next}, nil
}

// Export formats.
const (
	FormatCSV  = "csv"
	FormatJSON = "json"
)

// ExportAudit writes the filtered log (up to MaxExport events, newest first) to w as CSV
// or JSON. Values a person typed are defused for spreadsheets in CSV. Errors:
// invalid_cursor.
func (s *Service) ExportAudit(ctx context.Context, t tenant.Tenant, f audit.Filter, format string, w io.Writer) error {
	f.Limit = 500
	var all []audit.View
	for len(all) < MaxExport {
		page, next, err := audit.List(ctx, s.store, t.ID, f)
		if err != nil {
			return err
		}
		all = append(all, page...)
		if next == "" {
			break
		}
		f.Cursor = next
	}
	if len(all) > MaxExport {
		all = all[:MaxExport]
	}
	if format == FormatJSON {
		if all == nil {
			all = []audit.View{}
		}
		return json.NewEncoder(w).Encode(map[string]any{"events": all})
	}
	cw := csv.NewWriter(w)
	_ = cw.Write([]string{"id", "created_at", "action", "actor_id", "actor", "subject_id", "subject", "ip", "user_agent", "request_id", "details"})
	for _, e := range all {
		_ = cw.Write([]string{e.ID.String(), e.CreatedAt.UTC().Format("2006-01-02T15:04:05.000000Z07:00"), e.Action, idText(e.Actor.ID),
			csvSafe(e.Actor.Label), idText(e.Subject.ID), csvSafe(e.Subject.Label), e.IP, csvSafe(e.UserAgent), e.RequestID, csvSafe(string(e.Details))})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("write audit export: %w", err)
	}
	return nil
}

func idText(id *uuid.UUID) string {
	if id == nil {
		return ""
	}
	return id.String()
}

// csvSafe defuses spreadsheet formula injection in values that users control.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
