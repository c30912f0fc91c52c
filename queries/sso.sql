-- SAML SSO. Tenant-scoped.

-- name: InsertSSOConnection :one
INSERT INTO sso_connections (id, slug, name, provider, idp_metadata, idp_entity_id, idp_cert_not_after, metadata_url,
                             metadata_fetched_at, name_id_format, sp_key_id, sp_key_sealed, sp_cert_der, jit, enforce,
                             allow_idp_initiated, default_redirect, attribute_mapping, role_mapping, enabled)
VALUES (@id, @slug, @name, @provider, @idp_metadata, @idp_entity_id, @idp_cert_not_after, @metadata_url,
        @metadata_fetched_at, @name_id_format, @sp_key_id, @sp_key_sealed, @sp_cert_der, @jit, @enforce,
        @allow_idp_initiated, @default_redirect, @attribute_mapping, @role_mapping, @enabled)
RETURNING *;

-- name: UpdateSSOConnection :one
UPDATE sso_connections
SET name = @name, provider = @provider, idp_metadata = @idp_metadata, idp_entity_id = @idp_entity_id,
    cert_notice_days = CASE WHEN idp_cert_not_after IS DISTINCT FROM @idp_cert_not_after THEN NULL ELSE cert_notice_days END,
    idp_cert_not_after = @idp_cert_not_after, metadata_url = @metadata_url, metadata_fetched_at = @metadata_fetched_at,
    metadata_error = NULL, metadata_error_at = NULL,
    name_id_format = @name_id_format, jit = @jit, enforce = @enforce, allow_idp_initiated = @allow_idp_initiated,
    default_redirect = @default_redirect, attribute_mapping = @attribute_mapping, role_mapping = @role_mapping,
    enabled = @enabled, updated_at = now()
WHERE id = @id
RETURNING *;

-- name: RotateSSOKey :one
UPDATE sso_connections
SET sp_prev_key_id = sp_key_id, sp_prev_key_sealed = sp_key_sealed, sp_prev_cert_der = sp_cert_der,
    sp_key_id = @sp_key_id, sp_key_sealed = @sp_key_sealed, sp_cert_der = @sp_cert_der, updated_at = now()
WHERE id = @id
RETURNING *;

-- name: DropPreviousSSOKey :execrows
UPDATE sso_connections SET sp_prev_key_id = NULL, sp_prev_key_sealed = NULL, sp_prev_cert_der = NULL, updated_at = now()
WHERE id = @id AND sp_prev_key_id IS NOT NULL;

-- name: SetSSOMetadataError :exec
UPDATE sso_connections SET metadata_error = @metadata_error, metadata_error_at = now() WHERE id = @id;

-- name: GetSSOConnection :one
SELECT * FROM sso_connections WHERE id = @id;

-- name: GetSSOConnectionBySlug :one
SELECT * FROM sso_connections WHERE slug = @slug;

-- name: ListSSOConnections :many
SELECT * FROM sso_connections ORDER BY created_at;

-- name: DeleteSSOConnection :execrows
DELETE FROM sso_connections WHERE id = @id;

-- name: ListSSOConnectionsWithMetadataURL :many
SELECT * FROM sso_connections WHERE metadata_url IS NOT NULL ORDER BY metadata_fetched_at NULLS FIRST;

-- name: UpsertSSODomain :one
INSERT INTO sso_domains (domain, connection_id, verification_token)
VALUES (@domain, @connection_id, @verification_token)
ON CONFLICT (tenant_id, domain) DO UPDATE SET connection_id = EXCLUDED.connection_id
RETURNING *;

-- name: ListSSODomains :many
SELECT * FROM sso_domains ORDER BY domain;

-- name: ListSSODomainsOf :many
SELECT * FROM sso_domains WHERE connection_id = @connection_id ORDER BY domain;

-- name: GetSSODomain :one
SELECT * FROM sso_domains WHERE domain = @domain;

-- name: DeleteSSODomainsOfExcept :exec
DELETE FROM sso_domains WHERE connection_id = @connection_id AND NOT (domain = ANY(@keep::text[]));

-- name: MarkSSODomainChecked :one
UPDATE sso_domains
SET last_checked_at = now(), last_error = sqlc.narg(last_error),
    verified_at = CASE WHEN sqlc.narg(last_error)::text IS NULL THEN COALESCE(verified_at, now()) ELSE verified_at END
WHERE domain = @domain
RETURNING *;

-- name: InsertSSOIdentity :exec
INSERT INTO sso_identities (connection_id, name_id, user_id) VALUES (@connection_id, @name_id, @user_id);

-- name: ListSSOIdentitiesOfUser :many
SELECT i.connection_id, i.name_id, i.created_at, i.last_login_at, c.name AS connection_name
FROM sso_identities i JOIN sso_connections c ON c.id = i.connection_id
WHERE i.user_id = @user_id ORDER BY i.created_at;

