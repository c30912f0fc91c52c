-- Webhooks (internal/webhooks). Tenant-scoped but for the platform_* queries, which read
-- the operator's global endpoints.

-- name: FanOutEvent :execrows
-- One pending delivery per enabled endpoint whose filter takes the type: the tenant's and
-- the operator's, with the event's user and seq (the order per user). The insert trigger
-- enqueues each delivery's job.
INSERT INTO webhook_deliveries (event_id, endpoint_id, platform, user_id, event_seq)
SELECT @event_id::uuid, e.id, false, sqlc.narg('user_id')::uuid, sqlc.narg('event_seq')::bigint FROM webhook_endpoints e
 WHERE e.enabled AND (cardinality(e.event_types) = 0 OR @type::text = ANY (e.event_types))
UNION ALL
SELECT @event_id::uuid, p.id, true, sqlc.narg('user_id')::uuid, sqlc.narg('event_seq')::bigint FROM platform_webhook_endpoints p
 WHERE p.enabled AND (cardinality(p.event_types) = 0 OR @type::text = ANY (p.event_types));

-- name: InsertDelivery :one
INSERT INTO webhook_deliveries (event_id, endpoint_id, platform) VALUES (@event_id, @endpoint_id, @platform)
RETURNING *;

-- name: InsertWebhookEndpoint :one
INSERT INTO webhook_endpoints (url, description, event_types, enabled, secret_key_id, secret_sealed, declared_name)
VALUES (@url, @description, @event_types, @enabled, @secret_key_id, @secret_sealed, sqlc.narg('declared_name'))
RETURNING *;

-- name: ListWebhookEndpoints :many
SELECT * FROM webhook_endpoints ORDER BY created_at, id;

-- name: GetWebhookEndpoint :one
SELECT * FROM webhook_endpoints WHERE id = @id;

-- name: UpdateWebhookEndpoint :one
-- Enabling again clears the failure streak and the reason it was disabled.
UPDATE webhook_endpoints SET url = @url, description = @description, event_types = @event_types, enabled = @enabled,
       failing_since = CASE WHEN @enabled AND NOT enabled THEN NULL ELSE failing_since END,
       disabled_reason = CASE WHEN @enabled THEN NULL ELSE disabled_reason END,
       updated_at = now()
WHERE id = @id
RETURNING *;

-- name: RotateWebhookSecret :one
UPDATE webhook_endpoints SET previous_key_id = secret_key_id, previous_sealed = secret_sealed, previous_until = @previous_until,
       secret_key_id = @secret_key_id, secret_sealed = @secret_sealed, updated_at = now()
WHERE id = @id
RETURNING *;

-- name: DeleteWebhookEndpoint :execrows
DELETE FROM webhook_endpoints WHERE id = @id;

-- name: DeleteEndpointDeliveries :exec
DELETE FROM webhook_deliveries WHERE endpoint_id = @endpoint_id AND platform = @platform;

-- name: EndpointFailed :one
-- Records a failed attempt: the streak starts now unless it is running; returns the
-- endpoint's streak start.
UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, now()) WHERE id = @id
RETURNING failing_since::timestamptz;

-- name: EndpointSucceeded :exec
UPDATE webhook_endpoints SET failing_since = NULL WHERE id = @id AND failing_since IS NOT NULL;

-- name: DisableWebhookEndpoint :execrows
UPDATE webhook_endpoints SET enabled = false, disabled_reason = @reason, updated_at = now() WHERE id = @id AND enabled;

-- name: InsertPlatformWebhookEndpoint :one
INSERT INTO platform_webhook_endpoints (url, description, event_types, enabled, secret_key_id, secret_sealed)
VALUES (@url, @description, @event_types, @enabled, @secret_key_id, @secret_sealed)
RETURNING *;

-- name: ListPlatformWebhookEndpoints :many
SELECT * FROM platform_webhook_endpoints ORDER BY created_at, id;

-- name: GetPlatformWebhookEndpoint :one
SELECT * FROM platform_webhook_endpoints WHERE id = @id;

-- name: UpdatePlatformWebhookEndpoint :one
UPDATE platform_webhook_endpoints SET url = @url, description = @description, event_types = @event_types, enabled = @enabled,
       failing_since = CASE WHEN @enabled AND NOT enabled THEN NULL ELSE failing_since END,
       disabled_reason = CASE WHEN @enabled THEN NULL ELSE disabled_reason END,
       updated_at = now()
WHERE id = @id
RETURNING *;

-- name: RotatePlatformWebhookSecret :one
UPDATE platform_webhook_endpoints SET previous_key_id = secret_key_id, previous_sealed = secret_sealed, previous_until = @previous_until,
       secret_key_id = @secret_key_id, secret_sealed = @secret_sealed, updated_at = now()
