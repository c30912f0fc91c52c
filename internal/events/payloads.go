package events

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
)

// The payloads of the event types (the "data" of docs/events.md). Each is small: ids and
// the few fields a receiver acts on; user.deleted carries ids only.

// User is the data of user.created, user.updated, user.email_verified, user.suspended and
// user.reactivated. Source says how a user.created account came to be.
type User struct {
	UserID        uuid.UUID `json:"user_id"`
	Email         string    `json:"email"`
	Name          string    `json:"name"`
	EmailVerified bool      `json:"email_verified"`
	Status        string    `json:"status,omitempty"`
	Source        string    `json:"source,omitempty"`
}

// The sources of user.created.
const (
	SourceSignup     = "signup"
	SourceInvitation = "invitation"
	SourceSSO        = "sso"
	SourceOperator   = "operator"
	SourceTenantFile = "tenant_file"
)

// EmailChanged is the data of user.email_changed (also when a change is undone).
type EmailChanged struct {
	UserID        uuid.UUID `json:"user_id"`
	Email         string    `json:"email"`
	PreviousEmail string    `json:"previous_email"`
	Undone        bool      `json:"undone,omitempty"`
}

// DeletionScheduled is the data of user.deletion_scheduled.
type DeletionScheduled struct {
	UserID     uuid.UUID `json:"user_id"`
	PurgeAfter time.Time `json:"purge_after"`
}

// UserRef is the data of user.deletion_cancelled and user.deleted: the id and nothing else.
type UserRef struct {
	UserID uuid.UUID `json:"user_id"`
}

// Session is the data of session.created.
type Session struct {
	SessionID    uuid.UUID  `json:"session_id"`
	UserID       uuid.UUID  `json:"user_id"`
	Methods      []string   `json:"methods"`
	ConnectionID *uuid.UUID `json:"sso_connection_id,omitempty"`
}

// SessionEnded is the data of session.revoked. Reason is why the session ended (sign_out,
// revoke_others, password_reset, account_deletion, evicted, saml_logout, …).
type SessionEnded struct {
	SessionID uuid.UUID `json:"session_id"`
	UserID    uuid.UUID `json:"user_id"`
	Reason    string    `json:"reason"`
}

// Role is the data of role.granted and role.revoked.
type Role struct {
	UserID uuid.UUID `json:"user_id"`
	Role   string    `json:"role"`
}

// SSOConnection is the data of sso.connection.created, updated and deleted.
type SSOConnection struct {
	ConnectionID uuid.UUID `json:"connection_id"`
	Slug         string    `json:"slug,omitempty"`
	Name         string    `json:"name,omitempty"`
	Protocol     string    `json:"protocol,omitempty"`
	Enabled      *bool     `json:"enabled,omitempty"`
}

// Test is the data of webhook.test.
type Test struct {
	WebhookID uuid.UUID `json:"webhook_id"`
	Message   string    `json:"message"`
}

// UserOf is the User payload of a users row.
func UserOf(u sqlcgen.User, source string) User {
	return User{UserID: u.ID, Email: u.Email, Name: u.Name, EmailVerified: u.EmailVerifiedAt != nil, Status: u.Status, Source: source}
}

// EmitUserCreated records user.created for a new users row.
func EmitUserCreated(ctx context.Context, q *sqlcgen.Queries, u sqlcgen.User, source string) error {
	_, err := Emit(ctx, q, Event{Type: UserCreated, User: u.ID, Data: UserOf(u, source)})
	return err
}

// EmitRole records role.granted or role.revoked.
func EmitRole(ctx context.Context, q *sqlcgen.Queries, typ string, userID uuid.UUID, role string) error {
	_, err := Emit(ctx, q, Event{Type: typ, User: userID, Data: Role{UserID: userID, Role: role}})
	return err
}
