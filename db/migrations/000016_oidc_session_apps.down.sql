DROP TABLE IF EXISTS oidc_session_apps;
