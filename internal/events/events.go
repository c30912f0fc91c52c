// Package events records every change worth telling an app (docs/events.md), in the
// transaction of the change: an event exists exactly when its change committed. Webhook
// deliveries and the pull API (GET /api/v1/admin/events) read what is recorded here.
package events

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
)

// Event types (the list in ../shared/API.md "Events and webhooks" and docs/events.md).
const (
	UserCreated           = "user.created"
	UserUpdated           = "user.updated"
	UserEmailVerified     = "user.email_verified"
	UserEmailChanged      = "user.email_changed"
	UserSuspended         = "user.suspended"
	UserReactivated       = "user.reactivated"
	UserDeletionScheduled = "user.deletion_scheduled"
	UserDeletionCancelled = "user.deletion_cancelled"
	UserDeleted           = "user.deleted"
	SessionCreated        = "session.created"
	SessionRevoked        = "session.revoked"
	RoleGranted           = "role.granted"
	RoleRevoked           = "role.revoked"
	SSOConnectionCreated  = "sso.connection.created"
	SSOConnectionUpdated  = "sso.connection.updated"
	SSOConnectionDeleted  = "sso.connection.deleted"
	DirectoryUserCreated  = "directory.user.created"
	DirectoryUserUpdated  = "directory.user.updated"
	DirectoryUserDeleted  = "directory.user.deleted"
	DirectoryGroupCreated = "directory.group.created"
	DirectoryGroupUpdated = "directory.group.updated"
	DirectoryGroupDeleted = "directory.group.deleted"
	WebhookTest           = "webhook.test"
)

// Types lists every event type, in documentation order. Emit refuses any other, so an
// endpoint's filter and docs/events.md can name them all.
var Types = []string{
	UserCreated, UserUpdated, UserEmailVerified, UserEmailChanged, UserSuspended, UserReactivated,
	UserDeletionScheduled, UserDeletionCancelled, UserDeleted, SessionCreated, SessionRevoked,
	RoleGranted, RoleRevoked, SSOConnectionCreated, SSOConnectionUpdated, SSOConnectionDeleted,
	DirectoryUserCreated, DirectoryUserUpdated, DirectoryUserDeleted,
	DirectoryGroupCreated, DirectoryGroupUpdated, DirectoryGroupDeleted, WebhookTest,
}

var known = func() map[string]bool {
	m := make(map[string]bool, len(Types))
	for _, t := range Types {
		m[t] = true
	}
	return m
}()

// Known reports whether t is an event type.
func Known(t string) bool { return known[t] }

// Event is one change. Data is the type's payload (a struct of this package, or a small map);
// it must hold nothing a receiver should not keep (user.deleted carries ids only).
type Event struct {
	Type string
	// User is the user the event is about (uuid.Nil for none); it lets a purge erase the
	// user's earlier events and is never sent.
	User uuid.UUID
	Data any
}

// Recorded is what Emit wrote.
type Recorded struct {
	ID         uuid.UUID
	OccurredAt time.Time
}

// Emit records e inside the caller's tenant transaction.
func Emit(ctx context.Context, q *sqlcgen.Queries, e Event) (Recorded, error) {
	if !known[e.Type] {
		return Recorded{}, fmt.Errorf("event type %q is not one of events.Types", e.Type)
	}
	data := []byte("{}")
	if e.Data != nil {
		b, err := json.Marshal(e.Data)
		if err != nil {
			return Recorded{}, fmt.Errorf("event %s data: %w", e.Type, err)
		}
		data = b
	}
	var user *uuid.UUID
	if e.User != uuid.Nil {
		user = &e.User
	}
	row, err := q.InsertEvent(ctx, sqlcgen.InsertEventParams{Type: e.Type, UserID: user, Data: data})
	if err != nil {
		return Recorded{}, fmt.Errorf("record event %s: %w", e.Type, err)
	}
	// The outbox: a delivery per subscribed endpoint (the tenant's and the operator's), each
	// with its job, in this transaction. A test event goes only where it is sent.
	if e.Type != WebhookTest {
		if _, err := q.FanOutEvent(ctx, sqlcgen.FanOutEventParams{EventID: row.ID, Type: e.Type, UserID: user, EventSeq: row.Seq}); err != nil {
			return Recorded{}, fmt.Errorf("fan out event %s: %w", e.Type, err)
		}
	}
	return Recorded{ID: row.ID, OccurredAt: row.OccurredAt}, nil
}
