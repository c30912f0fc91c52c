-- SCIM filter emails.value eq "…" by index (issue 19, docs/scim.md, docs/performance.md).
-- A directory user's addresses live in directory_users.attributes (emails[].value, as the
-- directory sent them); a filter on them read every user of the tenant. One row per
-- address key, compared with plain equality (leakproof, so usable under forced row-level
-- security), finds the candidates; the filter is still applied to them in the process.
-- The keys are written by the application on every change of the record
-- (scim.emailKeys: each value lower-cased as the filter compares it, "true"/"false" for a
-- boolean, "#number" for a number); the backfill below computes the same for the rows
-- that exist.
CREATE TABLE directory_user_emails (
    tenant_id uuid NOT NULL DEFAULT NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid REFERENCES tenants (id) ON DELETE CASCADE,
    user_id   uuid NOT NULL,
    value_key text NOT NULL CHECK (length(value_key) <= 1024),
    PRIMARY KEY (tenant_id, user_id, value_key),
    FOREIGN KEY (tenant_id, user_id) REFERENCES directory_users (tenant_id, user_id) ON DELETE CASCADE
);
CREATE INDEX directory_user_emails_key_idx ON directory_user_emails (tenant_id, value_key);

ALTER TABLE directory_user_emails ENABLE ROW LEVEL SECURITY;
ALTER TABLE directory_user_emails FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON directory_user_emails
    USING (tenant_id = NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid)
    WITH CHECK (tenant_id = NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid);
GRANT SELECT, INSERT, UPDATE, DELETE ON directory_user_emails TO gatehouse_app;

-- Backfill: every element of emails (a list, or one object), its "value" in any spelling of
-- the key, and the scalars of a list held there.
INSERT INTO directory_user_emails (tenant_id, user_id, value_key)
SELECT DISTINCT du.tenant_id, du.user_id,
       CASE jsonb_typeof(v) WHEN 'string' THEN lower(v #>> '{}') WHEN 'boolean' THEN v #>> '{}' ELSE '#number' END
FROM directory_users du
CROSS JOIN LATERAL (SELECT value FROM jsonb_each(du.attributes) WHERE lower(key) = 'emails') AS a(emails)
CROSS JOIN LATERAL jsonb_array_elements(CASE jsonb_typeof(a.emails) WHEN 'array' THEN a.emails WHEN 'object' THEN jsonb_build_array(a.emails) ELSE '[]' END) AS el(e)
CROSS JOIN LATERAL (SELECT value FROM jsonb_each(CASE jsonb_typeof(el.e) WHEN 'object' THEN el.e ELSE '{}' END) WHERE lower(key) = 'value') AS ev(val)
CROSS JOIN LATERAL (SELECT ev.val WHERE jsonb_typeof(ev.val) <> 'array'
                    UNION ALL SELECT x FROM jsonb_array_elements(CASE jsonb_typeof(ev.val) WHEN 'array' THEN ev.val ELSE '[]' END) AS l(x)
                    UNION ALL SELECT m.value FROM jsonb_array_elements(CASE jsonb_typeof(ev.val) WHEN 'array' THEN ev.val ELSE '[]' END) AS l2(x),
                              jsonb_each(CASE jsonb_typeof(l2.x) WHEN 'object' THEN l2.x ELSE '{}' END) AS m
                              WHERE lower(m.key) = 'value') AS vals(v)
WHERE jsonb_typeof(v) IN ('string', 'boolean', 'number') AND length(v #>> '{}') <= 1024
ON CONFLICT DO NOTHING;

-- Directories declared in tenant files (directories: in tenants/*.yaml, matched by
-- declared_name, as webhook endpoints are), and whether a directory's groups map to roles
-- through its SSO connection's group → role mapping (true: as before).
ALTER TABLE directories ADD COLUMN declared_name text CHECK (declared_name ~ '^[a-z0-9][a-z0-9_-]{0,62}$');
ALTER TABLE directories ADD COLUMN map_roles boolean NOT NULL DEFAULT true;
CREATE UNIQUE INDEX directories_declared_name_key ON directories (tenant_id, declared_name) WHERE declared_name IS NOT NULL;
