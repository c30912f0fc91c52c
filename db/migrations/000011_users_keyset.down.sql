DROP INDEX IF EXISTS users_directory_idx;
