-- Back to the functions of 000005. Events already pseudonymised (and refs re-keyed by the
-- up migration) stay as they are: the key that made them is dropped, so they cannot be
-- linked to a user id any more.
DROP FUNCTION IF EXISTS audit_pseudonymise(uuid);

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

DROP FUNCTION IF EXISTS audit_expire(timestamptz);
CREATE FUNCTION audit_expire(p_before timestamptz) RETURNS bigint
LANGUAGE sql SECURITY DEFINER SET search_path = public AS $$
    WITH d AS (DELETE FROM audit_events WHERE occurred_at < p_before RETURNING 1) SELECT count(*) FROM d
$$;

REVOKE ALL ON FUNCTION audit_pseudonymise(uuid, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION audit_expire(timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_pseudonymise(uuid, text) TO gatehouse_app;
GRANT EXECUTE ON FUNCTION audit_expire(timestamptz) TO gatehouse_app;

DROP FUNCTION IF EXISTS audit_hmac_sha256(bytea, bytea);
DROP TABLE IF EXISTS audit_pseudonym_key;
