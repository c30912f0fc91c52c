-- Foundation: global tenants table and the first tenant-scoped table (users).
-- Runs as gatehouse_owner (see internal/migrate): everything created here is owned by the
-- owner role, and gatehouse_app receives DML only, through the default privileges below.

ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO gatehouse_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA public
    GRANT USAGE, SELECT ON SEQUENCES TO gatehouse_app;

-- gatehouse_app reads the migration version for /readyz; it never writes it.
GRANT SELECT ON schema_migrations TO gatehouse_app;

CREATE TABLE tenants (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    slug        text        NOT NULL UNIQUE
                            CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$'),
    name        text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    status      text        NOT NULL DEFAULT 'active'
                            CHECK (status IN ('active', 'suspended')),
    policy      jsonb       NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(policy) = 'object'),
    purge_after timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE tenants IS 'Global: one row per tenant. Not tenant-scoped, no RLS.';
COMMENT ON COLUMN tenants.purge_after IS 'Set by tenant delete: every row of the tenant is purged after this time.';

CREATE TABLE users (
    tenant_id         uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    id                uuid        NOT NULL DEFAULT gen_random_uuid(),
    email             text        NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
    name              text        NOT NULL DEFAULT '' CHECK (length(name) <= 200),
    status            text        NOT NULL DEFAULT 'active'
                                  CHECK (status IN ('active', 'disabled', 'pending_deletion')),
    email_verified_at timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);

CREATE UNIQUE INDEX users_tenant_email_key ON users (tenant_id, lower(email));

ALTER TABLE users ENABLE ROW LEVEL SECURITY;
ALTER TABLE users FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON users
    USING (tenant_id = NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid);
