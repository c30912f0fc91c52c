ALTER TABLE invitations DROP CONSTRAINT IF EXISTS invitations_tenant_fkey;
ALTER TABLE audit_events DROP CONSTRAINT IF EXISTS audit_events_tenant_fkey;
DROP TABLE IF EXISTS deletion_receipts;
DELETE FROM email_tokens WHERE purpose = 'cancel_deletion';
ALTER TABLE email_tokens DROP CONSTRAINT email_tokens_purpose_check;
ALTER TABLE email_tokens ADD CONSTRAINT email_tokens_purpose_check
    CHECK (purpose IN ('verify_email', 'change_email', 'undo_email_change', 'reset_password', 'secure_account', 'setup_account'));
DROP INDEX IF EXISTS users_purge_idx;
ALTER TABLE users DROP COLUMN IF EXISTS purge_after;
