-- Tenant-scoped: every query runs inside store.InTenant, RLS restricts it to one tenant.

-- name: CreateUser :one
INSERT INTO users (tenant_id, email, name, email_verified_at)
VALUES (NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid, @email, @name, @email_verified_at)
RETURNING *;

-- name: GetUserByEmail :one
SELECT * FROM users WHERE email_key = lower(@email);

-- name: CountUsers :one
SELECT count(*) FROM users;
