-- Roles and audit. Tenant-scoped.

-- name: ListRoleBindings :many
SELECT * FROM role_bindings ORDER BY user_id, role;

-- name: GetUserRoles :many
SELECT role FROM role_bindings WHERE user_id = @user_id ORDER BY role;

-- name: AddRoleBinding :execrows
INSERT INTO role_bindings (user_id, role) VALUES (@user_id, @role) ON CONFLICT DO NOTHING;

-- name: RemoveUserRoles :exec
DELETE FROM role_bindings WHERE user_id = @user_id;

-- name: LockActiveOwners :many
-- The owners whose account is not scheduled for deletion, locked (in id order, so two
-- transactions never wait on each other in a cycle) until the caller's transaction ends:
-- two owners removing each other at once are serialised, and the second sees the first's
-- change.
SELECT u.id FROM users u
JOIN role_bindings rb ON rb.tenant_id = u.tenant_id AND rb.user_id = u.id
WHERE rb.role = 'owner' AND u.status <> 'pending_deletion'
ORDER BY u.id
FOR UPDATE OF u;

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
-- Deletes events older than before, but never one younger than the tenant's retention
-- (the function computes that cut-off itself; migration 000010).
SELECT audit_expire(@before::timestamptz)::bigint;

-- name: PseudonymiseAudit :one
-- Only for a user already deleted in this transaction; the function derives the pseudonym
-- ('deleted-user:' || user_ref) from a key gatehouse_app cannot read.
SELECT user_ref::text, events::bigint FROM audit_pseudonymise(@user_id::uuid);

-- name: ListUsers :many
-- Admin list: newest first, keyset pagination, optional email search (a substring:
-- % and _ in it are literal characters).
SELECT u.*, EXISTS (SELECT 1 FROM totp_credentials t WHERE t.tenant_id = u.tenant_id AND t.user_id = u.id AND t.confirmed_at IS NOT NULL) AS mfa,
       COALESCE((SELECT array_agg(r.role ORDER BY r.role) FROM role_bindings r WHERE r.tenant_id = u.tenant_id AND r.user_id = u.id), '{}')::text[] AS roles,
       COALESCE((SELECT array_agg(DISTINCT c.slug) FROM sso_identities i JOIN sso_connections c ON c.tenant_id = i.tenant_id AND c.id = i.connection_id
                 WHERE i.tenant_id = u.tenant_id AND i.user_id = u.id), '{}')::text[] AS sso
FROM users u
WHERE (sqlc.narg(q)::text IS NULL OR lower(u.email) LIKE '%' || replace(replace(replace(lower(sqlc.narg(q)::text), '\', '\\'), '%', '\%'), '_', '\_') || '%' ESCAPE '\')
  AND (sqlc.narg(status)::text IS NULL OR u.status = sqlc.narg(status)::text)
  AND (sqlc.narg(verified)::bool IS NULL OR (u.email_verified_at IS NOT NULL) = sqlc.narg(verified)::bool)
  AND (sqlc.narg(with_mfa)::bool IS NULL OR EXISTS (SELECT 1 FROM totp_credentials t WHERE t.tenant_id = u.tenant_id AND t.user_id = u.id AND t.confirmed_at IS NOT NULL) = sqlc.narg(with_mfa)::bool)
  AND (sqlc.narg(with_sso)::bool IS NULL OR EXISTS (SELECT 1 FROM sso_identities i WHERE i.tenant_id = u.tenant_id AND i.user_id = u.id) = sqlc.narg(with_sso)::bool)
  AND (sqlc.narg(before_at)::timestamptz IS NULL OR (u.created_at, u.id) < (sqlc.narg(before_at)::timestamptz, sqlc.narg(before_id)::uuid))
ORDER BY u.created_at DESC, u.id DESC
LIMIT @page_size;

-- name: ListRoleMembers :many
-- Every role binding with its user's address, for the roles page (one query, no cap).
SELECT rb.role, u.id, u.email FROM role_bindings rb
JOIN users u ON u.tenant_id = rb.tenant_id AND u.id = rb.user_id
ORDER BY rb.role, u.email;
