-- Roles per tenant (casbin role bindings) and the append-only audit log.

CREATE TABLE role_bindings (
    tenant_id  uuid        NOT NULL DEFAULT NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid,
    user_id    uuid        NOT NULL,
    role       text        NOT NULL CHECK (role IN ('owner', 'admin', 'member')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, user_id, role),
    FOREIGN KEY (tenant_id, user_id) REFERENCES users (tenant_id, id) ON DELETE CASCADE
);

-- Security-relevant events. Append-only for the application role: it may INSERT and
-- SELECT; UPDATE and DELETE happen only through the two functions below.
CREATE TABLE audit_events (
    tenant_id     uuid        NOT NULL DEFAULT NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid,
    id            uuid        NOT NULL DEFAULT gen_random_uuid(),
    occurred_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    action        text        NOT NULL CHECK (action ~ '^[a-z_]+(\.[a-z_]+)+$'),
    actor_id      uuid,
    actor_label   text        NOT NULL DEFAULT '' CHECK (length(actor_label) <= 320),
    subject_id    uuid,
    subject_label text        NOT NULL DEFAULT '' CHECK (length(subject_label) <= 320),
    ip            inet,
    user_agent    text        NOT NULL DEFAULT '' CHECK (length(user_agent) <= 512),
    request_id    text        NOT NULL DEFAULT '' CHECK (length(request_id) <= 64),
    details       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (tenant_id, id)
);
CREATE INDEX audit_events_time_idx ON audit_events (tenant_id, occurred_at DESC, id DESC);
CREATE INDEX audit_events_actor_idx ON audit_events (tenant_id, actor_id, occurred_at DESC);
CREATE INDEX audit_events_subject_idx ON audit_events (tenant_id, subject_id, occurred_at DESC);

DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['role_bindings', 'audit_events'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format($p$CREATE POLICY tenant_isolation ON %I
            USING (tenant_id = NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid)
            WITH CHECK (tenant_id = NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid)$p$, t);
    END LOOP;
END $$;

REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM gatehouse_app;

-- The only ways audit rows change. Both run as the owner, which is subject to the forced
-- row-level security too, so they act on the transaction's tenant only.

-- Pseudonymise a purged user's events: actor and subject replaced by a stable hash, IP and
-- user agent dropped.
CREATE FUNCTION audit_pseudonymise(p_user uuid, p_pseudonym text) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = public AS $$
    WITH u AS (
        UPDATE audit_events SET
            actor_id = CASE WHEN actor_id = p_user THEN NULL ELSE actor_id END,
            actor_label = CASE WHEN actor_id = p_user THEN p_pseudonym ELSE actor_label END,
            subject_id = CASE WHEN subject_id = p_user THEN NULL ELSE subject_id END,
            subject_label = CASE WHEN subject_id = p_user THEN p_pseudonym ELSE subject_label END,
            ip = NULL, user_agent = ''
        WHERE actor_id = p_user OR subject_id = p_user
        RETURNING 1
    ) SELECT count(*) FROM u
$$;

-- Retention: delete the tenant's events older than the cut-off.
CREATE FUNCTION audit_expire(p_before timestamptz) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = public AS $$
    WITH d AS (DELETE FROM audit_events WHERE occurred_at < p_before RETURNING 1) SELECT count(*) FROM d
$$;

REVOKE ALL ON FUNCTION audit_pseudonymise(uuid, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION audit_expire(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_pseudonymise(uuid, text) TO gatehouse_app;
GRANT EXECUTE ON FUNCTION audit_expire(timestamptz) TO gatehouse_app;
