-- Webhooks (internal/webhooks, docs/events.md): endpoints per tenant and per operator, and
-- one delivery row per (event, endpoint), written by events.Emit in the transaction of the
-- event. A trigger enqueues the River job of each pending delivery in the same transaction
-- (River accepts jobs inserted in SQL, as its non-Go clients do), so a delivery exists, and
-- is worked, exactly when its event committed.

ALTER TABLE tenants ADD COLUMN events_retention_days integer NOT NULL DEFAULT 30
    CHECK (events_retention_days BETWEEN 1 AND 3650);

CREATE TABLE webhook_endpoints (
    tenant_id        uuid        NOT NULL DEFAULT NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid REFERENCES tenants (id) ON DELETE CASCADE,
    id               uuid        NOT NULL DEFAULT gen_random_uuid(),
    url              text        NOT NULL CHECK (length(url) BETWEEN 8 AND 2048),
    description      text        NOT NULL DEFAULT '' CHECK (length(description) <= 500),
    event_types      text[]      NOT NULL DEFAULT '{}',
    enabled          boolean     NOT NULL DEFAULT true,
    -- The whsec_ secret, sealed (internal/secretbox); the previous one signs too until
    -- previous_until (rotation overlap).
    secret_key_id    text        NOT NULL,
    secret_sealed    bytea       NOT NULL,
    previous_key_id  text,
    previous_sealed  bytea,
    previous_until   timestamptz,
    -- Set at the first failed attempt after a success; the endpoint is disabled when it
    -- has failed for three days in a row.
    failing_since    timestamptz,
    disabled_reason  text,
    -- Declared in a tenant file (gatehouse tenant apply): the name there.
    declared_name    text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX webhook_endpoints_declared_key ON webhook_endpoints (tenant_id, declared_name) WHERE declared_name IS NOT NULL;
ALTER TABLE webhook_endpoints ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_endpoints FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON webhook_endpoints
    USING (tenant_id = NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid);

-- The operator's endpoints (the SaaS's own backend), receiving every tenant's events.
-- Global: operator configuration, no tenant data.
CREATE TABLE platform_webhook_endpoints (
    id               uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    url              text        NOT NULL CHECK (length(url) BETWEEN 8 AND 2048),
    description      text        NOT NULL DEFAULT '' CHECK (length(description) <= 500),
    event_types      text[]      NOT NULL DEFAULT '{}',
    enabled          boolean     NOT NULL DEFAULT true,
    secret_key_id    text        NOT NULL,
    secret_sealed    bytea       NOT NULL,
    previous_key_id  text,
    previous_sealed  bytea,
    previous_until   timestamptz,
    failing_since    timestamptz,
    disabled_reason  text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE webhook_deliveries (
    tenant_id        uuid        NOT NULL DEFAULT NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid REFERENCES tenants (id) ON DELETE CASCADE,
    id               uuid        NOT NULL DEFAULT gen_random_uuid(),
    event_id         uuid        NOT NULL,
    -- A webhook_endpoints id of the tenant, or (platform) a platform_webhook_endpoints id.
    endpoint_id      uuid        NOT NULL,
    platform         boolean     NOT NULL DEFAULT false,
    state            text        NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz DEFAULT now(),
    last_attempt_at  timestamptz,
    last_status      integer,
    last_latency_ms  integer,
    -- The first KiB of the last answer, or the reason the request failed.
    last_response    text        CHECK (length(last_response) <= 1024),
    delivered_at     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, event_id) REFERENCES events (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (tenant_id, endpoint_id, created_at DESC);
CREATE INDEX webhook_deliveries_event_idx ON webhook_deliveries (tenant_id, event_id);
CREATE INDEX webhook_deliveries_pending_idx ON webhook_deliveries (state) WHERE state = 'pending';
ALTER TABLE webhook_deliveries ENABLE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON webhook_deliveries
    USING (tenant_id = NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid);

-- A pending delivery (new, or set back to pending by a retry) gets its River job in the
-- same transaction. Runs as the caller (gatehouse_app, which may insert River jobs).
CREATE FUNCTION webhook_delivery_enqueue() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF NEW.state = 'pending' AND (TG_OP = 'INSERT' OR OLD.state <> 'pending') THEN
        INSERT INTO public.river_job (args, kind, max_attempts, priority, queue, state, scheduled_at)
        VALUES (jsonb_build_object('tenant_id', NEW.tenant_id, 'delivery_id', NEW.id),
                'webhook.deliver', 12, 1, 'webhooks', 'available', now());
        PERFORM pg_notify('river_insert', json_build_object('queue', 'webhooks')::text);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER webhook_delivery_enqueue AFTER INSERT OR UPDATE OF state ON webhook_deliveries
    FOR EACH ROW EXECUTE FUNCTION webhook_delivery_enqueue();

-- The deletion receipt names the endpoints that acknowledged the user.deleted event.
ALTER TABLE deletion_receipts ADD COLUMN deleted_event_id uuid;
ALTER TABLE deletion_receipts ADD COLUMN acknowledged_by jsonb NOT NULL DEFAULT '[]';
