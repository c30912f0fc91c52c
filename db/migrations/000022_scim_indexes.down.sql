CREATE UNIQUE INDEX directory_users_user_name_key_old ON directory_users (tenant_id, lower(user_name));
DROP INDEX directory_users_user_name_key;
ALTER INDEX directory_users_user_name_key_old RENAME TO directory_users_user_name_key;
ALTER TABLE directory_users DROP COLUMN user_name_key;
