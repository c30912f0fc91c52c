-- Account deletion. Tenant-scoped.

-- name: RequestUserDeletion :one
UPDATE users SET status = 'pending_deletion', purge_after = @purge_after, updated_at = now()
WHERE id = @id AND status <> 'pending_deletion'
RETURNING *;

-- name: CancelUserDeletion :one
UPDATE users SET status = 'active', purge_after = NULL, updated_at = now()
WHERE id = @id AND status = 'pending_deletion'
RETURNING *;

-- name: DueUserPurges :many
SELECT id FROM users WHERE status = 'pending_deletion' AND purge_after <= @now ORDER BY purge_after LIMIT 100;

-- name: LockUserForPurge :one
-- Two workers racing for the same user: the second waits, then finds nothing to purge.
SELECT * FROM users WHERE id = @id AND status = 'pending_deletion' AND purge_after <= @now FOR UPDATE;

-- name: CountUserRows :one
SELECT
  (SELECT count(*) FROM sessions x WHERE x.user_id = @user_id::uuid) AS sessions,
  (SELECT count(*) FROM email_tokens x WHERE x.user_id = @user_id::uuid) AS email_tokens,
  (SELECT count(*) FROM password_credentials x WHERE x.user_id = @user_id::uuid) AS password_credentials,
  (SELECT count(*) FROM known_devices x WHERE x.user_id = @user_id::uuid) AS known_devices,
  (SELECT count(*) FROM totp_credentials x WHERE x.user_id = @user_id::uuid) AS totp_credentials,
  (SELECT count(*) FROM recovery_codes x WHERE x.user_id = @user_id::uuid) AS recovery_codes,
  (SELECT count(*) FROM login_challenges x WHERE x.user_id = @user_id::uuid) AS login_challenges,
  (SELECT count(*) FROM mail_outbox x WHERE x.user_id = @user_id::uuid) AS mail_outbox,
  (SELECT count(*) FROM role_bindings x WHERE x.user_id = @user_id::uuid) AS role_bindings;

-- name: DeleteUser :execrows
DELETE FROM users WHERE id = @id;

-- name: InsertDeletionReceipt :exec
INSERT INTO deletion_receipts (user_ref, counts) VALUES (@user_ref, @counts);

-- name: DeleteUsersBatch :execrows
-- Tenant offboarding deletes users in short batches so no long lock blocks anyone.
DELETE FROM users WHERE id IN (SELECT u.id FROM users u LIMIT 500);
