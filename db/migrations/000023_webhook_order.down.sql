DROP TRIGGER IF EXISTS webhook_delivery_release ON webhook_deliveries;
DROP FUNCTION IF EXISTS webhook_delivery_release();
-- Held deliveries have no job: give them one (the enqueue trigger) before the column goes.
ALTER TABLE webhook_deliveries NO FORCE ROW LEVEL SECURITY;
UPDATE webhook_deliveries SET held = false WHERE held;
ALTER TABLE webhook_deliveries FORCE ROW LEVEL SECURITY;
DROP TRIGGER IF EXISTS webhook_delivery_enqueue ON webhook_deliveries;
CREATE OR REPLACE FUNCTION webhook_delivery_enqueue() RETURNS trigger
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
DROP INDEX IF EXISTS webhook_deliveries_order_idx;
DROP FUNCTION IF EXISTS webhook_order_key(uuid, uuid);
ALTER TABLE webhook_deliveries DROP COLUMN IF EXISTS held;
ALTER TABLE webhook_deliveries DROP COLUMN IF EXISTS event_seq;
ALTER TABLE webhook_deliveries DROP COLUMN IF EXISTS user_id;
