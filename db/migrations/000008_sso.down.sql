DROP INDEX IF EXISTS sessions_saml_idx;
ALTER TABLE sessions DROP COLUMN IF EXISTS saml_name_id;
ALTER TABLE sessions DROP CONSTRAINT IF EXISTS sessions_tenant_id_sso_connection_id_fkey;
DROP TABLE IF EXISTS sso_attempts, saml_replay, saml_requests, sso_identities, sso_domains, sso_connections;
