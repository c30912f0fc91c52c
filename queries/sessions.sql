-- Server-side sessions. Tenant-scoped.

-- name: InsertSession :one
INSERT INTO sessions (user_id, token_hash, idle_timeout, expires_at, ip, user_agent, methods, aal)
VALUES (@user_id, @token_hash, make_interval(secs => @idle_seconds::int), now() + make_interval(secs => @absolute_seconds::int),
        @ip, @user_agent, @methods, @aal)
RETURNING *;

-- name: GetActiveSessionByHash :one
-- Expiry is computed by the database clock.
SELECT s.*, u.email, u.name, u.status AS user_status, u.email_verified_at, u.created_at AS user_created_at
FROM sessions s JOIN users u ON u.tenant_id = s.tenant_id AND u.id = s.user_id
WHERE s.token_hash = @token_hash AND s.revoked_at IS NULL
  AND s.expires_at > now() AND s.last_active_at + s.idle_timeout > now();

-- name: TouchSession :exec
-- At most one write per session per minute; never revives a revoked session.
UPDATE sessions SET last_active_at = now()
WHERE id = @id AND revoked_at IS NULL AND last_active_at < now() - interval '1 minute';

-- name: RevokeSession :execrows
UPDATE sessions SET revoked_at = now(), revoked_reason = @reason
WHERE id = @id AND revoked_at IS NULL;

-- name: RevokeUserSessions :execrows
UPDATE sessions SET revoked_at = now(), revoked_reason = @reason
WHERE user_id = @user_id AND revoked_at IS NULL;
