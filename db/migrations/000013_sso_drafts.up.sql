-- SSO connections may start as drafts: created by name so the admin can copy the ACS URL,
-- SP entity ID and SP metadata URL into the IdP first (Okta and Entra ask for them before
-- they show their own metadata), with the IdP's metadata added in a second step. A draft
-- has no IdP metadata and no IdP entity ID (both empty, never one without the other) and
-- can never be enabled.
ALTER TABLE sso_connections DROP CONSTRAINT sso_connections_idp_entity_id_check;
ALTER TABLE sso_connections ADD CONSTRAINT sso_connections_idp_entity_id_check
    CHECK (length(idp_entity_id) <= 1024);
ALTER TABLE sso_connections ADD CONSTRAINT sso_connections_draft_check
    CHECK ((idp_metadata = '') = (idp_entity_id = '') AND (idp_metadata <> '' OR NOT enabled));
