-- SCIM 2.0 provisioning (internal/scim). Tenant-scoped: run inside store.InTenant.

-- name: InsertDirectory :one
INSERT INTO directories (name, provider, sso_connection_id, delete_mode, declared_name, map_roles)
VALUES (@name, @provider, @sso_connection_id, @delete_mode, @declared_name, @map_roles)
RETURNING *;

-- name: UpdateDeclaredDirectory :one
-- A directory a tenant file declares, made what the file says.
UPDATE directories SET name = @name, provider = @provider, sso_connection_id = @sso_connection_id,
    delete_mode = @delete_mode, map_roles = @map_roles, updated_at = now()
WHERE id = @id
RETURNING *;

-- name: DirectoryTokenByHash :one
-- A token of the tenant by its hash, revoked or not (a tenant file's token_env).
SELECT id, directory_id, revoked_at FROM directory_tokens WHERE token_hash = @token_hash;

-- name: GetDirectory :one
SELECT * FROM directories WHERE id = @id;

-- name: ListDirectories :many
SELECT * FROM directories ORDER BY created_at, id;

-- name: DeleteDirectory :execrows
DELETE FROM directories WHERE id = @id;

-- name: TouchDirectorySync :exec
UPDATE directories SET last_sync_at = now() WHERE id = @id;

-- name: InsertDirectoryToken :one
INSERT INTO directory_tokens (directory_id, token_hash, hint) VALUES (@directory_id, @token_hash, @hint)
RETURNING id, directory_id, hint, created_at, last_used_at, revoked_at;

-- name: ListDirectoryTokens :many
SELECT id, directory_id, hint, created_at, last_used_at, revoked_at FROM directory_tokens
WHERE directory_id = @directory_id ORDER BY created_at, id;

-- name: LookupDirectoryToken :one
SELECT t.id AS token_id, t.last_used_at, d.*
FROM directory_tokens t JOIN directories d ON d.tenant_id = t.tenant_id AND d.id = t.directory_id
WHERE t.token_hash = @token_hash AND t.revoked_at IS NULL;

-- name: TouchDirectoryToken :exec
UPDATE directory_tokens SET last_used_at = now()
WHERE id = @id AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute');

-- name: RevokeDirectoryToken :execrows
UPDATE directory_tokens SET revoked_at = now() WHERE id = @id AND directory_id = @directory_id AND revoked_at IS NULL;

-- name: ListSCIMUsers :many
-- Every user of the tenant (a directory manages existing accounts too), oldest first.
SELECT u.id, u.email, u.name, u.status, u.created_at, u.updated_at,
       du.directory_id, du.user_name, du.external_id, du.attributes, du.version, du.updated_at AS scim_updated_at
FROM users u LEFT JOIN directory_users du ON du.tenant_id = u.tenant_id AND du.user_id = u.id
WHERE u.status <> 'pending_deletion'
ORDER BY u.created_at, u.id;

-- name: FindSCIMUsersByKeys :many
-- The candidates of a filter made of equality look-ups (userName eq, externalId eq,
-- emails.value eq, value paths on emails, joined by and/or; scim.planLookups), each by
-- index: userName by the linked userName or by the address (an unlinked account's
-- userName), externalId exactly, an address by the account's own address or by the
-- directory's record of its emails. Keys come lower-cased by the caller (names, emails).
-- The caller's filter keeps those that match.
SELECT u.id, u.email, u.name, u.status, u.created_at, u.updated_at,
       du.directory_id, du.user_name, du.external_id, du.attributes, du.version, du.updated_at AS scim_updated_at
FROM users u LEFT JOIN directory_users du ON du.tenant_id = u.tenant_id AND du.user_id = u.id
WHERE u.status <> 'pending_deletion'
  AND u.id IN (SELECT d.user_id FROM directory_users d WHERE d.user_name_key = ANY(@names::text[])
               UNION ALL SELECT a.id FROM users a WHERE a.email_key = ANY(@names::text[])
               UNION ALL SELECT d.user_id FROM directory_users d WHERE d.external_id = ANY(@external_ids::text[])
               UNION ALL SELECT a.id FROM users a WHERE a.email_key = ANY(@emails::text[])
               UNION ALL SELECT e.user_id FROM directory_user_emails e WHERE e.value_key = ANY(@emails::text[]))
ORDER BY u.created_at, u.id;

-- name: ReplaceDirectoryUserEmails :exec
-- The index keys of a directory user's addresses (migration 000024), replaced with every
-- change of its record.
-- (The delete keeps the keys that stay, so that the insert's ON CONFLICT never meets a row
-- the same statement deletes.)
WITH gone AS (DELETE FROM directory_user_emails WHERE user_id = @user_id AND NOT (value_key = ANY(@value_keys::text[])))
INSERT INTO directory_user_emails (user_id, value_key)
SELECT @user_id, k FROM unnest(@value_keys::text[]) AS k
ON CONFLICT DO NOTHING;

-- name: GetSCIMUser :one
SELECT u.id, u.email, u.name, u.status, u.created_at, u.updated_at,
       du.directory_id, du.user_name, du.external_id, du.attributes, du.version, du.updated_at AS scim_updated_at
FROM users u LEFT JOIN directory_users du ON du.tenant_id = u.tenant_id AND du.user_id = u.id
WHERE u.id = @id AND u.status <> 'pending_deletion';

-- name: GetDirectoryUserByName :one
SELECT * FROM directory_users WHERE user_name_key = lower(@name);

-- name: UpsertDirectoryUser :one
INSERT INTO directory_users (user_id, directory_id, user_name, external_id, attributes)
VALUES (@user_id, @directory_id, @user_name, @external_id, @attributes)
ON CONFLICT (tenant_id, user_id) DO UPDATE SET directory_id = EXCLUDED.directory_id, user_name = EXCLUDED.user_name,
    external_id = EXCLUDED.external_id, attributes = EXCLUDED.attributes,
    version = directory_users.version + 1, updated_at = now()
RETURNING *;

-- name: UpdateUserProfile :one
UPDATE users SET email = @email, name = @name, updated_at = now() WHERE id = @id RETURNING *;

-- name: SetUserActive :one
-- Suspends (disabled) or reactivates a user; an account pending deletion is left alone.
UPDATE users SET status = @status, updated_at = now()
WHERE id = @id AND status IN ('active', 'disabled') AND status <> @status
RETURNING *;

-- name: CountDirectoryUsers :one
SELECT count(*) FROM directory_users WHERE directory_id = @directory_id;

-- name: CountDirectoryGroups :one
SELECT count(*) FROM directory_groups WHERE directory_id = @directory_id;

-- name: InsertDirectoryGroup :one
INSERT INTO directory_groups (directory_id, display_name, external_id) VALUES (@directory_id, @display_name, @external_id)
RETURNING *;

-- name: GetDirectoryGroup :one
SELECT * FROM directory_groups WHERE id = @id AND directory_id = @directory_id;

-- name: ListDirectoryGroups :many
SELECT * FROM directory_groups WHERE directory_id = @directory_id ORDER BY created_at, id;

-- name: UpdateDirectoryGroup :one
UPDATE directory_groups SET display_name = @display_name, external_id = @external_id, version = version + 1, updated_at = now()
WHERE id = @id RETURNING *;

-- name: DeleteDirectoryGroup :execrows
DELETE FROM directory_groups WHERE id = @id AND directory_id = @directory_id;

-- name: ListGroupMembers :many
SELECT m.user_id, COALESCE(du.user_name, u.email)::text AS display
FROM directory_group_members m JOIN users u ON u.tenant_id = m.tenant_id AND u.id = m.user_id
LEFT JOIN directory_users du ON du.tenant_id = m.tenant_id AND du.user_id = m.user_id
WHERE m.group_id = @group_id ORDER BY u.created_at, u.id;

-- name: AddGroupMembers :many
-- Ids go as text (a uuid[] parameter does not encode in pgx's exec mode); ids that name no
-- user of the tenant are skipped, and the caller compares counts.
INSERT INTO directory_group_members (group_id, user_id)
SELECT @group_id, u.id FROM users u WHERE u.id::text = ANY(@user_ids::text[])
ON CONFLICT DO NOTHING
RETURNING user_id;

-- name: RemoveGroupMembers :many
DELETE FROM directory_group_members WHERE group_id = @group_id AND user_id::text = ANY(@user_ids::text[])
RETURNING user_id;

-- name: ClearGroupMembers :many
DELETE FROM directory_group_members WHERE group_id = @group_id RETURNING user_id;

-- name: GroupsOfUser :many
SELECT g.id, g.display_name, g.directory_id FROM directory_group_members m
JOIN directory_groups g ON g.tenant_id = m.tenant_id AND g.id = m.group_id
WHERE m.user_id = @user_id ORDER BY g.display_name;

-- name: InsertDirectoryRequest :exec
-- The user is named only while it exists: the log of a DELETE that purged it names nobody.
INSERT INTO directory_requests (directory_id, method, path, status, scim_type, latency_ms, user_id)
VALUES (@directory_id, @method, @path, @status, @scim_type, @latency_ms, (SELECT u.id FROM users u WHERE u.id = sqlc.narg(user_id)::uuid));

-- name: ListDirectoryRequests :many
SELECT * FROM directory_requests WHERE directory_id = @directory_id ORDER BY created_at DESC, id LIMIT @max;

-- name: DeleteOldDirectoryRequests :execrows
DELETE FROM directory_requests WHERE created_at < @before;

-- name: ExportDirectoryUser :many
SELECT directory_id, user_name, external_id, attributes, version, created_at, updated_at FROM directory_users WHERE user_id = @user_id;

-- name: ExportDirectoryMemberships :many
SELECT g.directory_id, g.display_name FROM directory_group_members m
JOIN directory_groups g ON g.tenant_id = m.tenant_id AND g.id = m.group_id WHERE m.user_id = @user_id;

-- name: ExportDirectoryRequests :many
SELECT directory_id, method, path, status, scim_type, created_at FROM directory_requests WHERE user_id = @user_id;

-- name: EraseUserDirectoryRequests :execrows
UPDATE directory_requests SET user_id = NULL WHERE user_id = @user_id;

-- name: DirectoryGroupsOfUsers :many
-- The directory's groups of each of the users (ids as text), for the group → role mapping.
SELECT m.user_id, g.display_name FROM directory_group_members m
JOIN directory_groups g ON g.tenant_id = m.tenant_id AND g.id = m.group_id
WHERE g.directory_id = @directory_id AND m.user_id::text = ANY(@user_ids::text[]);

-- name: RolesOfUsers :many
SELECT b.user_id, b.role FROM role_bindings b WHERE b.user_id::text = ANY(@user_ids::text[]) ORDER BY b.user_id, b.role;

-- name: ExistingUserIDs :many
SELECT id FROM users WHERE id::text = ANY(@user_ids::text[]);

-- name: DeleteRolesOfUsers :exec
DELETE FROM role_bindings WHERE user_id::text = ANY(@user_ids::text[]);

-- name: GrantRoleToUsers :exec
INSERT INTO role_bindings (user_id, role) SELECT u::uuid, @role FROM unnest(@user_ids::text[]) AS u ON CONFLICT DO NOTHING;
