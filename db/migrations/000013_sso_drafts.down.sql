-- Drafts (connections without IdP metadata) cannot exist before this migration.
DELETE FROM sso_connections WHERE idp_metadata = '';
ALTER TABLE sso_connections DROP CONSTRAINT sso_connections_draft_check;
ALTER TABLE sso_connections DROP CONSTRAINT sso_connections_idp_entity_id_check;
ALTER TABLE sso_connections ADD CONSTRAINT sso_connections_idp_entity_id_check
    CHECK (length(idp_entity_id) BETWEEN 1 AND 1024);
