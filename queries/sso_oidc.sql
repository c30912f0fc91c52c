-- OIDC SSO connections (the second SSO protocol). Tenant-scoped.

-- name: InsertOIDCConnection :one
INSERT INTO sso_connections (id, slug, name, provider, protocol, idp_metadata, idp_entity_id, metadata_fetched_at,
                             sp_key_id, sp_key_sealed, sp_cert_der, jit, enforce, default_redirect,
                             attribute_mapping, role_mapping, enabled, oidc_issuer, oidc_client_id,
                             oidc_secret_key_id, oidc_secret_sealed, oidc_scopes, oidc_discovery,
                             oidc_hosted_domain, oidc_tenant)
VALUES (@id, @slug, @name, @provider, 'oidc', '', @oidc_issuer, now(),
        @sp_key_id, @sp_key_sealed, @sp_cert_der, @jit, @enforce, @default_redirect,
        @attribute_mapping, @role_mapping, @enabled, @oidc_issuer, @oidc_client_id,
        @oidc_secret_key_id, @oidc_secret_sealed, @oidc_scopes, @oidc_discovery,
        sqlc.narg(oidc_hosted_domain), sqlc.narg(oidc_tenant))
RETURNING *;

-- name: UpdateOIDCConnection :one
UPDATE sso_connections
SET name = @name, provider = @provider, jit = @jit, enforce = @enforce, default_redirect = @default_redirect,
    attribute_mapping = @attribute_mapping, role_mapping = @role_mapping, enabled = @enabled,
    idp_entity_id = @oidc_issuer, oidc_issuer = @oidc_issuer, oidc_client_id = @oidc_client_id,
    oidc_secret_key_id = @oidc_secret_key_id, oidc_secret_sealed = @oidc_secret_sealed, oidc_scopes = @oidc_scopes,
    oidc_discovery = @oidc_discovery, metadata_fetched_at = @metadata_fetched_at, metadata_error = NULL, metadata_error_at = NULL,
    oidc_hosted_domain = sqlc.narg(oidc_hosted_domain), oidc_tenant = sqlc.narg(oidc_tenant), updated_at = now()
WHERE id = @id AND protocol = 'oidc'
RETURNING *;

-- name: SetOIDCDiscovery :exec
-- A refreshed discovery document (same issuer).
UPDATE sso_connections
SET oidc_discovery = @oidc_discovery, metadata_fetched_at = now(), metadata_error = NULL, metadata_error_at = NULL, updated_at = now()
WHERE id = @id AND protocol = 'oidc';

-- name: ListOIDCConnections :many
SELECT * FROM sso_connections WHERE protocol = 'oidc' ORDER BY metadata_fetched_at NULLS FIRST;

-- name: InsertOIDCRequest :exec
INSERT INTO sso_oidc_requests (connection_id, state_hash, browser_hash, nonce_hash, verifier_key_id, verifier_sealed,
                               purpose, return_to, session_id, expires_at)
VALUES (@connection_id, @state_hash, @browser_hash, @nonce_hash, @verifier_key_id, @verifier_sealed,
        @purpose, @return_to, @session_id, now() + make_interval(secs => @ttl_seconds::int));

-- name: ConsumeOIDCRequest :one
-- Single use: the row is marked consumed whether or not the answer then validates.
UPDATE sso_oidc_requests SET consumed_at = now()
WHERE state_hash = @state_hash AND connection_id = @connection_id AND consumed_at IS NULL AND expires_at > now()
RETURNING *;

-- name: GetOIDCRequestByState :one
SELECT * FROM sso_oidc_requests WHERE state_hash = @state_hash;

-- name: DeleteExpiredOIDCRequests :exec
DELETE FROM sso_oidc_requests WHERE expires_at < now() - interval '1 day';
