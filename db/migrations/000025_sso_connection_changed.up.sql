-- Every change of an SSO connection row is announced on gatehouse_sso_connection_changed
-- (payload "tenant_id/connection_id/slug"), committed with the change: each node's ACS keeps
-- the connection, its parsed metadata, opened SP keys and crewjam ServiceProvider cached
-- by slug and drops them on this notification (issue 22, docs/sso.md). A trigger rather
-- than a NOTIFY in each Go write path: edits made in SQL by an operator, a restore or
-- tenant erasure invalidate too.
CREATE FUNCTION gatehouse_sso_connection_changed() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        PERFORM pg_notify('gatehouse_sso_connection_changed', OLD.tenant_id::text || '/' || OLD.id::text || '/' || OLD.slug);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND (TG_OP = 'INSERT' OR NEW.slug IS DISTINCT FROM OLD.slug) THEN
        PERFORM pg_notify('gatehouse_sso_connection_changed', NEW.tenant_id::text || '/' || NEW.id::text || '/' || NEW.slug);
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER sso_connections_changed AFTER INSERT OR UPDATE OR DELETE ON sso_connections
    FOR EACH ROW EXECUTE FUNCTION gatehouse_sso_connection_changed();
