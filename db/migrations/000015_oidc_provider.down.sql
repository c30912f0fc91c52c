DROP TABLE IF EXISTS oidc_grants, oidc_tokens, oidc_auth_requests, apps, oidc_keys;
