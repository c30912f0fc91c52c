-- Gatehouse as each tenant's OpenID Provider (issue 17, docs/apps.md): signing keys, apps
-- (OAuth clients), authorization requests with their codes, issued tokens and consent
-- grants. Every table is tenant-scoped under forced row-level security: a client, key or
-- token of tenant A does not exist inside tenant B's transaction.

-- Signing keys of the tenant's issuer. The private key is sealed with GATEHOUSE_SECRET_KEY
-- (secretbox, bound to tenant and kid). A key is published in the JWKS from created_at,
-- signs from active_from, stops signing at retired_at and leaves the JWKS at expires_at
-- (after every token it signed has expired).
CREATE TABLE oidc_keys (
    tenant_id      uuid        NOT NULL DEFAULT NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid REFERENCES tenants (id) ON DELETE CASCADE,
    kid            text        NOT NULL CHECK (length(kid) BETWEEN 8 AND 64),
    alg            text        NOT NULL CHECK (alg IN ('RS256', 'ES256')),
    key_id         text        NOT NULL CHECK (length(key_id) <= 64),
    private_sealed bytea       NOT NULL,
    public_jwk     jsonb       NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    active_from    timestamptz NOT NULL,
    retired_at     timestamptz,
    expires_at     timestamptz,
    PRIMARY KEY (tenant_id, kid)
);

-- Apps: the tenant's OAuth 2 / OpenID Connect clients. Secrets are 256-bit random values
-- stored as SHA-256; during a rotation the previous one keeps working until its expiry.
CREATE TABLE apps (
    tenant_id                  uuid        NOT NULL DEFAULT NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid REFERENCES tenants (id) ON DELETE CASCADE,
    id                         uuid        NOT NULL DEFAULT gen_random_uuid(),
    client_id                  text        NOT NULL CHECK (client_id ~ '^[a-z0-9_-]{8,64}$'),
    name                       text        NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    type                       text        NOT NULL CHECK (type IN ('confidential', 'public')),
    secret_hash                bytea       CHECK (length(secret_hash) = 32),
    previous_secret_hash       bytea       CHECK (length(previous_secret_hash) = 32),
    previous_secret_expires_at timestamptz,
    redirect_uris              text[]      NOT NULL DEFAULT '{}',
    post_logout_redirect_uris  text[]      NOT NULL DEFAULT '{}',
    backchannel_logout_uri     text        CHECK (length(backchannel_logout_uri) <= 2048),
    first_party                boolean     NOT NULL DEFAULT false,
    allowed_scopes             text[]      NOT NULL DEFAULT '{openid,profile,email,offline_access}',
    grant_types                text[]      NOT NULL DEFAULT '{authorization_code,refresh_token}',
    access_token_ttl_seconds   integer     NOT NULL DEFAULT 300 CHECK (access_token_ttl_seconds BETWEEN 60 AND 86400),
    refresh_token_ttl_seconds  integer     NOT NULL DEFAULT 2592000 CHECK (refresh_token_ttl_seconds BETWEEN 300 AND 31536000),
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, client_id),
    CHECK (type = 'public' OR secret_hash IS NOT NULL)
);

-- Authorization requests, from /oauth2/authorize until the code is exchanged (or they
-- expire). The code is stored as SHA-256, works once within 60 s; a second use revokes
-- what the first one issued (the tokens name their auth_request_id).
CREATE TABLE oidc_auth_requests (
    tenant_id       uuid        NOT NULL DEFAULT NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid REFERENCES tenants (id) ON DELETE CASCADE,
    id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    app_id          uuid        NOT NULL,
    params          jsonb       NOT NULL,
    user_id         uuid,
    session_id      uuid,
    auth_time       timestamptz,
    amr             text[]      NOT NULL DEFAULT '{}',
    acr             text        NOT NULL DEFAULT '',
    done            boolean     NOT NULL DEFAULT false,
    code_hash       bytea       CHECK (length(code_hash) = 32),
    code_expires_at timestamptz,
    code_used_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, app_id) REFERENCES apps (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, session_id) REFERENCES sessions (tenant_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX oidc_auth_requests_code_key ON oidc_auth_requests (tenant_id, code_hash) WHERE code_hash IS NOT NULL;
CREATE INDEX oidc_auth_requests_expiry_idx ON oidc_auth_requests (tenant_id, expires_at);

-- Issued tokens: access tokens by their jti (the JWT itself is not stored) and refresh
-- tokens by the SHA-256 of their opaque value. A token lives only while its Gatehouse
-- session does (session_id; none for client_credentials). Refresh tokens rotate: each use
-- marks the old one used and issues the next in the same family; presenting a used one
-- revokes the whole family.
CREATE TABLE oidc_tokens (
    tenant_id       uuid        NOT NULL DEFAULT NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid REFERENCES tenants (id) ON DELETE CASCADE,
    id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    kind            text        NOT NULL CHECK (kind IN ('access', 'refresh')),
    app_id          uuid        NOT NULL,
    user_id         uuid,
    session_id      uuid,
    auth_request_id uuid,
    family_id       uuid,
    token_hash      bytea       CHECK (length(token_hash) = 32),
    scopes          text[]      NOT NULL DEFAULT '{}',
    auth_time       timestamptz,
    amr             text[]      NOT NULL DEFAULT '{}',
    acr             text        NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    used_at         timestamptz,
    revoked_at      timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, app_id) REFERENCES apps (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, session_id) REFERENCES sessions (tenant_id, id) ON DELETE CASCADE,
    CHECK (kind = 'access' OR (token_hash IS NOT NULL AND family_id IS NOT NULL))
);
CREATE UNIQUE INDEX oidc_tokens_hash_key ON oidc_tokens (tenant_id, token_hash) WHERE token_hash IS NOT NULL;
CREATE INDEX oidc_tokens_session_idx ON oidc_tokens (tenant_id, session_id) WHERE revoked_at IS NULL;
CREATE INDEX oidc_tokens_family_idx ON oidc_tokens (tenant_id, family_id) WHERE family_id IS NOT NULL;
CREATE INDEX oidc_tokens_auth_request_idx ON oidc_tokens (tenant_id, auth_request_id) WHERE auth_request_id IS NOT NULL;
CREATE INDEX oidc_tokens_expiry_idx ON oidc_tokens (tenant_id, expires_at);

-- Consent: the scopes a user granted a third-party app, remembered until revoked on the
-- account page ("Apps with access").
CREATE TABLE oidc_grants (
    tenant_id  uuid        NOT NULL DEFAULT NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid REFERENCES tenants (id) ON DELETE CASCADE,
    user_id    uuid        NOT NULL,
    app_id     uuid        NOT NULL,
    scopes     text[]      NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id, app_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, app_id) REFERENCES apps (tenant_id, id) ON DELETE CASCADE
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['oidc_keys', 'apps', 'oidc_auth_requests', 'oidc_tokens', 'oidc_grants'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
            USING (tenant_id = NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid)
            WITH CHECK (tenant_id = NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid)$p$, t);
    END LOOP;
END $$;
