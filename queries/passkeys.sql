-- Passkeys (internal/passkey). Tenant-scoped.

-- name: InsertPasskey :one
INSERT INTO passkeys (user_id, credential_id, public_key, attestation_format, aaguid, transports, sign_count,
                      backup_eligible, backup_state, user_verified, name)
VALUES (@user_id, @credential_id, @public_key, @attestation_format, @aaguid, @transports, @sign_count,
        @backup_eligible, @backup_state, @user_verified, @name)
ON CONFLICT (tenant_id, credential_id) DO NOTHING
RETURNING *;

-- name: ListPasskeys :many
SELECT * FROM passkeys WHERE user_id = @user_id ORDER BY created_at, id;

-- name: CountPasskeys :one
SELECT count(*) FROM passkeys WHERE user_id = @user_id;

-- name: GetPasskeyByCredential :one
SELECT * FROM passkeys WHERE credential_id = @credential_id;

-- name: RenamePasskey :one
UPDATE passkeys SET name = @name WHERE id = @id AND user_id = @user_id RETURNING *;

-- name: DeletePasskey :one
DELETE FROM passkeys WHERE id = @id AND user_id = @user_id RETURNING *;

-- name: UsePasskey :execrows
-- Records a verified assertion; the counter only moves forward (a zero counter means the
-- authenticator does not count, and stays zero).
UPDATE passkeys SET sign_count = @sign_count, backup_state = @backup_state, user_verified = user_verified OR @user_verified,
       last_used_at = now()
WHERE id = @id AND (sign_count = 0 OR @sign_count > sign_count);

-- name: InsertPasskeyChallenge :exec
INSERT INTO passkey_challenges (challenge_hash, purpose, user_id, session_id, binding_hash, session_data, expires_at)
VALUES (@challenge_hash, @purpose, @user_id, @session_id, @binding_hash, @session_data, now() + interval '5 minutes');

-- name: UsePasskeyChallenge :one
-- Consumes a pending challenge once.
-- The row comes back whatever its state, marked used by this call or not (consumed):
-- an expired or already used challenge is refused by the caller with its own code.
WITH prior AS (SELECT c.id, c.used_at AS prior_used_at FROM passkey_challenges c WHERE c.challenge_hash = @challenge_hash FOR UPDATE)
UPDATE passkey_challenges SET used_at = COALESCE(passkey_challenges.used_at, now())
FROM prior WHERE passkey_challenges.id = prior.id
RETURNING passkey_challenges.*, (passkey_challenges.expires_at <= now())::bool AS expired,
          (prior.prior_used_at IS NULL AND passkey_challenges.expires_at > now())::bool AS consumed;

-- name: DeleteOldPasskeyChallenges :execrows
DELETE FROM passkey_challenges WHERE expires_at < now() - interval '1 day';

-- name: ExportPasskeys :many
SELECT id, name, transports, backup_eligible, backup_state, sign_count, created_at, last_used_at FROM passkeys WHERE user_id = @user_id ORDER BY created_at;

-- name: ExportPasskeyChallenges :many
SELECT purpose, created_at, expires_at, used_at FROM passkey_challenges WHERE user_id = @user_id ORDER BY created_at;

-- name: PendingLoginChallengeUser :one
-- The user of an unused, unexpired sign-in attempt with attempts left (not counted).
SELECT user_id FROM login_challenges WHERE token_hash = @token_hash AND used_at IS NULL AND expires_at > now() AND attempts < 5;

-- name: CountUserPasskeyRows :one
-- For the deletion receipt: the passkey rows a purge erases (cascade from users).
SELECT
  (SELECT count(*) FROM passkeys x WHERE x.user_id = @user_id::uuid) AS passkeys,
  (SELECT count(*) FROM passkey_challenges x WHERE x.user_id = @user_id::uuid) AS passkey_challenges;
