-- Per-tenant SAML SSO: connections (Gatehouse is the service provider), email domains
-- routed to them, SSO identities (connection, NameID) → user, pending AuthnRequests,
-- the assertion replay cache and the per-connection attempt trace.

CREATE TABLE sso_connections (
    tenant_id           uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE
                                    DEFAULT NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid,
    id                  uuid        NOT NULL DEFAULT gen_random_uuid(),
    slug                text        NOT NULL CHECK (slug ~ '^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$'),
    name                text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    provider            text        NOT NULL DEFAULT 'generic' CHECK (provider IN ('okta', 'entra', 'google', 'adfs', 'generic', 'dev')),
    enabled             boolean     NOT NULL DEFAULT true,
    -- The IdP as Gatehouse trusts it: the metadata document (pasted, uploaded, fetched
    -- or generated from manual fields) and what was read out of it.
    idp_metadata        text        NOT NULL CHECK (length(idp_metadata) <= 524288),
    idp_entity_id       text        NOT NULL CHECK (length(idp_entity_id) BETWEEN 1 AND 1024),
    idp_cert_not_after  timestamptz,
    cert_notice_days    int         CHECK (cert_notice_days IN (30, 7)),
    metadata_url        text        CHECK (length(metadata_url) <= 2048),
    metadata_fetched_at timestamptz,
    metadata_error      text        CHECK (length(metadata_error) <= 1000),
    metadata_error_at   timestamptz,
    name_id_format      text        NOT NULL DEFAULT 'unspecified'
                                    CHECK (name_id_format IN ('unspecified', 'emailAddress', 'persistent')),
    -- The SP key pair of this connection (private key sealed with GATEHOUSE_SECRET_KEY);
    -- during rotation the previous pair still decrypts and is still published.
    sp_key_id           text        NOT NULL,
    sp_key_sealed       bytea       NOT NULL,
    sp_cert_der         bytea       NOT NULL,
    sp_prev_key_id      text,
    sp_prev_key_sealed  bytea,
    sp_prev_cert_der    bytea,
    jit                 boolean     NOT NULL DEFAULT true,
    enforce             boolean     NOT NULL DEFAULT false,
    allow_idp_initiated boolean     NOT NULL DEFAULT false,
    default_redirect    text        NOT NULL DEFAULT '/' CHECK (length(default_redirect) <= 2048),
    attribute_mapping   jsonb       NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(attribute_mapping) = 'object'),
    role_mapping        jsonb       NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(role_mapping) = 'object'),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id)
);
CREATE UNIQUE INDEX sso_connections_slug_key ON sso_connections (tenant_id, slug);

CREATE TABLE sso_domains (
    tenant_id          uuid        NOT NULL DEFAULT NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid,
    domain             text        NOT NULL CHECK (length(domain) BETWEEN 3 AND 253),
    connection_id      uuid        NOT NULL,
    verification_token text        NOT NULL CHECK (length(verification_token) BETWEEN 16 AND 128),
    verified_at        timestamptz,
    last_checked_at    timestamptz,
    last_error         text        CHECK (length(last_error) <= 500),
    created_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, domain),
    FOREIGN KEY (tenant_id, connection_id) REFERENCES sso_connections (tenant_id, id) ON DELETE CASCADE
);

CREATE TABLE sso_identities (
    tenant_id     uuid        NOT NULL DEFAULT NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid,
    connection_id uuid        NOT NULL,
    name_id       text        NOT NULL CHECK (length(name_id) BETWEEN 1 AND 1024),
    user_id       uuid        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, connection_id, name_id),
    FOREIGN KEY (tenant_id, connection_id) REFERENCES sso_connections (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX sso_identities_user_idx ON sso_identities (tenant_id, user_id);

-- An AuthnRequest Gatehouse sent: found again by the opaque RelayState, bound to the
-- browser that started it, consumed once.
CREATE TABLE saml_requests (
    tenant_id     uuid        NOT NULL DEFAULT NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid,
    id            text        NOT NULL CHECK (length(id) BETWEEN 1 AND 128),
    connection_id uuid        NOT NULL,
    relay_hash    bytea       NOT NULL CHECK (length(relay_hash) = 32),
    browser_hash  bytea       NOT NULL CHECK (length(browser_hash) = 32),
    purpose       text        NOT NULL CHECK (purpose IN ('login', 'test', 'reauth')),
    return_to     text        NOT NULL DEFAULT '/' CHECK (length(return_to) <= 2048),
    session_id    uuid,
    expires_at    timestamptz NOT NULL,
    consumed_at   timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, connection_id) REFERENCES sso_connections (tenant_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX saml_requests_relay_key ON saml_requests (tenant_id, relay_hash);
CREATE INDEX saml_requests_expiry_idx ON saml_requests (expires_at);

-- Response and assertion ids already accepted, until their NotOnOrAfter plus skew.
CREATE TABLE saml_replay (
    tenant_id     uuid        NOT NULL DEFAULT NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid,
    connection_id uuid        NOT NULL,
    message_id    text        NOT NULL CHECK (length(message_id) BETWEEN 1 AND 256),
    expires_at    timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, connection_id, message_id),
    FOREIGN KEY (tenant_id, connection_id) REFERENCES sso_connections (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX saml_replay_expiry_idx ON saml_replay (expires_at);

-- Every ACS attempt with its outcome and precise reason, for the admin (no secrets).
CREATE TABLE sso_attempts (
    tenant_id     uuid        NOT NULL DEFAULT NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid,
    id            uuid        NOT NULL DEFAULT gen_random_uuid(),
    connection_id uuid        NOT NULL,
    reference     text        NOT NULL CHECK (length(reference) BETWEEN 4 AND 32),
    mode          text        NOT NULL CHECK (mode IN ('login', 'test', 'reauth', 'idp_initiated')),
    success       boolean     NOT NULL,
    reason        text        NOT NULL CHECK (length(reason) <= 100),
    user_id       uuid,
    details       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, connection_id) REFERENCES sso_connections (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX sso_attempts_conn_idx ON sso_attempts (tenant_id, connection_id, created_at DESC);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['sso_connections', 'sso_domains', 'sso_identities', 'saml_requests', 'saml_replay', 'sso_attempts'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
            USING (tenant_id = NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid)
            WITH CHECK (tenant_id = NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid)$p$, t);
    END LOOP;
END $$;

ALTER TABLE sessions ADD FOREIGN KEY (tenant_id, sso_connection_id) REFERENCES sso_connections (tenant_id, id) ON DELETE SET NULL (sso_connection_id);
ALTER TABLE sessions ADD COLUMN saml_name_id text CHECK (length(saml_name_id) <= 1024);
CREATE INDEX sessions_saml_idx ON sessions (tenant_id, sso_connection_id, saml_name_id) WHERE sso_connection_id IS NOT NULL;