-- name: InsertSAMLRequest :exec
INSERT INTO saml_requests (id, connection_id, relay_hash, browser_hash, purpose, return_to, session_id, expires_at)
VALUES (@id, @connection_id, @relay_hash, @browser_hash, @purpose, @return_to, @session_id, now() + make_interval(secs => @ttl_seconds::int));

-- name: ConsumeSAMLRequest :one
-- Single use: the row is marked consumed whether or not the response then validates.
UPDATE saml_requests SET consumed_at = now()
WHERE relay_hash = @relay_hash AND connection_id = @connection_id AND consumed_at IS NULL AND expires_at > now()
RETURNING *;

-- name: RecordSAMLMessage :execrows
-- Replay cache: a second insert of the same id inserts nothing.
INSERT INTO saml_replay (connection_id, message_id, expires_at) VALUES (@connection_id, @message_id, @expires_at)
ON CONFLICT DO NOTHING;

-- name: InsertSSOAttempt :one
INSERT INTO sso_attempts (connection_id, reference, mode, success, reason, user_id, details)
VALUES (@connection_id, @reference, @mode, @success, @reason, @user_id, @details)
RETURNING *;

-- name: ListSSOAttempts :many
SELECT * FROM sso_attempts WHERE connection_id = @connection_id ORDER BY created_at DESC LIMIT @lim;

-- name: RevokeSAMLSessions :many
-- IdP-initiated single logout: every live session of this NameID (of one SessionIndex
-- when given) at this connection; every node drops them from its cache.
WITH r AS (
    UPDATE sessions SET revoked_at = now(), revoked_reason = 'saml_logout'
    WHERE sso_connection_id = @connection_id AND saml_name_id = @name_id AND revoked_at IS NULL
      AND (sqlc.narg(session_index)::text IS NULL OR saml_session_index = sqlc.narg(session_index)::text)
    RETURNING id, user_id, token_hash
)
SELECT r.id, r.user_id, r.token_hash FROM r CROSS JOIN LATERAL pg_notify('gatehouse_session_revoked', encode(r.token_hash, 'hex')) AS n;

-- name: DeleteExpiredSAMLState :exec
WITH a AS (DELETE FROM saml_requests WHERE expires_at < now() - interval '1 day'),
     b AS (DELETE FROM sso_attempts WHERE created_at < now() - interval '30 days')
DELETE FROM saml_replay WHERE expires_at < now();

-- name: GetSAMLRequestByRelay :one
SELECT * FROM saml_requests WHERE relay_hash = @relay_hash;

-- name: GetSessionByID :one
SELECT * FROM sessions WHERE id = @id;

-- name: ListCertificatesDue :many
-- Connections whose earliest IdP signing certificate expires within 30 (then 7) days and
-- whose owners were not told at that threshold yet.
SELECT id, slug, name, idp_cert_not_after,
       (CASE WHEN idp_cert_not_after < now() + interval '7 days' THEN 7 ELSE 30 END)::int AS threshold
FROM sso_connections
WHERE enabled AND idp_cert_not_after IS NOT NULL AND idp_cert_not_after < now() + interval '30 days'
  AND (cert_notice_days IS NULL OR cert_notice_days > (CASE WHEN idp_cert_not_after < now() + interval '7 days' THEN 7 ELSE 30 END));

-- name: MarkCertificateNotice :exec
UPDATE sso_connections SET cert_notice_days = @days WHERE id = @id;

-- name: ListOwners :many
SELECT u.id, u.email FROM users u JOIN role_bindings r ON r.user_id = u.id
WHERE r.role = 'owner' AND u.status = 'active' ORDER BY u.email;

-- name: RecordSAMLMessages :one
-- Replay cache, inside the sign-in transaction: returns how many of the ids were new.
WITH ins AS (
    INSERT INTO saml_replay (connection_id, message_id, expires_at)
    SELECT @connection_id::uuid, unnest(@ids::text[]), @expires_at::timestamptz
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT count(*)::int FROM ins;

-- name: SignInSSOIdentity :one
-- A known (connection, NameID): touch the identity and the user's last sign-in, and
-- return the user, in one statement.
WITH i AS (
    UPDATE sso_identities SET last_login_at = now()
    WHERE connection_id = @connection_id AND name_id = @name_id
    RETURNING user_id
)
UPDATE users SET last_login_at = now() FROM i WHERE users.id = i.user_id
RETURNING users.*;

-- name: CountCertificateExpiries :one
-- Enabled connections of the tenant by how soon their earliest IdP signing certificate
-- expires (for the gatehouse_sso_certificates gauge).
SELECT count(*) FILTER (WHERE idp_cert_not_after < now())::int AS expired,
       count(*) FILTER (WHERE idp_cert_not_after >= now() AND idp_cert_not_after < now() + interval '7 days')::int AS within_7d,
       count(*) FILTER (WHERE idp_cert_not_after >= now() + interval '7 days' AND idp_cert_not_after < now() + interval '30 days')::int AS within_30d
FROM sso_connections
WHERE enabled AND idp_cert_not_after IS NOT NULL;
