-- Events (internal/events). Tenant-scoped.

-- name: InsertEvent :one
INSERT INTO events (type, user_id, data) VALUES (@type, sqlc.narg('user_id'), @data)
RETURNING id, seq, occurred_at;

-- name: ListEventsAfter :many
-- Oldest first after the cursor (@after_xact, @after_seq), only events of transactions older
-- than every transaction still running (so a late commit is never skipped). Test events
-- (webhook.test, sent to one endpoint, possibly the operator's) are not listed.
SELECT id, seq, xact, type, occurred_at, data FROM events
WHERE (xact, seq) > (@after_xact::bigint, @after_seq::bigint)
  AND type <> 'webhook.test'
  AND xact < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
  AND (cardinality(@types::text[]) = 0 OR type = ANY (@types::text[]))
ORDER BY xact, seq
LIMIT @page_size;

-- name: ExportUserEvents :many
SELECT id, type, occurred_at, data FROM events WHERE user_id = @user_id ORDER BY xact, seq;

-- name: EraseUserEvents :execrows
-- At purge: the user's earlier events go (they may name the address); user.deleted, ids
-- only, is written after this and stays.
DELETE FROM events WHERE user_id = @user_id;
