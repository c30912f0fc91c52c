-- Server-side sessions. Tenant-scoped.

-- name: InsertSession :one
-- auth_time comes from the service's clock, the same clock step-up rules are checked with.
INSERT INTO sessions (user_id, token_hash, idle_timeout, expires_at, ip, user_agent, device, browser, os, methods, aal,
                      sso_connection_id, saml_session_index, saml_name_id, auth_time)
VALUES (@user_id, @token_hash, make_interval(secs => @idle_seconds::int), now() + make_interval(secs => @absolute_seconds::int),
        @ip, @user_agent, @device, @browser, @os, @methods, @aal, @sso_connection_id, @saml_session_index, @saml_name_id, @auth_time)
RETURNING *;

-- name: GetActiveSessionByHash :one
-- Expiry is computed by the database clock; db_now lets the cache translate deadlines to
-- the local clock.
SELECT s.*, u.email, u.name, u.status AS user_status, u.email_verified_at, u.created_at AS user_created_at,
       now()::timestamptz AS db_now
FROM sessions s JOIN users u ON u.tenant_id = s.tenant_id AND u.id = s.user_id
WHERE s.token_hash = @token_hash AND s.revoked_at IS NULL
  AND s.expires_at > now() AND s.last_active_at + s.idle_timeout > now();

-- name: TouchSession :one
-- At most one write per session per minute; never revives a revoked or expired session.
-- Returns the new last_active_at, or no row when nothing was written.
UPDATE sessions SET last_active_at = now()
WHERE id = @id AND revoked_at IS NULL AND last_active_at < now() - interval '1 minute'
  AND expires_at > now() AND last_active_at + idle_timeout > now()
RETURNING last_active_at;

-- name: ListUserSessions :many
SELECT * FROM sessions
WHERE user_id = @user_id AND revoked_at IS NULL AND expires_at > now() AND last_active_at + idle_timeout > now()
ORDER BY last_active_at DESC;

-- name: RevokeSession :many
-- Returns the session id (for what a session end fans out to: internal/session's Ender)
-- and the token hash for the revocation broadcast, and notifies it on commit. The other
-- revocations below return the same.
WITH r AS (
    UPDATE sessions SET revoked_at = now(), revoked_reason = @reason
    WHERE id = @id AND user_id = @user_id AND revoked_at IS NULL
    RETURNING id, user_id, token_hash
)
SELECT r.id, r.user_id, r.token_hash FROM r CROSS JOIN LATERAL pg_notify('gatehouse_session_revoked', encode(r.token_hash, 'hex')) AS n;

-- name: RevokeUserSessions :many
WITH r AS (
    UPDATE sessions SET revoked_at = now(), revoked_reason = @reason
    WHERE user_id = @user_id AND revoked_at IS NULL
    RETURNING id, user_id, token_hash
)
SELECT r.id, r.user_id, r.token_hash FROM r CROSS JOIN LATERAL pg_notify('gatehouse_session_revoked', encode(r.token_hash, 'hex')) AS n;

-- name: RevokeOtherSessions :many
WITH r AS (
    UPDATE sessions SET revoked_at = now(), revoked_reason = @reason
    WHERE user_id = @user_id AND id <> @keep_id AND revoked_at IS NULL
    RETURNING id, user_id, token_hash
)
SELECT r.id, r.user_id, r.token_hash FROM r CROSS JOIN LATERAL pg_notify('gatehouse_session_revoked', encode(r.token_hash, 'hex')) AS n;

-- name: EvictOldestSessions :many
-- Keeps the newest @keep active sessions of the user, revoking the rest.
WITH r AS (
    UPDATE sessions SET revoked_at = now(), revoked_reason = 'evicted'
    WHERE id IN (
        SELECT s2.id FROM sessions s2
        WHERE s2.user_id = @user_id AND s2.revoked_at IS NULL AND s2.expires_at > now()
        ORDER BY s2.created_at DESC
        OFFSET @keep::int
    )
    RETURNING id, user_id, token_hash
)
SELECT r.id, r.user_id, r.token_hash FROM r CROSS JOIN LATERAL pg_notify('gatehouse_session_revoked', encode(r.token_hash, 'hex')) AS n;

-- name: DeleteDeadSessions :execrows
-- Revoked and expired sessions are kept a day (for the user's and admins' view of recent
-- sign-outs), then deleted.
DELETE FROM sessions
WHERE (revoked_at IS NOT NULL AND revoked_at < now() - interval '1 day')
   OR expires_at < now() - interval '1 day'
   OR last_active_at + idle_timeout < now() - interval '1 day';

-- name: SeeDevice :one
-- Records a device for the user; returns whether it was new and whether the user had any
-- device before.
WITH prior AS (SELECT count(*) AS n FROM known_devices kd WHERE kd.user_id = @user_id),
ins AS (
    INSERT INTO known_devices (user_id, fingerprint) VALUES (@user_id, @fingerprint)
    ON CONFLICT (tenant_id, user_id, fingerprint) DO UPDATE SET last_seen_at = now()
    RETURNING (xmax = 0) AS inserted
)
SELECT ins.inserted::bool AS new_device, (prior.n > 0)::bool AS had_devices FROM ins, prior;

-- name: StepUpSession :one
-- A successful re-authentication: new token, fresh auth_time, the method just used.
-- Returns the old token hash (for the revocation broadcast) and notifies it on commit.
WITH old AS (SELECT s.id, s.token_hash FROM sessions s WHERE s.id = @id AND s.revoked_at IS NULL FOR UPDATE),
upd AS (
    UPDATE sessions SET token_hash = @new_token_hash, auth_time = @auth_time, methods = @methods, aal = @aal,
           last_active_at = now()
    FROM old WHERE sessions.id = old.id
    RETURNING sessions.*, old.token_hash AS old_token_hash
)
SELECT upd.* FROM upd CROSS JOIN LATERAL pg_notify('gatehouse_session_revoked', encode(upd.old_token_hash, 'hex')) AS n;

-- name: CountActiveSessions :one
-- Sessions of the tenant neither revoked nor past their absolute expiry (the
-- gatehouse_sessions_active gauge; idle expiry is left to the check).
SELECT count(*) FROM sessions WHERE revoked_at IS NULL AND expires_at > now();

-- name: HoldPendingChange :exec
-- The change a page asked for before re-authentication, kept on the session for ttl.
UPDATE sessions SET pending_action = @action, pending_value = @value,
       pending_until = now() + make_interval(secs => @ttl_seconds::int)
WHERE id = @id AND revoked_at IS NULL;

-- name: GetPendingChange :one
SELECT pending_action::text AS action, pending_value AS value FROM sessions
WHERE id = @id AND revoked_at IS NULL AND pending_action IS NOT NULL AND pending_until > now();

-- name: ClearPendingChange :exec
-- Single use: the change was made (or replaced by another).
UPDATE sessions SET pending_action = NULL, pending_value = '', pending_until = NULL
WHERE id = @id AND pending_action = @action;
