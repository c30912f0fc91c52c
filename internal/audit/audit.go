// Package audit records security-relevant events in the tenant's append-only audit log,
// inside the transaction of the change they describe (an event is never recorded for a
// change that rolled back, nor lost for one that committed).
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
)

// Actions (dotted names, listed in docs/audit.md).
const (
	UserSignup          = "user.signup"
	UserEmailVerified   = "user.email_verified"
	UserEmailChanged    = "user.email_changed"
	UserEmailRestored   = "user.email_restored"
	UserPasswordReset   = "user.password_reset"
	UserPasswordChanged = "user.password_changed"
	SessionLogin        = "session.login"
	SessionLoginFailed  = "session.login_failed"
	SessionRevoked      = "session.revoked"
	SessionStepUp       = "session.step_up"
	SessionStepUpFailed = "session.step_up_failed"
	MFAEnabled          = "mfa.enabled"
	MFADisabled         = "mfa.disabled"
	MFARecoveryUsed     = "mfa.recovery_code_used"
	MFARecoveryRenewed  = "mfa.recovery_codes_regenerated"
	PolicyUpdated       = "tenant.policy_updated"
	BrandingUpdated     = "tenant.branding_updated"
	TenantCreated       = "tenant.created"
	TenantUpdated       = "tenant.updated"
	RoleAssigned        = "role.assigned"
	UserInvited         = "user.invited"
	InvitationRevoked   = "user.invitation_revoked"
	InvitationAccepted  = "user.invitation_accepted"
	DeletionRequested   = "user.deletion_requested"
	DeletionCancelled   = "user.deletion_cancelled"
	UserPurged          = "user.purged"
	DataExported        = "user.data_exported"
	SSOLogin            = "sso.login"
	SSOLoginFailed      = "sso.login_failed"
	SSOTest             = "sso.test"
	SSOLogout           = "sso.logout"
	SSOUserProvisioned  = "sso.user_provisioned"
	SSOIdentityLinked   = "sso.identity_linked"
	SSOConnCreated      = "sso.connection_created"
	SSOConnUpdated      = "sso.connection_updated"
	SSOConnDeleted      = "sso.connection_deleted"
	SSOKeyRotated       = "sso.sp_key_rotated"
	SSOMetadataRefresh  = "sso.metadata_refresh_failed"
	SSODomainVerified   = "sso.domain_verified"
	// Apps and the OpenID Provider (internal/oidcop).
	AppCreated           = "app.created"
	AppUpdated           = "app.updated"
	AppDeleted           = "app.deleted"
	AppSecretRotated     = "app.secret_rotated"
	AppConsentGranted    = "app.consent_granted"
	AppConsentRevoked    = "app.consent_revoked"
	OIDCKeysRotated      = "oidc.keys_rotated"
	OIDCCodeReused       = "oidc.code_reused"
	OIDCRefreshReused    = "oidc.refresh_token_reused"
	OIDCClientAuthFailed = "oidc.client_auth_failed"
	// SCIM directories (internal/scim).
	DirectoryCreated         = "directory.created"
	DirectoryUpdated         = "directory.updated"
	DirectoryDeleted         = "directory.deleted"
	DirectoryTokenCreated    = "directory.token_created"
	DirectoryTokenRevoked    = "directory.token_revoked"
	DirectoryUserCreated     = "directory.user_created"
	DirectoryUserLinked      = "directory.user_linked"
	DirectoryUserUpdated     = "directory.user_updated"
	DirectoryUserSuspended   = "directory.user_suspended"
	DirectoryUserReactivated = "directory.user_reactivated"
	DirectoryUserDeleted     = "directory.user_deleted"
	DirectoryGroupCreated    = "directory.group_created"
	DirectoryGroupUpdated    = "directory.group_updated"
	DirectoryGroupDeleted    = "directory.group_deleted"
	// Failed and locked credential checks (internal/ratelimit/credentials.go).
	UserPasswordChangeFailed = "user.password_change_failed"
	UserPasswordLocked       = "user.password_locked"
	MFAConfirmFailed         = "mfa.confirm_failed"
	MFALocked                = "mfa.locked"
	// Webhooks (internal/webhooks).
	WebhookCreated       = "webhook.created"
	WebhookUpdated       = "webhook.updated"
	WebhookDeleted       = "webhook.deleted"
	WebhookSecretRotated = "webhook.secret_rotated"
	WebhookDisabled      = "webhook.disabled"
	WebhookTested        = "webhook.tested"
	WebhookRetried       = "webhook.retried"
)

// Who describes the actor and the request an event came from.
type Who struct {
	ActorID    uuid.UUID // uuid.Nil: anonymous or the system
	ActorLabel string    // email, "system", "operator"
	IP         netip.Addr
	UserAgent  string
	RequestID  string
}

// Event is one audit record.
type Event struct {
	Action       string
	SubjectID    uuid.UUID
	SubjectLabel string
	Details      map[string]any
}

