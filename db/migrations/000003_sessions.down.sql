DROP TRIGGER IF EXISTS users_notify_change ON users;
DROP FUNCTION IF EXISTS users_notify_change();
DELETE FROM email_tokens WHERE purpose = 'secure_account';
ALTER TABLE email_tokens DROP CONSTRAINT email_tokens_purpose_check;
ALTER TABLE email_tokens ADD CONSTRAINT email_tokens_purpose_check
    CHECK (purpose IN ('verify_email', 'change_email', 'undo_email_change', 'reset_password'));
DROP TABLE IF EXISTS known_devices;
DROP INDEX IF EXISTS sessions_expiry_idx;
ALTER TABLE sessions
    DROP COLUMN IF EXISTS saml_session_index,
    DROP COLUMN IF EXISTS sso_connection_id,
    DROP COLUMN IF EXISTS os,
    DROP COLUMN IF EXISTS browser,
    DROP COLUMN IF EXISTS device;
