DROP FUNCTION IF EXISTS audit_expire(timestamptz);
DROP FUNCTION IF EXISTS audit_pseudonymise(uuid, text);
DROP TABLE IF EXISTS audit_events;
DROP TABLE IF EXISTS role_bindings;
