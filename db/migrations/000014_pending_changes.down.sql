ALTER TABLE sessions
    DROP CONSTRAINT IF EXISTS sessions_pending_check,
    DROP COLUMN IF EXISTS pending_action,
    DROP COLUMN IF EXISTS pending_value,
    DROP COLUMN IF EXISTS pending_until;
