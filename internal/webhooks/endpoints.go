package webhooks

import (
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
)

// Endpoint is a webhook endpoint as the API shows it (never its secret).
type Endpoint struct {
	ID                  uuid.UUID  `json:"id"`
	URL                 string     `json:"url"`
	Description         string     `json:"description"`
	EventTypes          []string   `json:"event_types"`
	Enabled             bool       `json:"enabled"`
	DisabledReason      *string    `json:"disabled_reason"`
	FailingSince        *time.Time `json:"failing_since"`
	PreviousSecretUntil *time.Time `json:"previous_secret_expires_at"`
	Platform            bool       `json:"platform,omitempty"`
	CreatedAt           time.Time  `json:"created_at"`
	UpdatedAt           time.Time  `json:"updated_at"`
}

// row is what both endpoint tables hold.
type row struct {
	Endpoint
	secretKeyID    string
	secretSealed   []byte
	previousKeyID  *string
	previousSealed []byte
	tenantID       uuid.UUID // uuid.Nil for the operator's
}

func tenantRow(r sqlcgen.WebhookEndpoint) row {
	return row{Endpoint: Endpoint{ID: r.ID, URL: r.URL, Description: r.Description, EventTypes: nonNil(r.EventTypes), Enabled: r.Enabled,
		DisabledReason: r.DisabledReason, FailingSince: r.FailingSince, PreviousSecretUntil: r.PreviousUntil,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt},
		secretKeyID: r.SecretKeyID, secretSealed: r.SecretSealed, previousKeyID: r.PreviousKeyID, previousSealed: r.PreviousSealed,
		tenantID: r.TenantID}
}

func platformRow(r sqlcgen.PlatformWebhookEndpoint) row {
	return row{Endpoint: Endpoint{ID: r.ID, URL: r.URL, Description: r.Description, EventTypes: nonNil(r.EventTypes), Enabled: r.Enabled,
		DisabledReason: r.DisabledReason, FailingSince: r.FailingSince, PreviousSecretUntil: r.PreviousUntil, Platform: true,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt},
		secretKeyID: r.SecretKeyID, secretSealed: r.SecretSealed, previousKeyID: r.PreviousKeyID, previousSealed: r.PreviousSealed}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Delivery is one (event, endpoint) delivery as the deliveries log shows it.
type Delivery struct {
	ID            uuid.UUID  `json:"id"`
	EventID       uuid.UUID  `json:"event_id"`
	EventType     string     `json:"event_type"`
	State         string     `json:"state"`
	Attempts      int32      `json:"attempts"`
	Status        *int32     `json:"status"`
	LatencyMS     *int32     `json:"latency_ms"`
	Response      *string    `json:"response"`
	LastAttemptAt *time.Time `json:"last_attempt_at"`
	NextAttemptAt *time.Time `json:"next_attempt_at"`
	// Held: pending behind an earlier delivery of the same user to this endpoint.
	Held        bool       `json:"held"`
	DeliveredAt *time.Time `json:"delivered_at"`
	CreatedAt   time.Time  `json:"created_at"`
	// Tenant is whose event it is (the operator's endpoints only).
	Tenant *PayloadTenant `json:"tenant,omitempty"`
}

func deliveryFrom(r sqlcgen.ListDeliveriesRow) Delivery {
	d := Delivery{ID: r.ID, EventID: r.EventID, EventType: r.Type, State: r.State, Attempts: r.Attempts, Status: r.LastStatus,
		LatencyMS: r.LastLatencyMs, Response: r.LastResponse, LastAttemptAt: r.LastAttemptAt, DeliveredAt: r.DeliveredAt, CreatedAt: r.CreatedAt}
	if r.State == "pending" && !r.Held {
		d.NextAttemptAt = r.NextAttemptAt
	}
	d.Held = r.State == "pending" && r.Held
	return d
}
