-- A change the user asked for on a page that first needs re-authentication (step-up):
-- kept on the session that asked for it, for a few minutes, so that the page the user
-- comes back to after re-authenticating still holds what they typed (never silently
-- dropped). Bound to the session by construction: it ends with it, and no other session
-- or user can read it (the sessions table is under forced row-level security). Passwords
-- are never kept: pending_value is an email address or empty.
ALTER TABLE sessions
    ADD COLUMN pending_action text CHECK (pending_action IN ('email.change', 'account.delete', 'account.export', 'password.change')),
    ADD COLUMN pending_value  text NOT NULL DEFAULT '' CHECK (length(pending_value) <= 320),
    ADD COLUMN pending_until  timestamptz,
    ADD CONSTRAINT sessions_pending_check CHECK ((pending_action IS NULL) = (pending_until IS NULL));

-- Superseded email tokens (a newer link was sent, or the purpose was fulfilled another
-- way) are ended by their expiry from now on, so that used_at means "consumed by its own
-- link": the pages can then tell a used link from an expired or replaced one.
