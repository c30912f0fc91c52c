-- Gatehouse as the tenant's OpenID Provider (internal/oidcop). Tenant-scoped.

-- name: ListOIDCKeys :many
-- The keys the JWKS publishes (and the one that signs among them), oldest first.
SELECT * FROM oidc_keys WHERE expires_at IS NULL OR expires_at > @now::timestamptz ORDER BY active_from, created_at;

-- name: InsertOIDCKey :one
INSERT INTO oidc_keys (kid, alg, key_id, private_sealed, public_jwk, created_at, active_from)
VALUES (@kid, @alg, @key_id, @private_sealed, @public_jwk, @created_at, @active_from)
RETURNING *;

-- name: RetireOIDCKeys :execrows
-- Keys superseded by a key that signs since @active_from stop signing then and leave the
-- JWKS once every token they signed has expired (@expires_at).
UPDATE oidc_keys SET retired_at = @active_from::timestamptz, expires_at = @expires_at::timestamptz
WHERE retired_at IS NULL AND active_from < @active_from::timestamptz AND kid <> @kid;

-- name: DeleteExpiredOIDCKeys :execrows
DELETE FROM oidc_keys WHERE expires_at IS NOT NULL AND expires_at <= @now::timestamptz;

-- name: InsertApp :one
INSERT INTO apps (client_id, name, type, secret_hash, redirect_uris, post_logout_redirect_uris, backchannel_logout_uri,
                  first_party, allowed_scopes, grant_types, access_token_ttl_seconds, refresh_token_ttl_seconds)
VALUES (@client_id, @name, @type, @secret_hash, @redirect_uris, @post_logout_redirect_uris, @backchannel_logout_uri,
        @first_party, @allowed_scopes, @grant_types, @access_token_ttl_seconds, @refresh_token_ttl_seconds)
RETURNING *;

-- name: UpdateApp :one
UPDATE apps
SET name = @name, redirect_uris = @redirect_uris, post_logout_redirect_uris = @post_logout_redirect_uris,
    backchannel_logout_uri = @backchannel_logout_uri, first_party = @first_party, allowed_scopes = @allowed_scopes,
    grant_types = @grant_types, access_token_ttl_seconds = @access_token_ttl_seconds,
    refresh_token_ttl_seconds = @refresh_token_ttl_seconds, updated_at = now()
WHERE id = @id
RETURNING *;

-- name: RotateAppSecret :one
-- The new secret works at once; the previous one until @previous_expires_at.
UPDATE apps
SET previous_secret_hash = secret_hash, previous_secret_expires_at = @previous_expires_at,
    secret_hash = @secret_hash, updated_at = now()
WHERE id = @id AND type = 'confidential'
RETURNING *;

-- name: GetApp :one
SELECT * FROM apps WHERE id = @id;

-- name: GetAppByClientID :one
SELECT * FROM apps WHERE client_id = @client_id;

-- name: ListApps :many
SELECT * FROM apps ORDER BY created_at, id;

-- name: DeleteApp :execrows
DELETE FROM apps WHERE id = @id;

-- name: InsertAuthRequest :one
INSERT INTO oidc_auth_requests (app_id, params, user_id, expires_at)
VALUES (@app_id, @params, @user_id, @expires_at)
RETURNING *;

-- name: GetAuthRequest :one
SELECT r.*, a.client_id FROM oidc_auth_requests r JOIN apps a ON a.tenant_id = r.tenant_id AND a.id = r.app_id
WHERE r.id = @id AND r.expires_at > @now::timestamptz;

-- name: CompleteAuthRequest :one
-- The user signed in (or was already): the request is bound to the session and done.
UPDATE oidc_auth_requests
SET user_id = @user_id, session_id = @session_id, auth_time = @auth_time, amr = @amr, acr = @acr, done = true
WHERE id = @id AND expires_at > @now::timestamptz AND code_hash IS NULL
RETURNING *;

-- name: SaveAuthCode :execrows
UPDATE oidc_auth_requests SET code_hash = @code_hash, code_expires_at = @code_expires_at
WHERE id = @id AND done AND code_hash IS NULL;

