-- name: LockRotation :one
-- The housekeeping rotation's position (the one row of migration 000012), locked until the
-- claiming transaction ends so that two rotation runs at once take different batches.
SELECT last_tenant_id FROM housekeeping_rotation WHERE id FOR UPDATE;

-- name: SetRotation :exec
-- Moves the position to the last tenant of the batch just claimed (NULL: start over).
UPDATE housekeeping_rotation SET last_tenant_id = sqlc.narg('last_tenant_id'), updated_at = now() WHERE id;
