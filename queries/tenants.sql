-- Global tenant table (no RLS). Used by tenant resolution, the operator CLI/API and
-- declarative apply; runs through store.InPlatform.

-- name: CreateTenant :one
INSERT INTO tenants (slug, name, status, policy)
VALUES (@slug, @name, @status, @policy)
RETURNING *;

-- name: GetTenantBySlug :one
SELECT * FROM tenants WHERE slug = @slug;

-- name: GetTenantByID :one
SELECT * FROM tenants WHERE id = @id;

-- name: ListTenants :many
SELECT * FROM tenants ORDER BY slug;

-- name: UpdateTenant :one
UPDATE tenants
SET name = @name, policy = @policy, status = @status, updated_at = now()
WHERE id = @id
RETURNING *;

-- name: SetTenantStatus :one
UPDATE tenants
SET status = @status, updated_at = now()
WHERE slug = @slug
RETURNING *;

-- name: ScheduleTenantPurge :one
UPDATE tenants
SET status = 'suspended', purge_after = @purge_after, updated_at = now()
WHERE slug = @slug
RETURNING *;

-- name: ListTenantsDueForPurge :many
SELECT * FROM tenants
WHERE purge_after IS NOT NULL AND purge_after <= now()
ORDER BY purge_after
LIMIT 100;

-- name: DeleteTenant :execrows
-- Deleting the tenant row cascades through every tenant-scoped table via the composite
-- foreign keys that all lead with tenant_id.
DELETE FROM tenants WHERE id = @id;

-- name: NotifyTenantChanged :exec
SELECT pg_notify('gatehouse_tenant_changed', @slug::text);
