-- TOTP, recovery codes and login challenges. Tenant-scoped.

-- name: GetTOTP :one
SELECT * FROM totp_credentials WHERE user_id = @user_id;

-- name: UpsertPendingTOTP :exec
-- A new enrolment replaces an unconfirmed one; a confirmed one must be disabled first.
INSERT INTO totp_credentials (user_id, key_id, secret_sealed) VALUES (@user_id, @key_id, @secret_sealed)
ON CONFLICT (tenant_id, user_id) DO UPDATE SET key_id = EXCLUDED.key_id, secret_sealed = EXCLUDED.secret_sealed,
    created_at = now(), last_step = 0
WHERE totp_credentials.confirmed_at IS NULL;

-- name: ConfirmTOTP :execrows
UPDATE totp_credentials SET confirmed_at = now() WHERE user_id = @user_id AND confirmed_at IS NULL;

-- name: UseTOTPStep :execrows
-- A code is accepted once: only a later time step than the last one used advances.
UPDATE totp_credentials SET last_step = @step WHERE user_id = @user_id AND last_step < @step;

-- name: DeleteTOTP :execrows
DELETE FROM totp_credentials WHERE user_id = @user_id;

-- name: DeleteRecoveryCodes :exec
DELETE FROM recovery_codes WHERE user_id = @user_id;

-- name: InsertRecoveryCode :exec
INSERT INTO recovery_codes (user_id, code_hash) VALUES (@user_id, @code_hash);

-- name: UseRecoveryCode :execrows
UPDATE recovery_codes SET used_at = now() WHERE user_id = @user_id AND code_hash = @code_hash AND used_at IS NULL;

-- name: CountUnusedRecoveryCodes :one
SELECT count(*) FROM recovery_codes WHERE user_id = @user_id AND used_at IS NULL;

-- name: InsertLoginChallenge :exec
INSERT INTO login_challenges (user_id, token_hash, expires_at) VALUES (@user_id, @token_hash, now() + interval '5 minutes');

-- name: AttemptLoginChallenge :one
-- Counts an attempt; a challenge allows five, unexpired and unused.
UPDATE login_challenges SET attempts = attempts + 1
WHERE token_hash = @token_hash AND used_at IS NULL AND expires_at > now() AND attempts < 5
RETURNING id, user_id;

-- name: UseLoginChallenge :execrows
UPDATE login_challenges SET used_at = now() WHERE id = @id AND used_at IS NULL;

-- name: DeleteOldLoginChallenges :execrows
DELETE FROM login_challenges WHERE expires_at < now() - interval '1 day';

-- name: RecoveryCodeWasUsed :one
-- Whether this code is one of the user's that was used already (to say so, not "invalid").
SELECT EXISTS (SELECT 1 FROM recovery_codes WHERE user_id = @user_id AND code_hash = @code_hash AND used_at IS NOT NULL);
