-- Webhook deliveries in order per user (issue 18, docs/events.md "Order"): a delivery of an
-- event about a user does not start while an earlier delivery (lower event seq) of the same
-- endpoint and user is pending. The worker parks such a delivery (held) instead of polling;
-- when the earlier one ends (delivered, failed, or deleted with its event or endpoint), a
-- trigger releases the next one in the same transaction, which enqueues its River job.
--
-- user_id and event_seq are copied from the event when the delivery is written, so the
-- "earlier pending" check is one look-up in a small partial index (pending rows only).
ALTER TABLE webhook_deliveries ADD COLUMN user_id uuid;
ALTER TABLE webhook_deliveries ADD COLUMN event_seq bigint;
-- Parked behind an earlier pending delivery of the same (endpoint, user): no River job.
ALTER TABLE webhook_deliveries ADD COLUMN held boolean NOT NULL DEFAULT false;

-- Deliveries written before this migration that may still be sent (pending, or failed and
-- retried by hand) get their event's user and seq. Row security is lifted for the owner for
-- the length of this statement only (a superuser is not subject to it anyway).
ALTER TABLE webhook_deliveries NO FORCE ROW LEVEL SECURITY;
ALTER TABLE events NO FORCE ROW LEVEL SECURITY;
UPDATE webhook_deliveries d SET user_id = e.user_id, event_seq = e.seq
  FROM events e
 WHERE e.tenant_id = d.tenant_id AND e.id = d.event_id AND d.state <> 'delivered';
ALTER TABLE events FORCE ROW LEVEL SECURITY;
ALTER TABLE webhook_deliveries FORCE ROW LEVEL SECURITY;

CREATE INDEX webhook_deliveries_order_idx ON webhook_deliveries (tenant_id, endpoint_id, user_id, event_seq)
    WHERE state = 'pending' AND user_id IS NOT NULL;

-- The advisory lock both sides take (the worker before it parks a delivery, the trigger
-- before it releases one), so that a delivery is never parked just after the release that
-- should have woken it.
CREATE FUNCTION webhook_order_key(endpoint_id uuid, user_id uuid) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, pg_temp
RETURN hashtextextended(endpoint_id::text || user_id::text, 180023);

-- A pending delivery that is not held gets its River job: when written, when set back to
-- pending (a retry), and when released.
CREATE OR REPLACE FUNCTION webhook_delivery_enqueue() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF NEW.state = 'pending' AND NOT NEW.held
       AND (TG_OP = 'INSERT' OR OLD.state <> 'pending' OR OLD.held) THEN
        INSERT INTO public.river_job (args, kind, max_attempts, priority, queue, state, scheduled_at)
        VALUES (jsonb_build_object('tenant_id', NEW.tenant_id, 'delivery_id', NEW.id),
                'webhook.deliver', 12, 1, 'webhooks', 'available', now());
        PERFORM pg_notify('river_insert', json_build_object('queue', 'webhooks')::text);
    END IF;
    RETURN NULL;
END
$$;
DROP TRIGGER webhook_delivery_enqueue ON webhook_deliveries;
CREATE TRIGGER webhook_delivery_enqueue AFTER INSERT OR UPDATE OF state, held ON webhook_deliveries
    FOR EACH ROW EXECUTE FUNCTION webhook_delivery_enqueue();

-- A pending delivery of a user's event that ends (delivered, failed, deleted) releases the
-- next pending one of its endpoint and user when that one is held. Runs as the caller, in
-- the caller's tenant (row security applies).
CREATE FUNCTION webhook_delivery_release() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
    IF OLD.state = 'pending' AND OLD.user_id IS NOT NULL AND (TG_OP = 'DELETE' OR NEW.state <> 'pending') THEN
        PERFORM pg_advisory_xact_lock(public.webhook_order_key(OLD.endpoint_id, OLD.user_id));
        UPDATE public.webhook_deliveries SET held = false
         WHERE tenant_id = OLD.tenant_id AND held
           AND id = (SELECT n.id FROM public.webhook_deliveries n
                      WHERE n.tenant_id = OLD.tenant_id AND n.endpoint_id = OLD.endpoint_id
                        AND n.user_id = OLD.user_id AND n.state = 'pending' AND n.platform = OLD.platform
                      ORDER BY n.event_seq LIMIT 1);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER webhook_delivery_release AFTER UPDATE OF state OR DELETE ON webhook_deliveries
    FOR EACH ROW EXECUTE FUNCTION webhook_delivery_release();
