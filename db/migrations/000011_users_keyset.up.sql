-- The admin user directory pages newest first by (created_at, id): an index in that order
-- serves the keyset condition (created_at, id) < (cursor) without sorting the tenant.
CREATE INDEX users_directory_idx ON users (tenant_id, created_at DESC, id DESC);
