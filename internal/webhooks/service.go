// Package webhooks delivers events (internal/events) to the endpoints of a tenant and of
// the operator, signed by the Standard Webhooks scheme (docs/events.md). events.Emit writes
// one delivery row per subscribed endpoint in the transaction of the event, and a trigger
// enqueues its River job there too; Worker makes the attempts.
package webhooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/events"
	"github.com/gatehouse-id/gatehouse/internal/mail"
	"github.com/gatehouse-id/gatehouse/internal/outbound"
	"github.com/gatehouse-id/gatehouse/internal/secretbox"
	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// RotationOverlap is how long the previous secret keeps signing after a rotation.
const RotationOverlap = 24 * time.Hour

// Errors.
var (
	ErrNotFound     = apperr.New(apperr.NotFound, "webhook_not_found", "No such webhook endpoint.")
	ErrInvalidURL   = apperr.New(apperr.Invalid, "invalid_webhook_url", "The webhook URL is not allowed.")
	ErrInvalidType  = apperr.New(apperr.Invalid, "invalid_event_type", "An event type in the filter is not one of the documented types.")
	ErrInvalidDesc  = apperr.New(apperr.Invalid, "invalid_description", "A description is at most 500 characters.")
	ErrNoSecretKey  = apperr.New(apperr.Unavailable, "secret_key_missing", "GATEHOUSE_SECRET_KEY must be set before webhooks can be created (it encrypts their secrets).")
	ErrNotRetryable = apperr.New(apperr.Conflict, "delivery_not_failed", "Only a failed delivery can be retried.")
	ErrURLRequired  = apperr.New(apperr.Invalid, "invalid_webhook_url", "A webhook needs a URL.")
)

// Owner says whose endpoints: a tenant's, or the operator's (Platform).
type Owner struct {
	TenantID uuid.UUID
}

// Platform is the operator.
var Platform = Owner{}

func (o Owner) platform() bool { return o.TenantID == uuid.Nil }

// Input creates or (PATCH: nil fields keep their value) changes an endpoint.
type Input struct {
	URL         *string   `json:"url"`
	Description *string   `json:"description"`
	EventTypes  *[]string `json:"event_types"`
	Enabled     *bool     `json:"enabled"`
}

// Created is an endpoint with its secret, shown this once.
type Created struct {
	Webhook Endpoint `json:"webhook"`
	Secret  string   `json:"secret"`
}

// Mailer enqueues a mail in the caller's transaction (mail.Outbox).
type Mailer interface {
	Enqueue(ctx context.Context, tx pgx.Tx, q *sqlcgen.Queries, m mail.Mail) error
}

// Deps are the service's dependencies.
type Deps struct {
	Store    *store.Store
	Box      *secretbox.Box
	Outbound *outbound.Client
	Mail     Mailer
	URLs     tenant.URLs
	Logger   *slog.Logger
	Now      func() time.Time
}

// Service manages endpoints and their deliveries.
type Service struct {
	store  *store.Store
	box    *secretbox.Box
	out    *outbound.Client
	mail   Mailer
	urls   tenant.URLs
	logger *slog.Logger
	now    func() time.Time
}

// NewService returns the service. Errors: a missing dependency.
func NewService(d Deps) (*Service, error) {
	if d.Store == nil || d.Box == nil || d.Outbound == nil || d.Mail == nil || d.Logger == nil {
		return nil, errors.New("webhooks: store, secret box, outbound client, mail outbox and logger are required")
	}
	if d.Now == nil {
		d.Now = time.Now
	}
	return &Service{store: d.Store, box: d.Box, out: d.Outbound, mail: d.Mail, urls: d.URLs, logger: d.Logger, now: d.Now}, nil
}

// in runs f in the owner's transaction: the tenant's, or a platform one.
func (s *Service) in(ctx context.Context, o Owner, f func(q *sqlcgen.Queries) error) error {
	if o.platform() {
		return s.store.InPlatform(ctx, f)
	}
	return s.store.InTenant(ctx, o.TenantID, f)
}

func secretAAD(o Owner) []byte { return []byte("webhook-secret:" + o.TenantID.String()) }

type settings struct {
	url, description string
	types            []string
	enabled          bool
}

