-- Data export (GDPR Art. 15/20): everything stored about one user. Tenant-scoped.

-- name: ExportSessions :many
SELECT id, created_at, last_active_at, expires_at, ip, user_agent, device, browser, os, methods, aal, auth_time, revoked_at, revoked_reason
FROM sessions WHERE user_id = @user_id ORDER BY created_at;

-- name: ExportEmailTokens :many
SELECT purpose, email, created_at, expires_at, used_at FROM email_tokens WHERE user_id = @user_id ORDER BY created_at;

-- name: ExportKnownDevices :many
SELECT first_seen_at, last_seen_at FROM known_devices WHERE user_id = @user_id ORDER BY first_seen_at;

-- name: ExportTOTP :many
SELECT confirmed_at, created_at FROM totp_credentials WHERE user_id = @user_id;

-- name: ExportRecoveryCodes :one
SELECT count(*) AS total, count(*) FILTER (WHERE used_at IS NULL) AS unused FROM recovery_codes WHERE user_id = @user_id;

-- name: ExportLoginChallenges :many
SELECT created_at, expires_at, used_at, attempts FROM login_challenges WHERE user_id = @user_id ORDER BY created_at;

-- name: ExportMail :many
SELECT template, to_address, subject, status, attempts, created_at, sent_at FROM mail_outbox WHERE user_id = @user_id ORDER BY created_at;

-- name: ExportAuditEvents :many
SELECT id, occurred_at, action, actor_id, actor_label, subject_id, subject_label, ip, user_agent, request_id, details
FROM audit_events WHERE actor_id = @user_id OR subject_id = @user_id ORDER BY occurred_at;

-- name: ExportInvitationsSent :many
SELECT email, role, created_at, expires_at, accepted_at, revoked_at FROM invitations WHERE invited_by = @user_id ORDER BY created_at;

-- name: ExportPasswordCredential :many
SELECT created_at, updated_at FROM password_credentials WHERE user_id = @user_id;

-- name: ExportSSOAttempts :many
SELECT id, connection_id, reference, mode, success, reason, details, created_at FROM sso_attempts WHERE user_id = @user_id ORDER BY created_at;

-- name: ExportSessionApps :many
-- The apps each of the user's sessions signed in to (OpenID Provider).
SELECT x.session_id, a.client_id, a.name AS app_name, x.created_at
FROM oidc_session_apps x
JOIN sessions s ON s.tenant_id = x.tenant_id AND s.id = x.session_id
JOIN apps a ON a.tenant_id = x.tenant_id AND a.id = x.app_id
WHERE s.user_id = @user_id ORDER BY x.created_at;
