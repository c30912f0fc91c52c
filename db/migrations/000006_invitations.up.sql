-- Invitations and the owner's setup link.

ALTER TABLE email_tokens DROP CONSTRAINT email_tokens_purpose_check;
ALTER TABLE email_tokens ADD CONSTRAINT email_tokens_purpose_check
    CHECK (purpose IN ('verify_email', 'change_email', 'undo_email_change', 'reset_password', 'secure_account', 'setup_account'));

CREATE TABLE invitations (
    tenant_id   uuid        NOT NULL DEFAULT NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid,
    id          uuid        NOT NULL DEFAULT gen_random_uuid(),
    email       text        NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
    role        text        NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    token_hash  bytea       NOT NULL CHECK (length(token_hash) = 32),
    invited_by  uuid,
    expires_at  timestamptz NOT NULL,
    accepted_at timestamptz,
    revoked_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, id),
    FOREIGN KEY (tenant_id, invited_by) REFERENCES users (tenant_id, id) ON DELETE SET NULL (invited_by)
);
CREATE UNIQUE INDEX invitations_token_key ON invitations (tenant_id, token_hash);
CREATE INDEX invitations_email_idx ON invitations (tenant_id, lower(email));

ALTER TABLE invitations ENABLE ROW LEVEL SECURITY;
ALTER TABLE invitations FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON invitations
    USING (tenant_id = NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid);
