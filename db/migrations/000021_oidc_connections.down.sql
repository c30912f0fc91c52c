DROP TABLE IF EXISTS sso_oidc_requests;
DELETE FROM sso_connections WHERE protocol = 'oidc';
ALTER TABLE sso_connections DROP CONSTRAINT sso_connections_draft_check;
ALTER TABLE sso_connections ADD CONSTRAINT sso_connections_draft_check
    CHECK ((idp_metadata = '') = (idp_entity_id = '') AND (idp_metadata <> '' OR NOT enabled));
ALTER TABLE sso_connections
    DROP COLUMN oidc_tenant,
    DROP COLUMN oidc_hosted_domain,
    DROP COLUMN oidc_discovery,
    DROP COLUMN oidc_scopes,
    DROP COLUMN oidc_secret_sealed,
    DROP COLUMN oidc_secret_key_id,
    DROP COLUMN oidc_client_id,
    DROP COLUMN oidc_issuer,
    DROP COLUMN protocol;
