DROP TABLE IF EXISTS mail_outbox;
DROP TABLE IF EXISTS login_failures;
DROP TABLE IF EXISTS rate_limits;
DROP TABLE IF EXISTS sessions;
DROP TABLE IF EXISTS email_tokens;
DROP TABLE IF EXISTS password_credentials;
ALTER TABLE users DROP COLUMN IF EXISTS last_login_at;
