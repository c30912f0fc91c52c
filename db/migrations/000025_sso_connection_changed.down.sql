DROP TRIGGER IF EXISTS sso_connections_changed ON sso_connections;
DROP FUNCTION IF EXISTS gatehouse_sso_connection_changed();