WHERE id = @id
RETURNING *;

-- name: DeletePlatformWebhookEndpoint :execrows
DELETE FROM platform_webhook_endpoints WHERE id = @id;

-- name: PlatformEndpointFailed :one
UPDATE platform_webhook_endpoints SET failing_since = COALESCE(failing_since, now()) WHERE id = @id
RETURNING failing_since::timestamptz;

-- name: PlatformEndpointSucceeded :exec
UPDATE platform_webhook_endpoints SET failing_since = NULL WHERE id = @id AND failing_since IS NOT NULL;

-- name: DisablePlatformWebhookEndpoint :execrows
UPDATE platform_webhook_endpoints SET enabled = false, disabled_reason = @reason, updated_at = now() WHERE id = @id AND enabled;

-- name: GetDeliveryWork :one
-- A delivery with its event, for the worker.
SELECT d.id, d.endpoint_id, d.platform, d.state, d.attempts, d.user_id, d.held, e.id AS event_id, e.type, e.occurred_at, e.data
  FROM webhook_deliveries d JOIN events e ON e.tenant_id = d.tenant_id AND e.id = d.event_id
 WHERE d.id = @id;

-- name: LockDeliveryOrder :exec
-- Serialises parking (HoldBehindEarlier) with the release trigger of migration 000023 for
-- one (endpoint, user), on every node.
SELECT pg_advisory_xact_lock(webhook_order_key(@endpoint_id::uuid, @user_id::uuid));

-- name: HoldBehindEarlier :execrows
-- Parks the delivery when an earlier delivery (lower event seq) of the same endpoint and
-- user is still pending (webhook_deliveries_order_idx); the trigger releases it when that
-- one ends. Run after LockDeliveryOrder, as its own statement (a fresh snapshot).
UPDATE webhook_deliveries d SET held = true
 WHERE d.id = @id AND d.state = 'pending' AND d.user_id IS NOT NULL
   AND EXISTS (SELECT 1 FROM webhook_deliveries p
                WHERE p.tenant_id = d.tenant_id AND p.endpoint_id = d.endpoint_id AND p.user_id = d.user_id
                  AND p.state = 'pending' AND p.event_seq < d.event_seq AND p.platform = d.platform);

-- name: RecordDeliveryAttempt :exec
UPDATE webhook_deliveries SET state = @state, attempts = attempts + 1, last_attempt_at = now(),
       last_status = sqlc.narg('last_status'), last_latency_ms = @last_latency_ms, last_response = @last_response,
       next_attempt_at = sqlc.narg('next_attempt_at'),
       delivered_at = CASE WHEN @state = 'delivered' THEN now() ELSE delivered_at END
WHERE id = @id AND state = 'pending';

-- name: ListDeliveries :many
SELECT d.id, d.event_id, e.type, d.state, d.attempts, d.last_status, d.last_latency_ms, d.last_response,
       d.last_attempt_at, d.next_attempt_at, d.delivered_at, d.created_at, d.held
  FROM webhook_deliveries d JOIN events e ON e.tenant_id = d.tenant_id AND e.id = d.event_id
 WHERE d.endpoint_id = @endpoint_id AND d.platform = @platform
 ORDER BY d.created_at DESC, d.id
 LIMIT @lim;

-- name: RetryDelivery :execrows
-- A failed delivery goes back to pending (its trigger enqueues a new job).
UPDATE webhook_deliveries SET state = 'pending', held = false, next_attempt_at = now()
WHERE id = @id AND endpoint_id = @endpoint_id AND platform = @platform AND state = 'failed';

-- name: RetryFailedDeliveries :execrows
UPDATE webhook_deliveries SET state = 'pending', held = false, next_attempt_at = now()
WHERE endpoint_id = @endpoint_id AND platform = @platform AND state = 'failed';

-- name: ExpireEvents :execrows
-- Retention (housekeeping): events older than the tenant's events_retention_days, with
-- their deliveries.
DELETE FROM events
WHERE occurred_at < sqlc.arg(at)::timestamptz - make_interval(days => (SELECT t.events_retention_days FROM tenants t
                                                   WHERE t.id = NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid));

-- name: AcknowledgeDeletion :exec
-- The receipt of a purge names each endpoint that acknowledged its user.deleted.
UPDATE deletion_receipts SET acknowledged_by = acknowledged_by || jsonb_build_array(jsonb_build_object(
           'endpoint_id', @endpoint_id::uuid, 'platform', @platform::boolean, 'url', @url::text, 'at', now()))
WHERE deleted_event_id = @event_id;

-- name: LinkDeletionReceipt :exec
UPDATE deletion_receipts SET deleted_event_id = @event_id WHERE user_ref = @user_ref AND deleted_event_id IS NULL;
