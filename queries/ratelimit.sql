-- Shared counters for rate limits. Tenant-scoped.

-- name: HitRateLimit :one
INSERT INTO rate_limits (key, window_start, count, expires_at)
VALUES (@key, @window_start, 1, @expires_at)
ON CONFLICT (tenant_id, key, window_start) DO UPDATE SET count = rate_limits.count + 1
RETURNING count;

-- name: PeekRateLimit :one
SELECT COALESCE(max(count), 0)::int FROM rate_limits WHERE key = @key AND window_start = @window_start;

-- name: DeleteExpiredRateLimits :execrows
DELETE FROM rate_limits WHERE expires_at < now();

-- Failure counters of password and code checks (internal/ratelimit/credentials.go). Times
-- come from the application clock (@now) at both ends, like the fixed windows above.

-- name: LockLoginFailures :one
-- Creates the counter at zero when missing and locks its row until the transaction ends, so
-- concurrent checks of one key take turns and each sees the attempts counted before it.
INSERT INTO login_failures (key, failures, last_failure_at) VALUES (@key, 0, @now)
ON CONFLICT (tenant_id, key) DO UPDATE SET failures = login_failures.failures
RETURNING failures, last_failure_at;

-- name: RecordLoginFailure :one
-- Counts one attempt (a check counts before it runs; a success clears the counter).
UPDATE login_failures SET failures = failures + 1, last_failure_at = @now WHERE key = @key
RETURNING failures;

-- name: ClearLoginFailures :exec
DELETE FROM login_failures WHERE key = @key;

-- name: DeleteStaleLoginFailures :execrows
DELETE FROM login_failures WHERE last_failure_at < now() - interval '1 day';

-- name: PeekLoginFailures :many
-- The counters of a check, read without counting or locking (secrets too long to guess
-- are compared first and counted only when wrong: see Limiter.Peek).
SELECT key, failures, last_failure_at FROM login_failures WHERE key = ANY(@keys::text[]);
