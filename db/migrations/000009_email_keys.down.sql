DROP INDEX IF EXISTS invitations_email_idx;
ALTER TABLE invitations DROP COLUMN IF EXISTS email_key;
CREATE INDEX invitations_email_idx ON invitations (tenant_id, lower(email));

CREATE UNIQUE INDEX users_tenant_email_key_old ON users (tenant_id, lower(email));
DROP INDEX users_tenant_email_key;
ALTER INDEX users_tenant_email_key_old RENAME TO users_tenant_email_key;
ALTER TABLE users DROP COLUMN email_key;