func (s *Service) merge(cur settings, in Input) (settings, error) {
	if in.URL != nil {
		raw := strings.TrimSpace(*in.URL)
		if raw == "" || len(raw) > 2048 {
			return cur, ErrURLRequired
		}
		u, err := s.out.CheckURL(raw, "webhook URLs")
		if err != nil {
			return cur, apperr.New(apperr.Invalid, "invalid_webhook_url", "The webhook URL is not allowed: "+outbound.Reason(err)+".")
		}
		if !s.out.AllowPrivate() && !hostMayBePublic(u.Hostname()) {
			return cur, apperr.New(apperr.Invalid, "invalid_webhook_url", "The webhook URL is not allowed: "+outbound.Reason(&outbound.Error{Reason: "it names a private, loopback or link-local address"})+".")
		}
		cur.url = u.String()
	}
	if in.Description != nil {
		d := strings.TrimSpace(*in.Description)
		if utf8.RuneCountInString(d) > 500 || !utf8.ValidString(d) {
			return cur, ErrInvalidDesc
		}
		cur.description = d
	}
	if in.EventTypes != nil {
		types := []string{}
		for _, t := range *in.EventTypes {
			if !events.Known(t) {
				return cur, ErrInvalidType
			}
			if !slices.Contains(types, t) {
				types = append(types, t)
			}
		}
		cur.types = types
	}
	if in.Enabled != nil {
		cur.enabled = *in.Enabled
	}
	if cur.url == "" {
		return cur, ErrURLRequired
	}
	return cur, nil
}

// List returns the owner's endpoints.
func (s *Service) List(ctx context.Context, o Owner) ([]Endpoint, error) {
	out := []Endpoint{}
	err := s.in(ctx, o, func(q *sqlcgen.Queries) error {
		if o.platform() {
			rows, err := q.ListPlatformWebhookEndpoints(ctx)
			for _, r := range rows {
				out = append(out, platformRow(r).Endpoint)
			}
			return err
		}
		rows, err := q.ListWebhookEndpoints(ctx)
		for _, r := range rows {
			out = append(out, tenantRow(r).Endpoint)
		}
		return err
	})
	return out, err
}

func get(ctx context.Context, q *sqlcgen.Queries, o Owner, id uuid.UUID) (row, error) {
	var r row
	if o.platform() {
		p, err := q.GetPlatformWebhookEndpoint(ctx, id)
		r = platformRow(p)
		if errors.Is(err, store.ErrNotFound) {
			return r, ErrNotFound
		}
		return r, err
	}
	t, err := q.GetWebhookEndpoint(ctx, id)
	r = tenantRow(t)
	if errors.Is(err, store.ErrNotFound) {
		return r, ErrNotFound
	}
	return r, err
}

// Get returns one endpoint. Errors: webhook_not_found.
func (s *Service) Get(ctx context.Context, o Owner, id uuid.UUID) (Endpoint, error) {
	var out Endpoint
	err := s.in(ctx, o, func(q *sqlcgen.Queries) error {
		r, err := get(ctx, q, o, id)
		out = r.Endpoint
		return err
	})
	return out, err
}

// Create adds an endpoint and returns it with its secret (shown once). Errors:
// invalid_webhook_url, invalid_event_type, invalid_description, secret_key_missing.
func (s *Service) Create(ctx context.Context, o Owner, in Input, who audit.Who) (Created, error) {
	return s.create(ctx, o, in, nil, "", who)
}

func (s *Service) create(ctx context.Context, o Owner, in Input, declared *string, secret string, who audit.Who) (Created, error) {
	if !s.box.Enabled() {
		return Created{}, ErrNoSecretKey
	}
	st, err := s.merge(settings{enabled: true, types: []string{}}, in)
	if err != nil {
		return Created{}, err
	}
	if secret == "" {
		secret = newSecret()
	} else if _, err := secretKey(secret); err != nil {
		return Created{}, apperr.New(apperr.Invalid, "invalid_webhook_secret", "A webhook secret is whsec_ followed by 24 to 64 bytes in base64.")
	}
	keyID, sealed, err := s.box.Seal([]byte(secret), secretAAD(o))
	if err != nil {
		return Created{}, fmt.Errorf("seal webhook secret: %w", err)
	}
	var out Created
	err = s.in(ctx, o, func(q *sqlcgen.Queries) error {
		if o.platform() {
			r, err := q.InsertPlatformWebhookEndpoint(ctx, sqlcgen.InsertPlatformWebhookEndpointParams{URL: st.url, Description: st.description,
				EventTypes: st.types, Enabled: st.enabled, SecretKeyID: keyID, SecretSealed: sealed})
			out = Created{Webhook: platformRow(r).Endpoint, Secret: secret}
			return err
		}
		r, err := q.InsertWebhookEndpoint(ctx, sqlcgen.InsertWebhookEndpointParams{URL: st.url, Description: st.description,
			EventTypes: st.types, Enabled: st.enabled, SecretKeyID: keyID, SecretSealed: sealed, DeclaredName: declared})
		if err != nil {
			return err
		}
		out = Created{Webhook: tenantRow(r).Endpoint, Secret: secret}
		return audit.Record(ctx, q, who, audit.Event{Action: audit.WebhookCreated, SubjectLabel: r.URL,
			Details: map[string]any{"webhook_id": r.ID, "url": r.URL, "event_types": r.EventTypes, "enabled": r.Enabled}})
	})
	if err == nil && o.platform() {
		s.logger.InfoContext(ctx, "operator webhook created", "webhook_id", out.Webhook.ID)
	}
	return out, err
}

