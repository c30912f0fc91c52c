ALTER TABLE deletion_receipts DROP COLUMN IF EXISTS acknowledged_by;
ALTER TABLE deletion_receipts DROP COLUMN IF EXISTS deleted_event_id;
DROP TABLE IF EXISTS webhook_deliveries;
DROP FUNCTION IF EXISTS webhook_delivery_enqueue();
DROP TABLE IF EXISTS platform_webhook_endpoints;
DROP TABLE IF EXISTS webhook_endpoints;
ALTER TABLE tenants DROP COLUMN IF EXISTS events_retention_days;
