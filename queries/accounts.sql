-- Accounts, credentials and one-time email tokens. Tenant-scoped: run inside store.InTenant.

-- name: InsertUserIfAbsent :one
-- Returns no row when the address is taken in this tenant (race-safe with the unique index).
INSERT INTO users (tenant_id, email, name)
VALUES (NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid, @email, @name)
ON CONFLICT (tenant_id, email_key) DO NOTHING
RETURNING *;

-- name: GetUserByID :one
SELECT * FROM users WHERE id = @id;

-- name: GetUserWithPassword :one
SELECT u.*, p.hash AS password_hash
FROM users u LEFT JOIN password_credentials p ON p.tenant_id = u.tenant_id AND p.user_id = u.id
WHERE u.email_key = lower(@email);

-- name: UpsertPassword :exec
INSERT INTO password_credentials (user_id, hash) VALUES (@user_id, @hash)
ON CONFLICT (tenant_id, user_id) DO UPDATE SET hash = EXCLUDED.hash, updated_at = now();

-- name: MarkEmailVerified :execrows
-- Only while the user still has the address the token was sent to.
UPDATE users SET email_verified_at = COALESCE(email_verified_at, now()), updated_at = now()
WHERE id = @id AND email_key = lower(@email);

-- name: ChangeUserEmail :one
UPDATE users SET email = @email, email_verified_at = now(), updated_at = now()
WHERE id = @id
RETURNING *;

-- name: TouchLastLogin :exec
UPDATE users SET last_login_at = now() WHERE id = @id;

-- name: InsertEmailToken :one
INSERT INTO email_tokens (user_id, purpose, token_hash, email, expires_at)
VALUES (@user_id, @purpose, @token_hash, @email, @expires_at)
RETURNING id;

-- name: ConsumeEmailToken :one
-- Single use: the first caller gets the row, every later one gets nothing.
UPDATE email_tokens SET used_at = now()
WHERE token_hash = @token_hash AND purpose = ANY(@purposes::text[]) AND used_at IS NULL AND expires_at > now()
RETURNING user_id, purpose, email, created_at;

-- name: InvalidateEmailTokens :exec
-- Earlier unused tokens of a purpose end when a new one is issued or the purpose is
-- fulfilled: they expire now (used_at stays for a token its own link consumed, so a used
-- link can be told from a replaced or expired one).
UPDATE email_tokens SET expires_at = now()
WHERE user_id = @user_id AND purpose = @purpose AND used_at IS NULL AND expires_at > now();

-- name: LookupEmailToken :one
-- A token in any state, for the page of a link (which must not consume it) and for telling
-- why a consumption failed. Used rows are kept until a week after they expire.
SELECT t.user_id, t.purpose, t.email, t.expires_at, t.used_at, (t.expires_at > now())::bool AS live,
       u.email AS user_email, u.email_verified_at, u.status AS user_status
FROM email_tokens t JOIN users u ON u.tenant_id = t.tenant_id AND u.id = t.user_id
WHERE t.token_hash = @token_hash AND t.purpose = ANY(@purposes::text[]);

-- name: UserHasPassword :one
SELECT EXISTS (SELECT 1 FROM password_credentials WHERE user_id = @user_id)::bool;

-- name: ListManagingConnections :many
-- The enabled SSO connections the user signs in through: their IdP owns the address.
SELECT c.name FROM sso_identities i JOIN sso_connections c ON c.tenant_id = i.tenant_id AND c.id = i.connection_id
WHERE i.user_id = @user_id AND c.enabled ORDER BY c.name;

-- name: DeleteExpiredEmailTokens :execrows
DELETE FROM email_tokens WHERE expires_at < now() - interval '7 days';