// Record appends ev inside the caller's tenant transaction.
func Record(ctx context.Context, q *sqlcgen.Queries, who Who, ev Event) error {
	details := []byte("{}")
	if len(ev.Details) > 0 {
		b, err := json.Marshal(ev.Details)
		if err != nil {
			return fmt.Errorf("audit details: %w", err)
		}
		details = b
	}
	var ip *netip.Addr
	if who.IP.IsValid() {
		ip = &who.IP
	}
	// Text columns refuse invalid UTF-8: a cut inside a character (or a client's bytes
	// that reached here unsanitised) must not lose the event.
	ua := who.UserAgent
	if len(ua) > 512 {
		ua = ua[:512]
	}
	ua = strings.ToValidUTF8(ua, "")
	rid := who.RequestID
	if len(rid) > 64 {
		rid = rid[:64]
	}
	rid = strings.ToValidUTF8(rid, "")
	return q.InsertAuditEvent(ctx, sqlcgen.InsertAuditEventParams{
		Action: ev.Action, ActorID: nilIfZero(who.ActorID), ActorLabel: who.ActorLabel,
		SubjectID: nilIfZero(ev.SubjectID), SubjectLabel: ev.SubjectLabel,
		IP: ip, UserAgent: ua, RequestID: rid, Details: details,
	})
}

// RecordAlone appends ev in a transaction of its own (for events about things that did not
// change the database, such as a failed login).
func RecordAlone(ctx context.Context, st *store.Store, tenantID uuid.UUID, who Who, ev Event) error {
	return st.InTenant(ctx, tenantID, func(q *sqlcgen.Queries) error { return Record(ctx, q, who, ev) })
}

func nilIfZero(id uuid.UUID) *uuid.UUID {
	if id == uuid.Nil {
		return nil
	}
	return &id
}

// View is an event as the audit API shows it.
type View struct {
	ID        uuid.UUID       `json:"id"`
	Action    string          `json:"action"`
	Actor     Party           `json:"actor"`
	Subject   Party           `json:"subject"`
	IP        string          `json:"ip"`
	UserAgent string          `json:"user_agent"`
	RequestID string          `json:"request_id"`
	CreatedAt time.Time       `json:"created_at"`
	Details   json.RawMessage `json:"details"`
}

// Party is an actor or subject.
type Party struct {
	ID    *uuid.UUID `json:"id"`
	Label string     `json:"label"`
}

// Filter narrows a listing.
type Filter struct {
	Action string
	Actor  uuid.UUID
	Since  time.Time
	Cursor string // opaque, from the previous page
	Limit  int
}

// List returns one page of the tenant's events, newest first, and the cursor of the next.
func List(ctx context.Context, st *store.Store, tenantID uuid.UUID, f Filter) ([]View, string, error) {
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 100
	}
	p := sqlcgen.ListAuditEventsParams{PageSize: int32(f.Limit + 1)}
	if f.Cursor != "" {
		at, id, err := DecodeCursor(f.Cursor)
		if err != nil {
			return nil, "", err
		}
		p.BeforeAt, p.BeforeID = &at, &id
	}
	if f.Action != "" {
		p.Action = &f.Action
	}
	if f.Actor != uuid.Nil {
		p.Actor = &f.Actor
	}
	if !f.Since.IsZero() {
		p.Since = &f.Since
	}
	var out []View
	next := ""
	err := st.InTenant(ctx, tenantID, func(q *sqlcgen.Queries) error {
		rows, err := q.ListAuditEvents(ctx, p)
		if err != nil {
			return err
		}
		out = make([]View, 0, len(rows))
		for i, r := range rows {
			if i == f.Limit {
				last := rows[i-1]
				next = EncodeCursor(last.OccurredAt, last.ID)
				break
			}
			v := View{ID: r.ID, Action: r.Action, Actor: Party{ID: r.ActorID, Label: r.ActorLabel},
				Subject: Party{ID: r.SubjectID, Label: r.SubjectLabel}, UserAgent: r.UserAgent, RequestID: r.RequestID,
				CreatedAt: r.OccurredAt, Details: r.Details}
			if r.IP != nil {
				v.IP = r.IP.String()
			}
			out = append(out, v)
		}
		return nil
	}, store.ReadOnly(), store.Idempotent())
	return out, next, err
}

type requestKey struct{}

// Request is where a request came from, attached to its context by the HTTP layer.
type Request struct {
	IP        netip.Addr
	UserAgent string
	RequestID string
}

// WithRequest attaches r to ctx for the events recorded while serving it.
func WithRequest(ctx context.Context, r Request) context.Context {
	return context.WithValue(ctx, requestKey{}, &r)
}

// RequestKey is the context key under which WithRequest stores a *Request. A context type
// of the HTTP layer answers it itself (kit's per-request context: one allocation per
// request for every value the middleware attaches, instead of one context node each).
func RequestKey() any { return requestKey{} }

// By returns the Who of an event caused by actor (uuid.Nil for anonymous) during the
// request in ctx.
func By(ctx context.Context, actorID uuid.UUID, actorLabel string) Who {
	r, _ := ctx.Value(requestKey{}).(*Request)
	if r == nil {
		r = &Request{}
	}
	return Who{ActorID: actorID, ActorLabel: actorLabel, IP: r.IP, UserAgent: r.UserAgent, RequestID: r.RequestID}
}
