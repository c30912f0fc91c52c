-- Mail outbox. Tenant-scoped.

-- name: InsertOutboxMail :one
INSERT INTO mail_outbox (user_id, template, to_address, subject, text_body, html_body)
VALUES (@user_id, @template, @to_address, @subject, @text_body, @html_body)
RETURNING id;

-- name: GetOutboxMail :one
SELECT * FROM mail_outbox WHERE id = @id;

-- name: MarkOutboxSent :exec
-- The bodies (which may hold one-time links) are cleared once the provider has the mail.
UPDATE mail_outbox SET status = 'sent', sent_at = now(), provider_id = @provider_id,
       attempts = attempts + 1, last_error = NULL, text_body = NULL, html_body = NULL
WHERE id = @id;

-- name: MarkOutboxAttemptFailed :exec
UPDATE mail_outbox SET attempts = attempts + 1, last_error = @last_error WHERE id = @id;

-- name: MarkOutboxFailed :exec
UPDATE mail_outbox SET status = 'failed', attempts = attempts + 1, last_error = @last_error,
       text_body = NULL, html_body = NULL
WHERE id = @id;
