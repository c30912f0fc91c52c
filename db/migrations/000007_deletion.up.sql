-- Account deletion: grace period, cancel links, purge receipts; every tenant-scoped table
-- now reaches tenants through a foreign key, so purging a tenant leaves nothing behind.

ALTER TABLE users ADD COLUMN purge_after timestamptz;
CREATE INDEX users_purge_idx ON users (tenant_id, purge_after) WHERE status = 'pending_deletion';

ALTER TABLE email_tokens DROP CONSTRAINT email_tokens_purpose_check;
ALTER TABLE email_tokens ADD CONSTRAINT email_tokens_purpose_check
    CHECK (purpose IN ('verify_email', 'change_email', 'undo_email_change', 'reset_password', 'secure_account', 'setup_account', 'cancel_deletion'));

-- What a purge removed, without naming the person (user_ref is a keyed hash of the id).
CREATE TABLE deletion_receipts (
    tenant_id  uuid        NOT NULL DEFAULT NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid
                           REFERENCES tenants (id) ON DELETE CASCADE,
    id         uuid        NOT NULL DEFAULT gen_random_uuid(),
    user_ref   text        NOT NULL,
    purged_at  timestamptz NOT NULL DEFAULT now(),
    counts     jsonb       NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
ALTER TABLE deletion_receipts ENABLE ROW LEVEL SECURITY;
ALTER TABLE deletion_receipts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON deletion_receipts
    USING (tenant_id = NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid);

ALTER TABLE audit_events ADD CONSTRAINT audit_events_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE;
ALTER TABLE invitations ADD CONSTRAINT invitations_tenant_fkey FOREIGN KEY (tenant_id) REFERENCES tenants (id) ON DELETE CASCADE;