// Update changes an endpoint (nil fields keep their value). Errors: webhook_not_found and
// those of Create.
func (s *Service) Update(ctx context.Context, o Owner, id uuid.UUID, in Input, who audit.Who) (Endpoint, error) {
	var out Endpoint
	err := s.in(ctx, o, func(q *sqlcgen.Queries) error {
		cur, err := get(ctx, q, o, id)
		if err != nil {
			return err
		}
		st, err := s.merge(settings{url: cur.URL, description: cur.Description, types: cur.EventTypes, enabled: cur.Enabled}, in)
		if err != nil {
			return err
		}
		if o.platform() {
			r, err := q.UpdatePlatformWebhookEndpoint(ctx, sqlcgen.UpdatePlatformWebhookEndpointParams{ID: id, URL: st.url,
				Description: st.description, EventTypes: st.types, Enabled: st.enabled})
			out = platformRow(r).Endpoint
			return err
		}
		r, err := q.UpdateWebhookEndpoint(ctx, sqlcgen.UpdateWebhookEndpointParams{ID: id, URL: st.url,
			Description: st.description, EventTypes: st.types, Enabled: st.enabled})
		if err != nil {
			return err
		}
		out = tenantRow(r).Endpoint
		return audit.Record(ctx, q, who, audit.Event{Action: audit.WebhookUpdated, SubjectLabel: r.URL,
			Details: map[string]any{"webhook_id": r.ID, "url": r.URL, "event_types": r.EventTypes, "enabled": r.Enabled}})
	})
	return out, err
}

// Delete removes an endpoint and its deliveries. Errors: webhook_not_found.
func (s *Service) Delete(ctx context.Context, o Owner, id uuid.UUID, who audit.Who) error {
	return s.in(ctx, o, func(q *sqlcgen.Queries) error {
		var n int64
		var err error
		if o.platform() {
			n, err = q.DeletePlatformWebhookEndpoint(ctx, id)
		} else {
			n, err = q.DeleteWebhookEndpoint(ctx, id)
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrNotFound
		}
		if o.platform() {
			s.logger.InfoContext(ctx, "operator webhook deleted", "webhook_id", id)
			return nil
		}
		if err := q.DeleteEndpointDeliveries(ctx, sqlcgen.DeleteEndpointDeliveriesParams{EndpointID: id}); err != nil {
			return err
		}
		return audit.Record(ctx, q, who, audit.Event{Action: audit.WebhookDeleted, Details: map[string]any{"webhook_id": id}})
	})
}

