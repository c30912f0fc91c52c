-- Passkeys (internal/passkey, docs/passkeys.md): WebAuthn credentials of users, with the
-- tenant's host as relying party id, and the server-side state of pending ceremonies.

-- One row per registered passkey. credential_id is the authenticator's id (unique per
-- tenant: the same authenticator may hold credentials for several tenants, each its own).
CREATE TABLE passkeys (
    tenant_id          uuid        NOT NULL DEFAULT NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid,
    id                 uuid        NOT NULL DEFAULT gen_random_uuid(),
    user_id            uuid        NOT NULL,
    credential_id      bytea       NOT NULL CHECK (length(credential_id) BETWEEN 1 AND 1023),
    public_key         bytea       NOT NULL CHECK (length(public_key) BETWEEN 1 AND 4096),
    attestation_format text        NOT NULL DEFAULT 'none' CHECK (length(attestation_format) <= 32),
    aaguid             bytea,
    transports         text[]      NOT NULL DEFAULT '{}',
    sign_count         bigint      NOT NULL DEFAULT 0 CHECK (sign_count >= 0),
    backup_eligible    boolean     NOT NULL,
    backup_state       boolean     NOT NULL,
    user_verified      boolean     NOT NULL,
    name               text        NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    created_at         timestamptz NOT NULL DEFAULT now(),
    last_used_at       timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX passkeys_credential_key ON passkeys (tenant_id, credential_id);
CREATE INDEX passkeys_user_idx ON passkeys (tenant_id, user_id);

-- A pending ceremony: only the SHA-256 of its challenge is kept, with the purpose and who
-- may finish it (the user and session for registration and step-up, the user for the
-- second sign-in step, the browser's binding cookie for passwordless sign-in). Single use,
-- five minutes.
CREATE TABLE passkey_challenges (
    tenant_id         uuid        NOT NULL DEFAULT NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid REFERENCES tenants (id) ON DELETE CASCADE,
    id                uuid        NOT NULL DEFAULT gen_random_uuid(),
    challenge_hash    bytea       NOT NULL CHECK (length(challenge_hash) = 32),
    purpose           text        NOT NULL CHECK (purpose IN ('register', 'login', 'second_factor', 'reauth')),
    user_id           uuid,
    session_id        uuid,
    binding_hash      bytea       CHECK (length(binding_hash) = 32),
    -- The library's ceremony state with the challenge itself removed (the client returns
    -- it in clientDataJSON; its hash finds this row).
    session_data      jsonb       NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    expires_at        timestamptz NOT NULL,
    used_at           timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX passkey_challenges_hash_key ON passkey_challenges (tenant_id, challenge_hash);
CREATE INDEX passkey_challenges_expiry_idx ON passkey_challenges (tenant_id, expires_at);

ALTER TABLE passkeys ENABLE ROW LEVEL SECURITY;
ALTER TABLE passkeys FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON passkeys
    USING (tenant_id = NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid);

ALTER TABLE passkey_challenges ENABLE ROW LEVEL SECURITY;
ALTER TABLE passkey_challenges FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON passkey_challenges
    USING (tenant_id = NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid);
