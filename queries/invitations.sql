-- Invitations. Tenant-scoped.

-- name: InsertInvitation :one
INSERT INTO invitations (email, role, token_hash, invited_by, expires_at)
VALUES (@email, @role, @token_hash, @invited_by, @expires_at)
RETURNING *;

-- name: ListInvitations :many
SELECT * FROM invitations WHERE accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now() ORDER BY created_at DESC;

-- name: RevokeInvitation :execrows
UPDATE invitations SET revoked_at = now() WHERE id = @id AND accepted_at IS NULL AND revoked_at IS NULL;

-- name: GetOpenInvitationByHash :one
SELECT * FROM invitations WHERE token_hash = @token_hash AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now();

-- name: GetInvitationByHash :one
-- An invitation in any state (accepted, revoked, expired), for the acceptance page.
SELECT * FROM invitations WHERE token_hash = @token_hash;

-- name: AcceptInvitation :execrows
UPDATE invitations SET accepted_at = now() WHERE id = @id AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now();

-- name: CountUsersByState :one
SELECT count(*) AS users,
       count(*) FILTER (WHERE email_verified_at IS NOT NULL) AS verified,
       count(*) FILTER (WHERE status = 'pending_deletion') AS pending_deletion,
       (SELECT count(*) FROM totp_credentials t WHERE t.confirmed_at IS NOT NULL) AS mfa,
       (SELECT count(*) FROM sessions s WHERE s.revoked_at IS NULL AND s.expires_at > now() AND s.last_active_at + s.idle_timeout > now()) AS active_sessions
FROM users;

-- name: GetOpenInvitationByEmail :one
SELECT * FROM invitations WHERE email_key = lower(@email) AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > now()
ORDER BY created_at DESC LIMIT 1;
