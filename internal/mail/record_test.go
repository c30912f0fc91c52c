package mail_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/gatehouse-id/gatehouse/internal/mail"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// outageSender accepts the mail and, in the same moment, takes the database away for a
// while: every connection of the test database is cut and new ones are refused.
type outageSender struct {
	t    *testing.T
	d    *testutil.DB
	down time.Duration
}

func (s outageSender) Send(ctx context.Context, m mail.Message) (string, error) {
	admin, err := pgx.Connect(ctx, testutil.ServerAdminURL(s.t))
	if err != nil {
		return "", err
	}
	defer admin.Close(ctx)
	db := pgx.Identifier{s.d.Name}.Sanitize()
	if _, err := admin.Exec(ctx, "ALTER DATABASE "+db+" ALLOW_CONNECTIONS false"); err != nil {
		return "", err
	}
	if _, err := admin.Exec(ctx, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", s.d.Name); err != nil {
		return "", err
	}
	go func() {
		time.Sleep(s.down)
		c, err := pgx.Connect(context.Background(), testutil.ServerAdminURL(s.t))
		if err != nil {
			s.t.Errorf("reconnect admin: %v", err)
			return
		}
		defer c.Close(context.Background())
		if _, err := c.Exec(context.Background(), "ALTER DATABASE "+db+" ALLOW_CONNECTIONS true"); err != nil {
			s.t.Errorf("allow connections: %v", err)
		}
	}()
	return "provider-id-1", nil
}

// TestSentIsRecordedAcrossADatabaseOutage: the provider accepted the mail and then the
// database went away for a few seconds; the worker must still record the delivery (status
// sent, body with its one-time link cleared) instead of leaving the row pending forever.
func TestSentIsRecordedAcrossADatabaseOutage(t *testing.T) {
	d := testutil.FreshDB(t)
	ten := testutil.NewTenant(t, d, "rec")
	var oid uuid.UUID
	if err := d.Admin.QueryRow(context.Background(),
		`INSERT INTO mail_outbox (tenant_id, template, to_address, subject, text_body) VALUES ($1, 'verify_email', 'r@example.com', 'Verify', 'link: https://x/verify?token=secret') RETURNING id`,
		ten.ID).Scan(&oid); err != nil {
		t.Fatal(err)
	}
	w, err := mail.NewWorker(d.Store, outageSender{t: t, d: d, down: 3 * time.Second},
		func(context.Context, uuid.UUID) (string, string) { return "noreply@example.com", "" },
		slog.New(slog.DiscardHandler), noop.NewMeterProvider())
	if err != nil {
		t.Fatal(err)
	}
	job := &river.Job[mail.SendArgs]{JobRow: &rivertype.JobRow{Attempt: 1, MaxAttempts: 20}, Args: mail.SendArgs{TenantID: ten.ID, OutboxID: oid}}
	if err := w.Work(context.Background(), job); err != nil {
		t.Fatalf("work: %v", err)
	}
	var status string
	var body *string
	var c *pgx.Conn // the pool's connections were cut; wait until the database is back
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if c, err = pgx.Connect(context.Background(), d.AdminURL); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
	}
	defer c.Close(context.Background())
	if err := c.QueryRow(context.Background(), "SELECT status, text_body FROM mail_outbox WHERE id = $1", oid).Scan(&status, &body); err != nil {
		t.Fatal(err)
	}
	if status != "sent" || body != nil {
		t.Fatalf("after the outage: status %s, body kept %v; want sent with the body cleared", status, body != nil)
	}
}
