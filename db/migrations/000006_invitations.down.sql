DROP TABLE IF EXISTS invitations;
DELETE FROM email_tokens WHERE purpose = 'setup_account';
ALTER TABLE email_tokens DROP CONSTRAINT email_tokens_purpose_check;
ALTER TABLE email_tokens ADD CONSTRAINT email_tokens_purpose_check
    CHECK (purpose IN ('verify_email', 'change_email', 'undo_email_change', 'reset_password', 'secure_account'));
