-- Step-up authentication and TOTP second factors.

-- One TOTP credential per user. The secret is sealed with GATEHOUSE_SECRET_KEY (AES-GCM,
-- key id beside it); last_step stops a code from being used twice within its time step.
CREATE TABLE totp_credentials (
    tenant_id     uuid        NOT NULL DEFAULT NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid,
    user_id       uuid        NOT NULL,
    key_id        text        NOT NULL,
    secret_sealed bytea       NOT NULL,
    confirmed_at  timestamptz,
    last_step     bigint      NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

-- One-time recovery codes, stored as SHA-256 (they carry 50 random bits each).
CREATE TABLE recovery_codes (
    tenant_id  uuid        NOT NULL DEFAULT NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid,
    user_id    uuid        NOT NULL,
    code_hash  bytea       NOT NULL CHECK (length(code_hash) = 32),
    used_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id, code_hash),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

-- The second step of a login with a second factor: the password was right, the code is
-- still owed. mfa_token is single-use, short-lived, and allows a few attempts.
CREATE TABLE login_challenges (
    tenant_id  uuid        NOT NULL DEFAULT NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid,
    id         uuid        NOT NULL DEFAULT gen_random_uuid(),
    user_id    uuid        NOT NULL,
    token_hash bytea       NOT NULL CHECK (length(token_hash) = 32),
    attempts   integer     NOT NULL DEFAULT 0,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX login_challenges_hash_key ON login_challenges (tenant_id, token_hash);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['totp_credentials', 'recovery_codes', 'login_challenges'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
            USING (tenant_id = NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid)
            WITH CHECK (tenant_id = NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid)$p$, t);
    END LOOP;
END $$;