// Rotate gives the endpoint a new secret (returned this once); the previous one keeps
// signing, beside the new, for RotationOverlap. Errors: webhook_not_found.
func (s *Service) Rotate(ctx context.Context, o Owner, id uuid.UUID, who audit.Who) (Created, error) {
	secret := newSecret()
	keyID, sealed, err := s.box.Seal([]byte(secret), secretAAD(o))
	if err != nil {
		return Created{}, fmt.Errorf("seal webhook secret: %w", err)
	}
	until := s.now().Add(RotationOverlap)
	var out Created
	err = s.in(ctx, o, func(q *sqlcgen.Queries) error {
		if o.platform() {
			r, err := q.RotatePlatformWebhookSecret(ctx, sqlcgen.RotatePlatformWebhookSecretParams{ID: id, SecretKeyID: keyID, SecretSealed: sealed, PreviousUntil: &until})
			if errors.Is(err, store.ErrNotFound) {
				return ErrNotFound
			}
			out = Created{Webhook: platformRow(r).Endpoint, Secret: secret}
			return err
		}
		r, err := q.RotateWebhookSecret(ctx, sqlcgen.RotateWebhookSecretParams{ID: id, SecretKeyID: keyID, SecretSealed: sealed, PreviousUntil: &until})
		if errors.Is(err, store.ErrNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		out = Created{Webhook: tenantRow(r).Endpoint, Secret: secret}
		return audit.Record(ctx, q, who, audit.Event{Action: audit.WebhookSecretRotated, SubjectLabel: r.URL,
			Details: map[string]any{"webhook_id": r.ID, "previous_secret_expires_at": until}})
	})
	return out, err
}

// Deliveries lists an endpoint's latest deliveries, newest first (an operator's: of every
// tenant, each labelled with it). Errors: webhook_not_found.
func (s *Service) Deliveries(ctx context.Context, o Owner, id uuid.UUID, limit int) ([]Delivery, error) {
	if limit <= 0 || limit > 200 {
		limit = 50
	}
	if o.platform() {
		return s.platformDeliveries(ctx, id, limit)
	}
	out := []Delivery{}
	err := s.in(ctx, o, func(q *sqlcgen.Queries) error {
		if _, err := get(ctx, q, o, id); err != nil {
			return err
		}
		rows, err := q.ListDeliveries(ctx, sqlcgen.ListDeliveriesParams{EndpointID: id, Lim: int32(limit)})
		for _, r := range rows {
			out = append(out, deliveryFrom(r))
		}
		return err
	})
	return out, err
}

// Retry sends a failed delivery again. Errors: webhook_not_found, delivery_not_failed.
func (s *Service) Retry(ctx context.Context, o Owner, id, delivery uuid.UUID, who audit.Who) error {
	if o.platform() {
		return s.platformRetry(ctx, id, delivery)
	}
	return s.in(ctx, o, func(q *sqlcgen.Queries) error {
		if _, err := get(ctx, q, o, id); err != nil {
			return err
		}
		n, err := q.RetryDelivery(ctx, sqlcgen.RetryDeliveryParams{ID: delivery, EndpointID: id})
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrNotRetryable
		}
		return audit.Record(ctx, q, who, audit.Event{Action: audit.WebhookRetried, Details: map[string]any{"webhook_id": id, "delivery_id": delivery}})
	})
}

// RetryFailed sends every failed delivery of the endpoint again and returns how many.
// Errors: webhook_not_found.
func (s *Service) RetryFailed(ctx context.Context, o Owner, id uuid.UUID, who audit.Who) (int, error) {
	if o.platform() {
		return s.platformRetryFailed(ctx, id)
	}
	var n int64
	err := s.in(ctx, o, func(q *sqlcgen.Queries) error {
		if _, err := get(ctx, q, o, id); err != nil {
			return err
		}
		var err error
		if n, err = q.RetryFailedDeliveries(ctx, sqlcgen.RetryFailedDeliveriesParams{EndpointID: id}); err != nil {
			return err
		}
		return audit.Record(ctx, q, who, audit.Event{Action: audit.WebhookRetried, Details: map[string]any{"webhook_id": id, "count": n}})
	})
	return int(n), err
}

// Test sends a webhook.test event to the tenant's endpoint only and returns its delivery
// id (an operator's endpoint: PlatformTest, which names the tenant). Errors:
// webhook_not_found, webhook_test_tenant_required.
func (s *Service) Test(ctx context.Context, o Owner, id uuid.UUID, who audit.Who) (uuid.UUID, error) {
	if o.platform() {
		return uuid.Nil, ErrTestTenant
	}
	var delivery uuid.UUID
	err := s.in(ctx, o, func(q *sqlcgen.Queries) error {
		if _, err := get(ctx, q, o, id); err != nil {
			return err
		}
		ev, err := events.Emit(ctx, q, events.Event{Type: events.WebhookTest, Data: events.Test{WebhookID: id, Message: "A test event from Gatehouse."}})
		if err != nil {
			return err
		}
		d, err := q.InsertDelivery(ctx, sqlcgen.InsertDeliveryParams{EventID: ev.ID, EndpointID: id})
		if err != nil {
			return err
		}
		delivery = d.ID
		return audit.Record(ctx, q, who, audit.Event{Action: audit.WebhookTested, Details: map[string]any{"webhook_id": id, "event_id": ev.ID}})
	})
	return delivery, err
}
