-- SCIM look-ups by userName under forced row-level security (issue 19, docs/performance.md).
-- lower() is not leakproof, so "lower(user_name) = lower($1)" could not use the
-- (tenant_id, lower(user_name)) index: a filter userName eq "…" (the look-up an IdP makes
-- before every create) and the uniqueness check of a create scanned every directory user.
-- A stored key compared with plain equality (leakproof) uses the index, as users.email_key does.
-- externalId eq uses directory_users_external_idx (plain equality already).
ALTER TABLE directory_users ADD COLUMN user_name_key text GENERATED ALWAYS AS (lower(user_name)) STORED;
CREATE UNIQUE INDEX directory_users_user_name_key_new ON directory_users (tenant_id, user_name_key);
DROP INDEX directory_users_user_name_key;
ALTER INDEX directory_users_user_name_key_new RENAME TO directory_users_user_name_key;
