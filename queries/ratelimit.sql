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

-- name: GetLoginFailures :one
SELECT failures, last_failure_at, now()::timestamptz AS db_now FROM login_failures WHERE key = @key;

-- name: RecordLoginFailure :one
INSERT INTO login_failures (key, failures, last_failure_at) VALUES (@key, 1, now())
ON CONFLICT (tenant_id, key) DO UPDATE SET failures = login_failures.failures + 1, last_failure_at = now()
RETURNING failures, last_failure_at;

-- name: ClearLoginFailures :exec
DELETE FROM login_failures WHERE key = @key;

-- name: DeleteStaleLoginFailures :execrows
DELETE FROM login_failures WHERE last_failure_at < now() - interval '1 day';
