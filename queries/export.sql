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

-- name: ExportOIDCGrants :many
-- The apps the user let in (consent), with the app's name.
SELECT a.name AS app, a.client_id, g.scopes, g.created_at, g.updated_at
FROM oidc_grants g JOIN apps a ON a.tenant_id = g.tenant_id AND a.id = g.app_id
WHERE g.user_id = @user_id ORDER BY g.created_at;

-- name: ExportOIDCTokens :many
-- Tokens issued to apps for the user (never the token or its hash).
SELECT a.name AS app, a.client_id, t.kind, t.scopes, t.session_id, t.created_at, t.expires_at, t.used_at, t.revoked_at
FROM oidc_tokens t JOIN apps a ON a.tenant_id = t.tenant_id AND a.id = t.app_id
WHERE t.user_id = @user_id ORDER BY t.created_at;

-- name: ExportOIDCAuthRequests :many
-- Sign-ins to apps in progress or recently answered (never the code).
SELECT a.name AS app, a.client_id, r.done, r.created_at, r.expires_at
FROM oidc_auth_requests r JOIN apps a ON a.tenant_id = r.tenant_id AND a.id = r.app_id
WHERE r.user_id = @user_id ORDER BY r.created_at;
-- name: ExportSessionApps :many
-- The apps each of the user's sessions signed in to (OpenID Provider).
SELECT x.session_id, a.client_id, a.name AS app_name, x.created_at
FROM oidc_session_apps x
JOIN sessions s ON s.tenant_id = x.tenant_id AND s.id = x.session_id
JOIN apps a ON a.tenant_id = x.tenant_id AND a.id = x.app_id
WHERE s.user_id = @user_id ORDER BY x.created_at;
