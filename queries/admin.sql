-- Roles and audit. Tenant-scoped.

-- name: ListRoleBindings :many
SELECT * FROM role_bindings ORDER BY user_id, role;

-- name: GetUserRoles :many
SELECT role FROM role_bindings WHERE user_id = @user_id ORDER BY role;

-- name: AddRoleBinding :exec
INSERT INTO role_bindings (user_id, role) VALUES (@user_id, @role) ON CONFLICT DO NOTHING;

-- name: RemoveUserRoles :exec
DELETE FROM role_bindings WHERE user_id = @user_id;

-- name: CountOwners :one
SELECT count(*) FROM role_bindings WHERE role = 'owner';

-- name: NotifyAuthzChanged :exec
SELECT pg_notify('gatehouse_authz_changed', NULLIF(current_setting('gatehouse.tenant_id', true), ''));

-- name: InsertAuditEvent :exec
INSERT INTO audit_events (action, actor_id, actor_label, subject_id, subject_label, ip, user_agent, request_id, details)
VALUES (@action, @actor_id, @actor_label, @subject_id, @subject_label, @ip, @user_agent, @request_id, @details);

-- name: ListAuditEvents :many
-- Newest first, keyset pagination on (occurred_at, id); optional filters.
SELECT * FROM audit_events
WHERE (sqlc.narg(before_at)::timestamptz IS NULL OR (occurred_at, id) < (sqlc.narg(before_at)::timestamptz, sqlc.narg(before_id)::uuid))
  AND (sqlc.narg(action)::text IS NULL OR action = sqlc.narg(action)::text)
  AND (sqlc.narg(actor)::uuid IS NULL OR actor_id = sqlc.narg(actor)::uuid)
  AND (sqlc.narg(since)::timestamptz IS NULL OR occurred_at >= sqlc.narg(since)::timestamptz)
ORDER BY occurred_at DESC, id DESC
LIMIT @page_size;

-- name: ExpireAuditEvents :one
SELECT audit_expire(@before::timestamptz)::bigint;

-- name: PseudonymiseAudit :one
SELECT audit_pseudonymise(@user_id::uuid, @pseudonym::text)::bigint;

-- name: ListUsers :many
-- Admin list: newest first, keyset pagination, optional email search.
SELECT u.*, EXISTS (SELECT 1 FROM totp_credentials t WHERE t.tenant_id = u.tenant_id AND t.user_id = u.id AND t.confirmed_at IS NOT NULL) AS mfa,
       COALESCE((SELECT array_agg(r.role ORDER BY r.role) FROM role_bindings r WHERE r.tenant_id = u.tenant_id AND r.user_id = u.id), '{}')::text[] AS roles,
       COALESCE((SELECT array_agg(DISTINCT c.slug) FROM sso_identities i JOIN sso_connections c ON c.tenant_id = i.tenant_id AND c.id = i.connection_id
                 WHERE i.tenant_id = u.tenant_id AND i.user_id = u.id), '{}')::text[] AS sso
FROM users u
WHERE (sqlc.narg(q)::text IS NULL OR lower(u.email) LIKE '%' || lower(sqlc.narg(q)::text) || '%')
  AND (sqlc.narg(status)::text IS NULL OR u.status = sqlc.narg(status)::text)
  AND (sqlc.narg(verified)::bool IS NULL OR (u.email_verified_at IS NOT NULL) = sqlc.narg(verified)::bool)
  AND (sqlc.narg(with_mfa)::bool IS NULL OR EXISTS (SELECT 1 FROM totp_credentials t WHERE t.tenant_id = u.tenant_id AND t.user_id = u.id AND t.confirmed_at IS NOT NULL) = sqlc.narg(with_mfa)::bool)
  AND (sqlc.narg(with_sso)::bool IS NULL OR EXISTS (SELECT 1 FROM sso_identities i WHERE i.tenant_id = u.tenant_id AND i.user_id = u.id) = sqlc.narg(with_sso)::bool)
  AND (sqlc.narg(before_at)::timestamptz IS NULL OR (u.created_at, u.id) < (sqlc.narg(before_at)::timestamptz, sqlc.narg(before_id)::uuid))
ORDER BY u.created_at DESC, u.id DESC
LIMIT @page_size;
