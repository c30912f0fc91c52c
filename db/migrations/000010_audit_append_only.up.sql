-- The audit log is append-only for gatehouse_app, also through the two functions that may
-- change it (issue 14, finding 8):
--   * audit_expire never deletes an event younger than the tenant's retention, whatever
--     cut-off the caller passes;
--   * audit_pseudonymise works only on a user who no longer exists, and derives the pseudonym
--     itself: HMAC-SHA256 under a per-database key that gatehouse_app cannot read (before, the
--     caller chose it, and the application used HMAC(key = tenant id, user id), which anyone
--     who knows the tenant id and a former user id could recompute).
--
-- Both functions are SECURITY DEFINER owned by gatehouse_owner: the owner is subject to the
-- forced row-level security (so they act on the calling transaction's tenant only) and is the
-- only role that may read the key. Every relation is schema-qualified and search_path ends
-- with pg_temp, so a temporary table of the caller named users, tenants or
-- audit_pseudonym_key cannot stand in for the real one.

-- The pseudonym key: one row, global (it is not tenant data), readable by the owner only.
-- Row-level security is enabled without a policy, so even a grant added by mistake shows
-- gatehouse_app no row (the owner is not subject to it: no FORCE).
CREATE TABLE audit_pseudonym_key (
    id         boolean     PRIMARY KEY DEFAULT true CHECK (id),
    key        bytea       NOT NULL CHECK (length(key) = 32),
    created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE audit_pseudonym_key IS
    'Global, owner only: HMAC key of audit_pseudonymise. gatehouse_app has no privilege on it.';
ALTER TABLE audit_pseudonym_key ENABLE ROW LEVEL SECURITY;
-- The default privileges of 000001 granted gatehouse_app DML on the new table: take them back.
REVOKE ALL ON audit_pseudonym_key FROM PUBLIC, gatehouse_app;

-- 256 bits from the server's strong random source (gen_random_uuid draws 122 random bits
-- from pg_strong_random per call; three calls, hashed to 32 bytes). No pgcrypto needed.
INSERT INTO audit_pseudonym_key (key)
VALUES (sha256(convert_to(gen_random_uuid()::text || gen_random_uuid()::text || gen_random_uuid()::text, 'UTF8')));

-- HMAC-SHA256 (RFC 2104) from the built-in sha256: no pgcrypto needed. Not callable by
-- gatehouse_app (it has no use for it).
CREATE FUNCTION audit_hmac_sha256(p_key bytea, p_msg bytea) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog AS $$
DECLARE
    v_key  bytea := p_key;
    v_ipad bytea;
    v_opad bytea;
BEGIN
    IF length(v_key) > 64 THEN
        v_key := sha256(v_key);
    END IF;
    v_key := v_key || decode(repeat('00', 64 - length(v_key)), 'hex');
    v_ipad := v_key;
    v_opad := v_key;
    FOR i IN 0..63 LOOP
        v_ipad := set_byte(v_ipad, i, get_byte(v_key, i) # 54);  -- 0x36
        v_opad := set_byte(v_opad, i, get_byte(v_key, i) # 92);  -- 0x5c
    END LOOP;
    RETURN sha256(v_opad || sha256(v_ipad || p_msg));
END
$$;
REVOKE ALL ON FUNCTION audit_hmac_sha256(bytea, bytea) FROM PUBLIC;

-- Retention: delete the tenant's events older than p_before, but never one younger than the
-- tenant's retention (tenants.policy -> audit.retention_days, 365 when unset, and never less
-- than 30 days, the policy's minimum, whatever the stored policy says). p_before NULL: the
-- retention alone. Returns the number of events deleted; 0 without a tenant.
CREATE OR REPLACE FUNCTION audit_expire(p_before timestamptz) RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    v_tenant uuid := NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid;
    v_days   numeric;
    v_cutoff timestamptz;
    v_n      bigint;
BEGIN
    IF v_tenant IS NULL THEN
        RETURN 0;
    END IF;
    SELECT CASE WHEN jsonb_typeof(t.policy #> '{audit,retention_days}') = 'number'
                THEN (t.policy #>> '{audit,retention_days}')::numeric END
      INTO v_days
      FROM public.tenants t WHERE t.id = v_tenant;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    v_days := LEAST(GREATEST(ceil(COALESCE(v_days, 365)), 30), 100000);
    v_cutoff := LEAST(p_before, now() - make_interval(days => v_days::int));
    DELETE FROM public.audit_events e WHERE e.tenant_id = v_tenant AND e.occurred_at < v_cutoff;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_n;
END
$$;

-- Pseudonymise the events of a user who no longer exists in the calling tenant: actor and
-- subject id cleared, their labels replaced by 'deleted-user:' || user_ref, IP and user agent
-- dropped. user_ref is the first 16 bytes (hex) of HMAC-SHA256(audit_pseudonym_key.key,
-- tenant id || user id), stable for the same user. Refused while the user exists, and
-- without a tenant.
DROP FUNCTION audit_pseudonymise(uuid, text);
CREATE FUNCTION audit_pseudonymise(p_user uuid) RETURNS TABLE (user_ref text, events bigint)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
    v_tenant uuid := NULLIF(current_setting('gatehouse.tenant_id', true), '')::uuid;
    v_key    bytea;
    v_label  text;
BEGIN
    IF v_tenant IS NULL THEN
        RAISE EXCEPTION 'audit_pseudonymise: no tenant is set' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF p_user IS NULL THEN
        RAISE EXCEPTION 'audit_pseudonymise: user id is null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF EXISTS (SELECT 1 FROM public.users u WHERE u.tenant_id = v_tenant AND u.id = p_user) THEN
        RAISE EXCEPTION 'audit_pseudonymise: the user still exists'
            USING ERRCODE = 'object_in_use',
                  HINT = 'Only the events of a deleted user are pseudonymised: delete the users row first, in the same transaction.';
    END IF;
    SELECT k.key INTO v_key FROM public.audit_pseudonym_key k;
    IF v_key IS NULL THEN
        RAISE EXCEPTION 'audit_pseudonymise: the pseudonym key is missing' USING ERRCODE = 'undefined_object';
    END IF;
    user_ref := encode(substr(public.audit_hmac_sha256(v_key, uuid_send(v_tenant) || uuid_send(p_user)), 1, 16), 'hex');
    v_label := 'deleted-user:' || user_ref;
    UPDATE public.audit_events e SET
        actor_id = CASE WHEN e.actor_id = p_user THEN NULL ELSE e.actor_id END,
        actor_label = CASE WHEN e.actor_id = p_user THEN v_label ELSE e.actor_label END,
        subject_id = CASE WHEN e.subject_id = p_user THEN NULL ELSE e.subject_id END,
        subject_label = CASE WHEN e.subject_id = p_user THEN v_label ELSE e.subject_label END,
        ip = NULL, user_agent = ''
    WHERE e.tenant_id = v_tenant AND (e.actor_id = p_user OR e.subject_id = p_user);
    GET DIAGNOSTICS events = ROW_COUNT;
    RETURN NEXT;
END
$$;

-- Events and receipts of users purged before this migration carry the old, recomputable
-- ref (hex of HMAC(key = tenant id, user id), 16 bytes). Re-key them under the new key:
-- 'deleted-user:' || hex(HMAC-SHA256(key, 'v0:' || old ref)[:16]). The user id is gone, so
-- these cannot take the new formula, but knowing a former user id no longer finds them;
-- a user's events and receipt keep matching each other. Both tables are tenant-scoped with
-- forced RLS, which binds the owner too: one tenant at a time.
DO $$
DECLARE
    v_key bytea := (SELECT k.key FROM public.audit_pseudonym_key k);
    v_tenant uuid;
BEGIN
    FOR v_tenant IN SELECT t.id FROM public.tenants t LOOP
        PERFORM set_config('gatehouse.tenant_id', v_tenant::text, false);
        UPDATE public.audit_events e SET
            actor_label = CASE WHEN e.actor_label ~ '^deleted-user:[0-9a-f]{32}$'
                THEN 'deleted-user:' || encode(substr(public.audit_hmac_sha256(v_key, convert_to('v0:', 'UTF8') || decode(substr(e.actor_label, 14), 'hex')), 1, 16), 'hex')
                ELSE e.actor_label END,
            subject_label = CASE WHEN e.subject_label ~ '^deleted-user:[0-9a-f]{32}$'
                THEN 'deleted-user:' || encode(substr(public.audit_hmac_sha256(v_key, convert_to('v0:', 'UTF8') || decode(substr(e.subject_label, 14), 'hex')), 1, 16), 'hex')
                ELSE e.subject_label END
        WHERE e.actor_label ~ '^deleted-user:[0-9a-f]{32}$' OR e.subject_label ~ '^deleted-user:[0-9a-f]{32}$';
        UPDATE public.deletion_receipts r SET
            user_ref = encode(substr(public.audit_hmac_sha256(v_key, convert_to('v0:', 'UTF8') || decode(r.user_ref, 'hex')), 1, 16), 'hex')
        WHERE r.user_ref ~ '^[0-9a-f]{32}$';
    END LOOP;
    PERFORM set_config('gatehouse.tenant_id', '', false);
END $$;

REVOKE ALL ON FUNCTION audit_expire(timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION audit_pseudonymise(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit_expire(timestamptz) TO gatehouse_app;
GRANT EXECUTE ON FUNCTION audit_pseudonymise(uuid) TO gatehouse_app;