-- name: GetAuthRequestByCode :one
-- The request a code was issued for, as UseAuthCode returns it, without marking it used:
-- the token transaction does that (MarkAuthCodeUsed), so an exchange commits once.
SELECT r.id, r.app_id, r.params, r.user_id, r.session_id, r.auth_time, r.amr, r.acr, r.done,
       r.code_expires_at, r.code_used_at, r.created_at, a.client_id
FROM oidc_auth_requests r JOIN apps a ON a.tenant_id = r.tenant_id AND a.id = r.app_id
WHERE r.code_hash = @code_hash;

-- name: MarkAuthCodeUsed :execrows
-- Uses a code once: 0 rows when another exchange used it first.
UPDATE oidc_auth_requests SET code_used_at = @now::timestamptz WHERE id = @id AND code_used_at IS NULL;

-- name: DeleteAuthRequest :exec
DELETE FROM oidc_auth_requests WHERE id = @id AND code_used_at IS NULL AND code_hash IS NULL;

-- name: RevokeTokensOfAuthRequest :many
-- A reused code revokes every token its first use issued, refresh families included.
UPDATE oidc_tokens o SET revoked_at = now()
WHERE o.revoked_at IS NULL AND (o.auth_request_id = @auth_request_id::uuid
   OR o.family_id IN (SELECT f.family_id FROM oidc_tokens f WHERE f.auth_request_id = @auth_request_id::uuid AND f.family_id IS NOT NULL))
RETURNING o.id;

-- name: InsertOIDCToken :one
INSERT INTO oidc_tokens (id, kind, app_id, user_id, session_id, auth_request_id, family_id, token_hash, scopes,
                         auth_time, amr, acr, expires_at)
VALUES (@id, @kind, @app_id, @user_id, @session_id, @auth_request_id, @family_id, @token_hash, @scopes,
        @auth_time, @amr, @acr, @expires_at)
RETURNING *;

-- name: GetRefreshToken :one
-- A refresh token with its app and whether its session still lives.
SELECT t.*, a.client_id,
       (t.session_id IS NULL OR (s.revoked_at IS NULL AND s.expires_at > @now::timestamptz AND s.last_active_at + s.idle_timeout > @now::timestamptz))::boolean AS session_active
FROM oidc_tokens t
JOIN apps a ON a.tenant_id = t.tenant_id AND a.id = t.app_id
LEFT JOIN sessions s ON s.tenant_id = t.tenant_id AND s.id = t.session_id
WHERE t.token_hash = @token_hash AND t.kind = 'refresh';

-- name: GetActiveToken :one
-- An access or refresh token that still works: not revoked, not expired, not used (refresh),
-- and its session alive.
-- live_until: when it stops working unless revoked (its own expiry, its session's absolute
-- and idle deadlines as of now), how long a node may cache it.
SELECT t.*, a.client_id,
       LEAST(t.expires_at, COALESCE(s.expires_at, t.expires_at), COALESCE(s.last_active_at + s.idle_timeout, t.expires_at))::timestamptz AS live_until
FROM oidc_tokens t
JOIN apps a ON a.tenant_id = t.tenant_id AND a.id = t.app_id
LEFT JOIN sessions s ON s.tenant_id = t.tenant_id AND s.id = t.session_id
WHERE t.id = @id AND t.revoked_at IS NULL AND t.expires_at > @now::timestamptz AND t.used_at IS NULL
  AND (t.session_id IS NULL OR (s.revoked_at IS NULL AND s.expires_at > @now::timestamptz AND s.last_active_at + s.idle_timeout > @now::timestamptz));

-- name: UseRefreshToken :execrows
UPDATE oidc_tokens SET used_at = @now::timestamptz WHERE id = @id AND used_at IS NULL AND revoked_at IS NULL;

-- name: RevokeTokenFamily :execrows
UPDATE oidc_tokens SET revoked_at = now() WHERE family_id = @family_id AND revoked_at IS NULL;

-- name: RevokeOIDCToken :execrows
UPDATE oidc_tokens SET revoked_at = now() WHERE id = @id AND app_id = @app_id AND revoked_at IS NULL;

