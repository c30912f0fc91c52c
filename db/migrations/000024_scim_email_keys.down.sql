DROP INDEX IF EXISTS directories_declared_name_key;
ALTER TABLE directories DROP COLUMN IF EXISTS map_roles;
ALTER TABLE directories DROP COLUMN IF EXISTS declared_name;
DROP TABLE IF EXISTS directory_user_emails;
