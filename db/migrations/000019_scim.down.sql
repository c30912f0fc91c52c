DROP TABLE IF EXISTS directory_requests;
DROP TABLE IF EXISTS directory_group_members;
DROP TABLE IF EXISTS directory_groups;
DROP TABLE IF EXISTS directory_users;
DROP TABLE IF EXISTS directory_tokens;
DROP TABLE IF EXISTS directories;