-- name: GetGrant :one
SELECT * FROM oidc_grants WHERE user_id = @user_id AND app_id = @app_id;

-- name: UpsertGrant :exec
INSERT INTO oidc_grants (user_id, app_id, scopes) VALUES (@user_id, @app_id, @scopes)
ON CONFLICT (tenant_id, user_id, app_id) DO UPDATE SET scopes = EXCLUDED.scopes, updated_at = now();

-- name: DeleteExpiredAuthRequests :execrows
DELETE FROM oidc_auth_requests WHERE expires_at < @before;

-- name: DeleteExpiredOIDCTokens :execrows
DELETE FROM oidc_tokens WHERE expires_at < @before;

-- name: ListUserGrants :many
SELECT g.app_id, a.name, a.client_id, g.scopes, g.created_at, g.updated_at
FROM oidc_grants g JOIN apps a ON a.tenant_id = g.tenant_id AND a.id = g.app_id
WHERE g.user_id = @user_id ORDER BY a.name, g.app_id;

-- name: DeleteGrant :execrows
DELETE FROM oidc_grants WHERE user_id = @user_id AND app_id = @app_id;

-- name: RevokeUserAppTokens :many
-- Taking back an app's access ends every token it holds for the user.
UPDATE oidc_tokens SET revoked_at = now() WHERE user_id = @user_id AND app_id = @app_id AND revoked_at IS NULL
RETURNING id;
-- name: RecordSessionApp :exec
-- The session signed in to the app (an authorization request completed under it).
INSERT INTO oidc_session_apps (session_id, app_id) VALUES (@session_id, @app_id) ON CONFLICT DO NOTHING;

-- name: ListBackchannelTargets :many
-- Sessions that just ended (in this transaction) × the apps to tell: every app with a
-- back-channel logout URI that the session signed in to.
SELECT s.tenant_id, s.id AS session_id, s.user_id, a.id AS app_id
FROM oidc_session_apps x
JOIN sessions s ON s.tenant_id = x.tenant_id AND s.id = x.session_id
JOIN apps a ON a.tenant_id = x.tenant_id AND a.id = x.app_id
WHERE x.session_id = ANY((@session_ids::text[])::uuid[]) AND a.backchannel_logout_uri IS NOT NULL AND a.backchannel_logout_uri <> ''
ORDER BY s.id, a.id;

-- name: RevokeTokensOfSessions :execrows
-- The tokens of ended sessions (the token queries refuse them already; revoked rows keep
-- introspection exact without the join).
UPDATE oidc_tokens SET revoked_at = now() WHERE session_id = ANY((@session_ids::text[])::uuid[]) AND revoked_at IS NULL;

-- name: GetBackchannelApp :one
SELECT client_id, backchannel_logout_uri FROM apps WHERE id = @id;

-- name: NotifyOIDCRevoked :exec
-- Tells every node's token and app cache (internal/oidcop cache.go) what to drop:
-- "sid:<session id>", "jti:<token id>", "app:<app id>", "user:<user id>" or "all".
SELECT pg_notify('gatehouse_oidc_revoked', p) FROM unnest(@payloads::text[]) AS p;

-- name: InsertOIDCTokenPair :exec
-- The access token and the refresh token of one token response, in one statement.
INSERT INTO oidc_tokens (id, kind, app_id, user_id, session_id, auth_request_id, family_id, token_hash, scopes,
                         auth_time, amr, acr, expires_at)
VALUES (@access_id, 'access', @app_id, @user_id, @session_id, @auth_request_id, NULL, NULL, @scopes,
        @auth_time, @amr, @acr, @access_expires_at),
       (@refresh_id, 'refresh', @app_id, @user_id, @session_id, @auth_request_id, @family_id, @token_hash, @scopes,
        @auth_time, @amr, @acr, @refresh_expires_at);

-- name: GetUserClaims :one
-- What an ID token says of a user: the user and its roles, in one statement.
SELECT u.id, u.email, u.email_verified_at, u.name,
       COALESCE((SELECT array_agg(r.role ORDER BY r.role) FROM role_bindings r WHERE r.user_id = u.id), '{}')::text[] AS roles
FROM users u
WHERE u.id = @id;
