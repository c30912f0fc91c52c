package events_test

import (
	"context"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/events"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// An event exists exactly when its transaction committed, and a reader paging by cursor
// never skips an event whose transaction began earlier but committed later.
func TestEmitAndLateCommit(t *testing.T) {
	ctx := context.Background()
	d := testutil.PackageDB(t)
	tn := testutil.NewTenant(t, d, "ev")

	if err := d.Store.InTenant(ctx, tn.ID, func(q *sqlcgen.Queries) error {
		_, err := events.Emit(ctx, q, events.Event{Type: "user.nonsense"})
		return err
	}); err == nil {
		t.Fatal("an unknown event type was recorded")
	}

	list := func() []string {
		t.Helper()
		var types []string
		if err := d.Store.InTenant(ctx, tn.ID, func(q *sqlcgen.Queries) error {
			rows, err := q.ListEventsAfter(ctx, sqlcgen.ListEventsAfterParams{Types: []string{}, PageSize: 100})
			for _, r := range rows {
				types = append(types, r.Type)
			}
			return err
		}); err != nil {
			t.Fatal(err)
		}
		return types
	}

	// A transaction that records an event and stays open while a later one commits.
	held := make(chan struct{})
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- d.Store.InTenant(ctx, tn.ID, func(q *sqlcgen.Queries) error {
			if _, err := events.Emit(ctx, q, events.Event{Type: events.UserCreated, Data: map[string]string{"n": "early"}}); err != nil {
				return err
			}
			close(held)
			<-release
			return nil
		})
	}()
	<-held
	if err := d.Store.InTenant(ctx, tn.ID, func(q *sqlcgen.Queries) error {
		_, err := events.Emit(ctx, q, events.Event{Type: events.UserUpdated})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got := list(); len(got) != 0 {
		t.Fatalf("events after an earlier open transaction were listed before it ended: %v", got)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Listed once every transaction older than them has ended, in the whole cluster (other
	// tests' CREATE DATABASE may hold that back for a moment).
	got := list()
	for deadline := time.Now().Add(20 * time.Second); len(got) < 2 && time.Now().Before(deadline); got = list() {
		time.Sleep(20 * time.Millisecond)
	}
	if len(got) != 2 || got[0] != events.UserCreated || got[1] != events.UserUpdated {
		t.Fatalf("after both committed: %v, want [user.created user.updated]", got)
	}
}
