-- Self-service accounts: password credentials, one-time email tokens, server-side sessions,
-- shared rate-limit counters and the mail outbox. Every table is tenant-scoped under RLS;
-- tenant_id defaults to the transaction's tenant, so inserts never name it.

ALTER TABLE users ADD COLUMN last_login_at timestamptz;

CREATE TABLE password_credentials (
    tenant_id  uuid        NOT NULL DEFAULT NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid,
    user_id    uuid        NOT NULL,
    hash       text        NOT NULL CHECK (hash LIKE '$argon2id$%'),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

-- One-time tokens sent by email. Only the SHA-256 of the token is stored. Each token is bound
-- to its purpose, its user and the address it was sent to.
CREATE TABLE email_tokens (
    tenant_id  uuid        NOT NULL DEFAULT NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid,
    id         uuid        NOT NULL DEFAULT gen_random_uuid(),
    user_id    uuid        NOT NULL,
    purpose    text        NOT NULL CHECK (purpose IN ('verify_email', 'change_email', 'undo_email_change', 'reset_password')),
    token_hash bytea       NOT NULL CHECK (length(token_hash) = 32),
    email      text        NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at    timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX email_tokens_hash_key ON email_tokens (tenant_id, token_hash);
CREATE INDEX email_tokens_user_idx ON email_tokens (tenant_id, user_id, purpose);
CREATE INDEX email_tokens_expiry_idx ON email_tokens (tenant_id, expires_at);

-- Server-side sessions. The token lives only in the client's cookie or bearer header; the
-- database holds its SHA-256.
CREATE TABLE sessions (
    tenant_id       uuid        NOT NULL DEFAULT NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid,
    id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    user_id         uuid        NOT NULL,
    token_hash      bytea       NOT NULL CHECK (length(token_hash) = 32),
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_active_at  timestamptz NOT NULL DEFAULT now(),
    idle_timeout    interval    NOT NULL,
    expires_at      timestamptz NOT NULL,
    ip              inet,
    user_agent      text        NOT NULL DEFAULT '' CHECK (length(user_agent) <= 512),
    auth_time       timestamptz NOT NULL DEFAULT now(),
    methods         text[]      NOT NULL DEFAULT '{}',
    aal             smallint    NOT NULL DEFAULT 1 CHECK (aal IN (1, 2)),
    revoked_at      timestamptz,
    revoked_reason  text,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
CREATE UNIQUE INDEX sessions_token_hash_key ON sessions (tenant_id, token_hash);
CREATE INDEX sessions_user_idx ON sessions (tenant_id, user_id) WHERE revoked_at IS NULL;

-- Fixed-window counters shared by every server process (rate limits and throttles).
CREATE TABLE rate_limits (
    tenant_id    uuid        NOT NULL DEFAULT NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid REFERENCES tenants (id) ON DELETE CASCADE,
    key          text        NOT NULL CHECK (length(key) <= 400),
    window_start timestamptz NOT NULL,
    count        integer     NOT NULL,
    expires_at   timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, key, window_start)
);
CREATE INDEX rate_limits_expiry_idx ON rate_limits (tenant_id, expires_at);

-- Failed logins per account and client address, for progressive delays (never a hard
-- lockout that an attacker could aim at a known address).
CREATE TABLE login_failures (
    tenant_id       uuid        NOT NULL DEFAULT NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid REFERENCES tenants (id) ON DELETE CASCADE,
    key             text        NOT NULL CHECK (length(key) <= 400),
    failures        integer     NOT NULL,
    last_failure_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, key)
);

-- Mail waiting for (or done with) delivery. The send job references a row here, so mail
-- content never sits in the global job table; bodies are cleared once sent.
CREATE TABLE mail_outbox (
    tenant_id     uuid        NOT NULL DEFAULT NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid REFERENCES tenants (id) ON DELETE CASCADE,
    id            uuid        NOT NULL DEFAULT gen_random_uuid(),
    user_id       uuid,
    template      text        NOT NULL,
    to_address    text        NOT NULL,
    subject       text        NOT NULL,
    text_body     text,
    html_body     text,
    status        text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'failed')),
    attempts      integer     NOT NULL DEFAULT 0,
    last_error    text,
    provider_id   text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    sent_at       timestamptz,
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['password_credentials', 'email_tokens', 'sessions', 'rate_limits', 'login_failures', 'mail_outbox'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
            USING (tenant_id = NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid)
            WITH CHECK (tenant_id = NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid)$p$, t);
    END LOOP;
END $$;
