-- Session management: parsed device details, SSO origin, known devices for new-sign-in
-- notices, and the "wasn't you?" token purpose.

ALTER TABLE sessions
    ADD COLUMN device             text NOT NULL DEFAULT '' CHECK (length(device) <= 64),
    ADD COLUMN browser            text NOT NULL DEFAULT '' CHECK (length(browser) <= 64),
    ADD COLUMN os                 text NOT NULL DEFAULT '' CHECK (length(os) <= 64),
    ADD COLUMN sso_connection_id  uuid,
    ADD COLUMN saml_session_index text CHECK (length(saml_session_index) <= 512);

CREATE INDEX sessions_expiry_idx ON sessions (tenant_id, expires_at);

-- Devices (browser + OS + device class) a user has signed in from: a login from one not
-- listed here sends a new-sign-in notice.
CREATE TABLE known_devices (
    tenant_id     uuid        NOT NULL DEFAULT NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid,
    user_id       uuid        NOT NULL,
    fingerprint   bytea       NOT NULL CHECK (length(fingerprint) = 32),
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id, fingerprint),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);
ALTER TABLE known_devices ENABLE ROW LEVEL SECURITY;
ALTER TABLE known_devices FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON known_devices
    USING (tenant_id = NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid);

ALTER TABLE email_tokens DROP CONSTRAINT email_tokens_purpose_check;
ALTER TABLE email_tokens ADD CONSTRAINT email_tokens_purpose_check
    CHECK (purpose IN ('verify_email', 'change_email', 'undo_email_change', 'reset_password', 'secure_account'));

-- Cached session checks hold user fields: every node drops a user's cached sessions when
-- the user changes or goes away.
CREATE FUNCTION users_notify_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('gatehouse_session_revoked', 'user:' || OLD.id::text);
    RETURN NULL;
END $$;

CREATE TRIGGER users_notify_change
    AFTER UPDATE OF email, name, status, email_verified_at OR DELETE ON users
    FOR EACH ROW EXECUTE FUNCTION users_notify_change();
