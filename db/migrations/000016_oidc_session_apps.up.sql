-- Which apps a Gatehouse session signed in to (internal/oidcop, docs/apps.md "Sign-out"):
-- recorded when an authorization request completes under the session, so that when the
-- session ends every such app with a back-channel logout URI is told, however long ago its
-- tokens expired. Rows go with the session (deleted a day after it ends) or the app.
CREATE TABLE oidc_session_apps (
    tenant_id  uuid        NOT NULL DEFAULT NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid REFERENCES tenants (id) ON DELETE CASCADE,
    session_id uuid        NOT NULL,
    app_id     uuid        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, session_id, app_id),
    FOREIGN KEY (tenant_id, session_id) REFERENCES sessions (tenant_id, id) ON DELETE CASCADE,
    FOREIGN KEY (tenant_id, app_id) REFERENCES apps (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX oidc_session_apps_app_idx ON oidc_session_apps (tenant_id, app_id);

ALTER TABLE oidc_session_apps ENABLE ROW LEVEL SECURITY;
ALTER TABLE oidc_session_apps FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON oidc_session_apps
    USING (tenant_id = NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid);
