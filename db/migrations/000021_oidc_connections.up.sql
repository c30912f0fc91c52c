-- OpenID Connect as the second SSO protocol: a connection is SAML (the default) or OIDC.
-- An OIDC connection keeps the same domains, identities (the IdP's `sub` in name_id),
-- attempts, mapping and switches; its IdP is an issuer whose discovery document is
-- fetched through the outbound client and stored here, with the client credentials
-- (the secret sealed with GATEHOUSE_SECRET_KEY, bound to tenant and connection) and the
-- IdP-specific checks (Google Workspace `hd`, Entra ID `tid`). Discovery refresh errors use
-- metadata_fetched_at / metadata_error / metadata_error_at as for SAML metadata URLs.
ALTER TABLE sso_connections
    ADD COLUMN protocol            text    NOT NULL DEFAULT 'saml' CHECK (protocol IN ('saml', 'oidc')),
    ADD COLUMN oidc_issuer         text    CHECK (length(oidc_issuer) BETWEEN 1 AND 1024),
    ADD COLUMN oidc_client_id      text    CHECK (length(oidc_client_id) BETWEEN 1 AND 512),
    ADD COLUMN oidc_secret_key_id  text,
    ADD COLUMN oidc_secret_sealed  bytea,
    ADD COLUMN oidc_scopes         text[]  NOT NULL DEFAULT '{}' CHECK (cardinality(oidc_scopes) <= 20),
    ADD COLUMN oidc_discovery      jsonb   CHECK (jsonb_typeof(oidc_discovery) = 'object'),
    ADD COLUMN oidc_hosted_domain  text    CHECK (length(oidc_hosted_domain) BETWEEN 1 AND 253),
    ADD COLUMN oidc_tenant         text    CHECK (length(oidc_tenant) BETWEEN 1 AND 64);

-- An OIDC connection always has its issuer, client and discovery (it is never a draft);
-- a SAML one has none of them and keeps the draft rule of 000013.
ALTER TABLE sso_connections DROP CONSTRAINT sso_connections_draft_check;
ALTER TABLE sso_connections ADD CONSTRAINT sso_connections_draft_check CHECK (
    (protocol = 'saml' AND (idp_metadata = '') = (idp_entity_id = '') AND (idp_metadata <> '' OR NOT enabled)
        AND oidc_issuer IS NULL AND oidc_client_id IS NULL AND oidc_discovery IS NULL)
    OR (protocol = 'oidc' AND idp_metadata = '' AND oidc_issuer IS NOT NULL AND idp_entity_id = oidc_issuer
        AND oidc_client_id IS NOT NULL AND oidc_discovery IS NOT NULL));

-- An authorization request Gatehouse sent to an OIDC IdP: found again by the state
-- (stored hashed), bound to the browser that started it (hashed cookie value), consumed
-- once, expiring. The nonce is stored hashed (compared with the ID token's); the PKCE
-- verifier is sealed (it is sent once, to the token endpoint).
CREATE TABLE sso_oidc_requests (
    tenant_id       uuid        NOT NULL DEFAULT NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid,
    id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    connection_id   uuid        NOT NULL,
    state_hash      bytea       NOT NULL CHECK (length(state_hash) = 32),
    browser_hash    bytea       NOT NULL CHECK (length(browser_hash) = 32),
    nonce_hash      bytea       NOT NULL CHECK (length(nonce_hash) = 32),
    verifier_key_id text        NOT NULL,
    verifier_sealed bytea       NOT NULL,
    purpose         text        NOT NULL CHECK (purpose IN ('login', 'test', 'reauth')),
    return_to       text        NOT NULL DEFAULT '/' CHECK (length(return_to) <= 2048),
    session_id      uuid,
    expires_at      timestamptz NOT NULL,
    consumed_at     timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, connection_id) REFERENCES sso_connections (tenant_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX sso_oidc_requests_state_key ON sso_oidc_requests (tenant_id, state_hash);
CREATE INDEX sso_oidc_requests_expiry_idx ON sso_oidc_requests (expires_at);

ALTER TABLE sso_oidc_requests ENABLE ROW LEVEL SECURITY;
ALTER TABLE sso_oidc_requests FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON sso_oidc_requests
    USING (tenant_id = NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid);
