-- SCIM 2.0 provisioning (issue 19, docs/scim.md): directories that an IdP (Okta, Entra ID)
-- pushes users and groups into, their bearer tokens, the SCIM view of the users they manage,
-- their groups with members, and a request log. Every table is tenant-scoped under forced
-- row-level security: a token, user or group of tenant A does not exist inside tenant B.

-- A directory: one IdP's provisioning endpoint. It may be tied to an SSO connection, whose
-- group → role mapping then applies to the directory's groups. delete_mode says what a SCIM
-- DELETE does: start the tenant's deletion lifecycle (grace, then purge) or purge at once.
CREATE TABLE directories (
    tenant_id         uuid        NOT NULL DEFAULT NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid REFERENCES tenants (id) ON DELETE CASCADE,
    id                uuid        NOT NULL DEFAULT gen_random_uuid(),
    name              text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    provider          text        NOT NULL DEFAULT 'generic' CHECK (provider IN ('generic', 'okta', 'entra')),
    sso_connection_id uuid,
    delete_mode       text        NOT NULL DEFAULT 'lifecycle' CHECK (delete_mode IN ('lifecycle', 'purge')),
    rate_per_minute   integer     NOT NULL DEFAULT 600 CHECK (rate_per_minute BETWEEN 1 AND 100000),
    last_sync_at      timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, sso_connection_id) REFERENCES sso_connections (tenant_id, id) ON DELETE SET NULL (sso_connection_id)
);

-- Bearer tokens: 256-bit random values stored as SHA-256, shown once. Several per
-- directory (rotation without downtime); a revoked token stops at once.
CREATE TABLE directory_tokens (
    tenant_id    uuid        NOT NULL DEFAULT NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid REFERENCES tenants (id) ON DELETE CASCADE,
    id           uuid        NOT NULL DEFAULT gen_random_uuid(),
    directory_id uuid        NOT NULL,
    token_hash   bytea       NOT NULL CHECK (length(token_hash) = 32),
    hint         text        NOT NULL CHECK (length(hint) <= 16),
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, token_hash),
    FOREIGN KEY (tenant_id, directory_id) REFERENCES directories (tenant_id, id) ON DELETE CASCADE
);

-- The SCIM side of a user a directory manages: its userName, externalId and the attributes
-- Gatehouse keeps beside the account (name parts, emails, enterprise fields). version is
-- the resource's ETag counter. A user belongs to at most one directory.
CREATE TABLE directory_users (
    tenant_id    uuid        NOT NULL DEFAULT NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid REFERENCES tenants (id) ON DELETE CASCADE,
    user_id      uuid        NOT NULL,
    directory_id uuid        NOT NULL,
    user_name    text        NOT NULL CHECK (length(user_name) BETWEEN 1 AND 320),
    external_id  text        CHECK (length(external_id) <= 320),
    attributes   jsonb       NOT NULL DEFAULT '{}',
    version      bigint      NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, directory_id) REFERENCES directories (tenant_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX directory_users_user_name_key ON directory_users (tenant_id, lower(user_name));
CREATE INDEX directory_users_directory_idx ON directory_users (tenant_id, directory_id);
CREATE INDEX directory_users_external_idx ON directory_users (tenant_id, external_id) WHERE external_id IS NOT NULL;

-- Groups a directory pushes, and their members.
CREATE TABLE directory_groups (
    tenant_id    uuid        NOT NULL DEFAULT NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid REFERENCES tenants (id) ON DELETE CASCADE,
    id           uuid        NOT NULL DEFAULT gen_random_uuid(),
    directory_id uuid        NOT NULL,
    display_name text        NOT NULL CHECK (length(display_name) BETWEEN 1 AND 256),
    external_id  text        CHECK (length(external_id) <= 320),
    version      bigint      NOT NULL DEFAULT 1,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, directory_id) REFERENCES directories (tenant_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX directory_groups_name_key ON directory_groups (tenant_id, directory_id, lower(display_name));

CREATE TABLE directory_group_members (
    tenant_id uuid NOT NULL DEFAULT NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid REFERENCES tenants (id) ON DELETE CASCADE,
    group_id  uuid NOT NULL,
    user_id   uuid NOT NULL,
    PRIMARY KEY (tenant_id, group_id, user_id),
    FOREIGN KEY (tenant_id, group_id) REFERENCES directory_groups (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX directory_group_members_user_idx ON directory_group_members (tenant_id, user_id);

-- The request log: what each SCIM request did (never a token nor a body). user_id names the
-- user affected (no foreign key: a DELETE outlives it; erased at purge). Kept 30 days.
CREATE TABLE directory_requests (
    tenant_id    uuid        NOT NULL DEFAULT NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid REFERENCES tenants (id) ON DELETE CASCADE,
    id           uuid        NOT NULL DEFAULT gen_random_uuid(),
    directory_id uuid        NOT NULL,
    method       text        NOT NULL CHECK (length(method) <= 10),
    path         text        NOT NULL CHECK (length(path) <= 512),
    status       integer     NOT NULL,
    scim_type    text        NOT NULL DEFAULT '' CHECK (length(scim_type) <= 32),
    latency_ms   integer     NOT NULL,
    user_id      uuid,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, directory_id) REFERENCES directories (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX directory_requests_recent_idx ON directory_requests (tenant_id, directory_id, created_at DESC);
CREATE INDEX directory_requests_user_idx ON directory_requests (tenant_id, user_id) WHERE user_id IS NOT NULL;

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['directories', 'directory_tokens', 'directory_users', 'directory_groups', 'directory_group_members', 'directory_requests'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
            USING (tenant_id = NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid)
            WITH CHECK (tenant_id = NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid)$p$, t);
    END LOOP;
END $$;
