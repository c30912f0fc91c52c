package httpapi

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/accounthttp"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/adminhttp"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/kit"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/oidchttp"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/passkeyhttp"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/platformhttp"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/scimhttp"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/sessionhttp"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/ssohttp"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/stepuphttp"
	"github.com/gatehouse-id/gatehouse/internal/httpapi/webhookhttp"
	"github.com/gatehouse-id/gatehouse/internal/oidcop"
	"github.com/gatehouse-id/gatehouse/internal/passkey"
	"github.com/gatehouse-id/gatehouse/internal/scim"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/sso"
	"github.com/gatehouse-id/gatehouse/internal/stepup"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/web"
	"github.com/gatehouse-id/gatehouse/internal/webhooks"
)

// routes is the table of contents of Gatehouse's HTTP surface. Health checks answer on any
// host; the base host serves the operator API and a landing page; every other route lives
// on a tenant host and sees the resolved tenant in its context.
// routers are the three route tables: any host, the base host, tenant hosts.
// oidcDeps are the OpenID Provider's service and protocol handler.
type oidcDeps struct {
	svc   *oidcop.Service
	proto *oidcop.Protocol
}

type routers struct {
	mux, base, tenantHost chi.Router
}

func routeTable(rs *kit.Responder, cfg Config, ready Readiness, tenants *tenant.Service, resolver *tenant.Resolver,
	sessions *session.Service, accounts *account.Service, steps *stepup.Service, ad adminhttp.Deps, op oidcDeps, sc *scim.Service, passkeys *passkey.Service, hooks *webhooks.Service) routers {
	notFound := func(w http.ResponseWriter, r *http.Request) {
		rs.Error(w, r, errNotFound)
	}
	methodNotAllowed := func(w http.ResponseWriter, r *http.Request) {
		rs.Error(w, r, errMethodNotAllowed)
	}

	base := chi.NewRouter()
	base.NotFound(notFound)
	base.MethodNotAllowed(methodNotAllowed)
	base.Get("/", platformhttp.HandleLanding(rs, cfg.BaseDomain))
	base.Route("/api/v1/platform", func(r chi.Router) {
		r.Use(platformhttp.RequireOperator(rs, cfg.OperatorToken))
		r.Get("/tenants", platformhttp.HandlePlatformListTenants(rs, tenants))
		r.Post("/tenants", platformhttp.HandlePlatformCreateTenant(rs, tenants, accounts))
		r.Get("/tenants/{slug}", platformhttp.HandlePlatformGetTenant(rs, tenants))
		r.Delete("/tenants/{slug}", platformhttp.HandlePlatformDeleteTenant(rs, tenants))
		pass := func(h http.Handler) http.Handler { return h }
		webhookRoutes(r, rs, hooks, webhookhttp.PlatformScope, pass, pass, true)
	})

	tenantHost := chi.NewRouter()
	tenantHost.NotFound(notFound)
	tenantHost.MethodNotAllowed(methodNotAllowed)
	tenantHost.Use(kit.Authenticate(rs, sessions))
	tenantHost.Use(passkeyhttp.EnrolFirst(rs, steps)) // a role that requires a passkey: enrolment first
	tenantHost.Get("/", platformhttp.HandleTenantHome(rs))
	tenantHost.Get("/brand.css", platformhttp.HandleBrandCSS())
	tenantHost.Get("/api/v1/tenant", platformhttp.HandleTenantInfo(rs))

	// Self-service JSON API.
	tenantHost.Post("/api/v1/signup", accounthttp.HandleSignup(rs, accounts))
	tenantHost.Post("/api/v1/verification/confirm", accounthttp.HandleConfirmEmail(rs, accounts))
	tenantHost.Post("/api/v1/verification/resend", accounthttp.HandleEmailAccepted(rs, accounts.ResendVerification))
	tenantHost.Post("/api/v1/login", accounthttp.HandleLogin(rs, accounts))
	tenantHost.Post("/api/v1/login/mfa", accounthttp.HandleLoginMFA(rs, accounts))
	tenantHost.Post("/api/v1/password/forgot", accounthttp.HandleEmailAccepted(rs, accounts.ForgotPassword))
	tenantHost.Post("/api/v1/password/reset", accounthttp.HandleResetPassword(rs, accounts))
	tenantHost.Post("/api/v1/account/email/undo", accounthttp.HandleUndoEmailChange(rs, accounts))
	tenantHost.Group(func(r chi.Router) {
		r.Use(kit.RequireSession(rs))
		r.With(kit.NoBody(rs)).Post("/api/v1/logout", accounthttp.HandleLogout(rs, accounts))
		r.Get("/api/v1/session", sessionhttp.HandleWhoami(rs))
		r.Get("/api/v1/sessions", sessionhttp.HandleListSessions(rs, sessions))
		r.Delete("/api/v1/sessions/{id}", sessionhttp.HandleRevokeSession(rs, sessions))
		r.With(kit.NoBody(rs), kit.RequireStepUp(rs, steps, tenant.ActionSessionsRevokeOthers)).Post("/api/v1/sessions/revoke-others", sessionhttp.HandleRevokeOthers(rs, sessions))
		r.With(kit.RequireStepUp(rs, steps, tenant.ActionEmailChange)).Post("/api/v1/account/email", accounthttp.HandleRequestEmailChange(rs, accounts))
		r.Post("/api/v1/account/password", accounthttp.HandleChangePassword(rs, accounts, steps))
		r.With(kit.RequireStepUp(rs, steps, tenant.ActionAccountExport)).Get("/api/v1/account/export", accounthttp.HandleExport(rs, accounts))
		r.With(kit.RequireStepUp(rs, steps, tenant.ActionAccountDelete)).Delete("/api/v1/account", accounthttp.HandleDeleteAccount(rs, accounts))
		r.Post("/api/v1/reauth", stepuphttp.HandleReauth(rs, steps))
		r.Get("/api/v1/mfa", stepuphttp.HandleMFAStatus(rs, accounts))
		r.With(kit.NoBody(rs), kit.RequireStepUp(rs, steps, tenant.ActionMFAEnroll)).Post("/api/v1/mfa/totp", stepuphttp.HandleEnrollTOTP(rs, accounts))
		r.Post("/api/v1/mfa/totp/confirm", stepuphttp.HandleConfirmTOTP(rs, accounts))
		r.With(kit.RequireStepUp(rs, steps, tenant.ActionMFADisable)).Delete("/api/v1/mfa/totp", stepuphttp.HandleDisableTOTP(rs, accounts))
		r.With(kit.NoBody(rs), kit.RequireStepUp(rs, steps, tenant.ActionRecoveryCodesRegenerate)).Post("/api/v1/mfa/recovery-codes", stepuphttp.HandleRegenerateRecoveryCodes(rs, accounts))
		// Passkeys (internal/passkey, docs/passkeys.md).
		r.With(kit.NoBody(rs), kit.RequireStepUp(rs, steps, tenant.ActionMFAEnroll)).Post("/api/v1/passkeys/register/begin", passkeyhttp.HandleRegisterBegin(rs, passkeys))
		r.Post("/api/v1/passkeys/register/finish", passkeyhttp.HandleRegisterFinish(rs, passkeys))
		r.Get("/api/v1/passkeys", passkeyhttp.HandleList(rs, passkeys))
		r.Patch("/api/v1/passkeys/{id}", passkeyhttp.HandleRename(rs, passkeys))
		r.With(kit.NoBody(rs), kit.RequireStepUp(rs, steps, tenant.ActionPasskeyRemove)).Delete("/api/v1/passkeys/{id}", passkeyhttp.HandleDelete(rs, passkeys))
		r.With(kit.NoBody(rs)).Post("/api/v1/reauth/passkey/begin", stepuphttp.HandleReauthPasskeyBegin(rs, steps))
		r.Post("/api/v1/reauth/passkey/finish", stepuphttp.HandleReauthPasskeyFinish(rs, steps))
	})
	tenantHost.With(kit.NoBody(rs)).Post("/api/v1/login/passkey/begin", accounthttp.HandleLoginPasskeyBegin(rs, passkeys))
	tenantHost.Post("/api/v1/login/passkey/finish", accounthttp.HandleLoginPasskeyFinish(rs, accounts))
	tenantHost.Post("/api/v1/login/mfa/passkey/begin", accounthttp.HandleLoginMFAPasskeyBegin(rs, accounts))
	tenantHost.Post("/api/v1/login/mfa/passkey/finish", accounthttp.HandleLoginMFAPasskeyFinish(rs, accounts))
	tenantHost.Post("/api/v1/account/secure", accounthttp.HandleSecureAccount(rs, accounts))

	// SAML SSO (Gatehouse is the service provider; see internal/sso).
	tenantHost.Post("/api/v1/sso/discover", ssohttp.HandleSSODiscover(rs, ad.SSO))
	tenantHost.Get("/sso/saml/{connection}/metadata", ssohttp.HandleSPMetadata(rs, ad.SSO))
	tenantHost.Get("/sso/saml/{connection}/login", ssohttp.HandleSSOLogin(rs, ad.SSO, sso.ProtocolSAML))
	tenantHost.Post("/sso/saml/{connection}/acs", ssohttp.HandleACS(rs, ad.SSO))
	tenantHost.Get("/sso/saml/{connection}/slo", ssohttp.HandleSLO(rs, ad.SSO))
	tenantHost.Post("/sso/saml/{connection}/slo", ssohttp.HandleSLO(rs, ad.SSO))
	tenantHost.Get("/sso/reauth", ssohttp.HandleSSOReauth(rs, ad.SSO))
	// OIDC SSO (Gatehouse is the relying party of the tenant's IdP; internal/sso/oidc_*.go).
	tenantHost.Get("/sso/oidc/{connection}/login", ssohttp.HandleSSOLogin(rs, ad.SSO, sso.ProtocolOIDC))
	tenantHost.Get("/sso/oidc/{connection}/callback", ssohttp.HandleOIDCCallback(rs, ad.SSO))
	tenantHost.Post("/api/v1/account/deletion/cancel", accounthttp.HandleCancelDeletion(rs, accounts))
	tenantHost.Post("/api/v1/account/deletion/resend", accounthttp.HandleEmailAccepted(rs, accounts.ResendDeletionCancel))

	// Each tenant is an OpenID Provider (Gatehouse is the IdP of the SaaS's apps; see
	// internal/oidcop and docs/apps.md). The protocol endpoints are zitadel/oidc's.
	proto := oidchttp.Protocol(op.proto)
	tenantHost.Get(oidcop.DiscoveryPath, oidchttp.Discovery(op.proto))
	tenantHost.Get(oidcop.JWKSPath, proto)
	tenantHost.Get(oidcop.AuthorizePath, proto)
	tenantHost.Get(oidcop.CallbackPath, proto)
	tenantHost.Post(oidcop.TokenPath, proto)
	tenantHost.Get(oidcop.UserinfoPath, proto)
	tenantHost.Post(oidcop.UserinfoPath, proto)
	tenantHost.Post(oidcop.IntrospectPath, proto)
	tenantHost.Post(oidcop.RevokePath, proto)
	tenantHost.Get(oidcop.LoginPath, oidchttp.PageLogin(rs, op.svc))
	tenantHost.Post("/oauth2/consent", oidchttp.PageConsentPost(rs, op.svc))
	tenantHost.Get("/account/apps", oidchttp.PageAccountApps(rs, op.svc))
	tenantHost.Post("/account/apps/{id}/revoke", oidchttp.PageAccountAppRevoke(rs, op.svc))
	tenantHost.Get(oidcop.LogoutPath, oidchttp.PageLogout(rs, op.svc))
	tenantHost.Post(oidcop.LogoutConfirmPath, oidchttp.PageLogoutConfirm(rs, op.svc))

	// SCIM 2.0 provisioning (internal/scim, docs/scim.md): a directory token, never a session.
	tenantHost.Handle(scim.BasePath+"/*", scimhttp.Protocol(sc))

	// Tenant administration (permissions from casbin; see internal/authz/policy.csv).
	tenantHost.Route("/api/v1/admin", func(r chi.Router) {
		r.Use(passkeyhttp.RequirePhishingResistant(rs, steps, false))
		perm := func(p authz.Permission) func(http.Handler) http.Handler {
			return kit.RequirePermission(rs, ad.Authz, p)
		}
		r.With(perm(authz.PolicyUpdate)).Get("/policy", adminhttp.HandleAdminGetPolicy(rs))
		r.With(perm(authz.PolicyUpdate), kit.RequireStepUp(rs, steps, tenant.ActionPolicyUpdate)).Put("/policy", adminhttp.HandleAdminPutPolicy(rs, ad))
		r.With(perm(authz.UsersRead)).Get("/users", adminhttp.HandleAdminListUsers(rs, ad))
		r.With(perm(authz.UsersRead)).Get("/users/{id}", adminhttp.HandleAdminGetUser(rs, ad))
		r.With(perm(authz.UsersDelete), kit.RequireStepUp(rs, steps, tenant.ActionUsersDelete)).Delete("/users/{id}", adminhttp.HandleAdminDeleteUser(rs, accounts, ad))
		r.With(perm(authz.UsersRead)).Get("/users/{id}/sessions", adminhttp.HandleAdminUserSessions(rs, ad))
		r.With(perm(authz.SessionsRevoke)).Delete("/users/{id}/sessions", adminhttp.HandleAdminRevokeUserSessions(rs, ad))
		r.With(perm(authz.RolesAssign)).Put("/users/{id}/roles", adminhttp.HandleAdminSetRoles(rs, ad))
		r.With(perm(authz.UsersManage), kit.NoBody(rs)).Post("/users/{id}/verification/resend", adminhttp.HandleAdminResendVerification(rs, accounts, ad))
		r.With(perm(authz.UsersManage), kit.RequireStepUp(rs, steps, tenant.ActionMFADisable)).Delete("/users/{id}/mfa", adminhttp.HandleAdminResetMFA(rs, accounts, ad))
		r.With(perm(authz.AuditRead)).Get("/audit", adminhttp.HandleAdminAudit(rs, ad))
		r.With(perm(authz.UsersManage)).Get("/invitations", adminhttp.HandleAdminListInvitations(rs, accounts))
		r.With(perm(authz.UsersManage)).Post("/invitations", adminhttp.HandleAdminInvite(rs, accounts, ad))
		r.With(perm(authz.UsersManage)).Delete("/invitations/{id}", adminhttp.HandleAdminRevokeInvitation(rs, accounts))
		ssoStep := kit.RequireStepUp(rs, steps, tenant.ActionSSOConfigure)
		r.With(perm(authz.SSOConfigure)).Get("/sso/connections", ssohttp.HandleAdminListSSO(rs, ad.SSO))
		r.With(perm(authz.SSOConfigure), ssoStep).Post("/sso/connections", ssohttp.HandleAdminCreateSSO(rs, ad.SSO))
		r.With(perm(authz.SSOConfigure)).Get("/sso/connections/{id}", ssohttp.HandleAdminGetSSO(rs, ad.SSO))
		r.With(perm(authz.SSOConfigure), ssoStep).Patch("/sso/connections/{id}", ssohttp.HandleAdminPatchSSO(rs, ad.SSO))
		r.With(perm(authz.SSOConfigure), kit.NoBody(rs), ssoStep).Delete("/sso/connections/{id}", ssohttp.HandleAdminDeleteSSO(rs, ad.SSO))
		r.With(perm(authz.SSOConfigure), kit.NoBody(rs), ssoStep).Post("/sso/connections/{id}/rotate-key", ssohttp.HandleAdminRotateSSOKey(rs, ad.SSO))
		r.With(perm(authz.SSOConfigure), kit.NoBody(rs), ssoStep).Delete("/sso/connections/{id}/previous-key", ssohttp.HandleAdminDropPrevSSOKey(rs, ad.SSO))
		r.With(perm(authz.SSOConfigure)).Get("/sso/connections/{id}/attempts", ssohttp.HandleAdminSSOAttempts(rs, ad.SSO))
		r.With(perm(authz.SSOConfigure)).Get("/sso/domains", ssohttp.HandleAdminListDomains(rs, ad.SSO))
		appsStep := kit.RequireStepUp(rs, steps, tenant.ActionAppsManage)
		r.With(perm(authz.AppsManage)).Get("/apps", oidchttp.HandleListApps(rs, op.svc))
		r.With(perm(authz.AppsManage), appsStep).Post("/apps", oidchttp.HandleCreateApp(rs, op.svc))
		r.With(perm(authz.AppsManage)).Get("/apps/{id}", oidchttp.HandleGetApp(rs, op.svc))
		r.With(perm(authz.AppsManage), appsStep).Patch("/apps/{id}", oidchttp.HandlePatchApp(rs, op.svc))
		r.With(perm(authz.AppsManage), kit.NoBody(rs), appsStep).Delete("/apps/{id}", oidchttp.HandleDeleteApp(rs, op.svc))
		r.With(perm(authz.AppsManage), kit.NoBody(rs), appsStep).Post("/apps/{id}/secret", oidchttp.HandleRotateAppSecret(rs, op.svc))
		r.With(perm(authz.SSOConfigure), kit.NoBody(rs)).Post("/sso/domains/{domain}/verify", ssohttp.HandleAdminVerifyDomain(rs, ad.SSO))
		dirStep := kit.RequireStepUp(rs, steps, tenant.ActionDirectoriesManage)
		r.With(perm(authz.DirectoriesManage)).Get("/directories", scimhttp.HandleListDirectories(rs, sc))
		r.With(perm(authz.DirectoriesManage), dirStep).Post("/directories", scimhttp.HandleCreateDirectory(rs, sc))
		r.With(perm(authz.DirectoriesManage)).Get("/directories/{id}", scimhttp.HandleGetDirectory(rs, sc))
		r.With(perm(authz.DirectoriesManage), kit.NoBody(rs), dirStep).Delete("/directories/{id}", scimhttp.HandleDeleteDirectory(rs, sc))
		r.With(perm(authz.DirectoriesManage), kit.NoBody(rs), dirStep).Post("/directories/{id}/tokens", scimhttp.HandleCreateToken(rs, sc))
		r.With(perm(authz.DirectoriesManage), kit.NoBody(rs), dirStep).Delete("/directories/{id}/tokens/{token}", scimhttp.HandleRevokeToken(rs, sc))
		r.With(perm(authz.DirectoriesManage)).Get("/directories/{id}/requests", scimhttp.HandleDirectoryLog(rs, sc))
		webhookRoutes(r, rs, hooks, webhookhttp.TenantScope, perm(authz.WebhooksManage), kit.RequireStepUp(rs, steps, tenant.ActionWebhooksManage), false)
		r.With(perm(authz.WebhooksManage)).Get("/events", webhookhttp.HandleEvents(rs, hooks))
	})

	// The admin portal.
	tenantHost.Route("/admin", func(r chi.Router) {
		r.Use(passkeyhttp.RequirePhishingResistant(rs, steps, true))
		page := func(p authz.Permission) func(http.Handler) http.Handler { return adminhttp.AdminPage(rs, ad, p) }
		r.With(page(authz.UsersRead)).Get("/", adminhttp.PageAdminOverview(rs, ad))
		r.With(page(authz.UsersRead)).Get("/users", adminhttp.PageAdminUsers(rs, ad))
		r.With(page(authz.UsersRead)).Get("/users/{id}", adminhttp.PageAdminUser(rs, ad, ""))
		r.With(page(authz.RolesAssign)).Post("/users/{id}/role", adminhttp.PageAdminUserRole(rs, ad))
		r.With(page(authz.SessionsRevoke)).Post("/users/{id}/sessions/revoke", adminhttp.PageAdminRevokeSessions(rs, ad))
		r.With(page(authz.UsersManage)).Post("/users/{id}/verification/resend", adminhttp.PageAdminResendVerification(rs, accounts, ad))
		r.With(page(authz.UsersManage)).Post("/users/{id}/mfa/reset", adminhttp.PageAdminResetMFA(rs, accounts, ad, steps))
		r.With(page(authz.UsersDelete)).Post("/users/{id}/delete", adminhttp.PageAdminDeleteUser(rs, accounts, ad, steps))
		r.With(page(authz.UsersRead)).Get("/roles", adminhttp.PageAdminRoles(rs, ad))
		r.With(page(authz.PolicyUpdate)).Get("/policy", adminhttp.PageAdminPolicy(rs, ad))
		r.With(page(authz.PolicyUpdate)).Post("/policy", adminhttp.PageAdminPolicyPost(rs, ad, steps))
		r.With(page(authz.UsersManage)).Get("/invitations", adminhttp.PageAdminInvitations(rs, accounts))
		r.With(page(authz.UsersManage)).Post("/invitations", adminhttp.PageAdminInvite(rs, accounts, ad))
		r.With(page(authz.UsersManage)).Post("/invitations/{id}/revoke", adminhttp.PageAdminRevokeInvitation(rs, accounts))
		r.With(page(authz.BrandingUpdate)).Get("/branding", adminhttp.PageAdminBranding(rs, ad))
		r.With(page(authz.BrandingUpdate)).Post("/branding", adminhttp.PageAdminBrandingPost(rs, ad))
		r.With(page(authz.SSOConfigure)).Get("/sso", ssohttp.PageAdminSSO(rs, ad.SSO))
		r.With(page(authz.SSOConfigure)).Post("/sso", ssohttp.PageAdminSSOCreate(rs, ad.SSO, steps))
		r.With(page(authz.SSOConfigure)).Get("/sso/{id}", ssohttp.PageAdminSSOConn(rs, ad.SSO))
		r.With(page(authz.SSOConfigure)).Post("/sso/{id}", ssohttp.PageAdminSSOUpdate(rs, ad.SSO, steps))
		r.With(page(authz.SSOConfigure)).Get("/sso/{id}/test", ssohttp.PageAdminSSOTest(rs, ad.SSO))
		r.With(page(authz.SSOConfigure)).Post("/sso/{id}/domains/verify", ssohttp.PageAdminSSOAction(rs, ad.SSO, steps, "verify"))
		r.With(page(authz.SSOConfigure)).Post("/sso/{id}/rotate-key", ssohttp.PageAdminSSOAction(rs, ad.SSO, steps, "rotate"))
		r.With(page(authz.SSOConfigure)).Post("/sso/{id}/finish-rotation", ssohttp.PageAdminSSOAction(rs, ad.SSO, steps, "finish-rotation"))
		r.With(page(authz.SSOConfigure)).Get("/sso/{id}/delete", ssohttp.PageAdminSSODelete(rs, ad.SSO))
		r.With(page(authz.SSOConfigure)).Post("/sso/{id}/delete", ssohttp.PageAdminSSOAction(rs, ad.SSO, steps, "delete"))
		r.With(page(authz.AppsManage)).Get("/apps", oidchttp.PageAdminApps(rs, op.svc))
		r.With(page(authz.AppsManage)).Post("/apps", oidchttp.PageAdminAppCreate(rs, op.svc, steps))
		r.With(page(authz.AppsManage)).Get("/apps/{id}", oidchttp.PageAdminApp(rs, op.svc))
		r.With(page(authz.AppsManage)).Post("/apps/{id}", oidchttp.PageAdminAppUpdate(rs, op.svc, steps))
		r.With(page(authz.AppsManage)).Post("/apps/{id}/secret", oidchttp.PageAdminAppRotate(rs, op.svc, steps))
		r.With(page(authz.AppsManage)).Get("/apps/{id}/delete", oidchttp.PageAdminAppDelete(rs, op.svc))
		r.With(page(authz.AppsManage)).Post("/apps/{id}/delete", oidchttp.PageAdminAppDeletePost(rs, op.svc, steps))
		r.With(page(authz.DirectoriesManage)).Get("/directories", scimhttp.PageDirectories(rs, sc))
		r.With(page(authz.DirectoriesManage)).Post("/directories", scimhttp.PageDirectoryCreate(rs, sc, steps))
		r.With(page(authz.DirectoriesManage)).Get("/directories/{id}", scimhttp.PageDirectory(rs, sc))
		r.With(page(authz.DirectoriesManage)).Post("/directories/{id}/tokens", scimhttp.PageDirectoryAction(rs, sc, steps, "token"))
		r.With(page(authz.DirectoriesManage)).Post("/directories/{id}/tokens/{token}/revoke", scimhttp.PageDirectoryAction(rs, sc, steps, "revoke"))
		r.With(page(authz.DirectoriesManage)).Post("/directories/{id}/delete", scimhttp.PageDirectoryAction(rs, sc, steps, "delete"))
		r.With(page(authz.WebhooksManage)).Get("/webhooks", webhookhttp.PageAdminWebhooks(rs, hooks))
		r.With(page(authz.WebhooksManage)).Post("/webhooks", webhookhttp.PageAdminWebhookCreate(rs, hooks, steps))
		r.With(page(authz.WebhooksManage)).Get("/webhooks/{id}", webhookhttp.PageAdminWebhook(rs, hooks))
		for _, a := range []string{"save", "secret", "delete", "test", "retry"} {
			r.With(page(authz.WebhooksManage)).Post("/webhooks/{id}/"+a, webhookhttp.PageAdminWebhookAction(rs, hooks, steps, a))
		}
		r.With(page(authz.AuditRead)).Get("/audit", adminhttp.PageAdminAudit(rs, ad))
		r.With(page(authz.AuditRead)).Get("/audit.csv", adminhttp.PageAdminAuditExport(rs, ad, "csv"))
		r.With(page(authz.AuditRead)).Get("/audit.json", adminhttp.PageAdminAuditExport(rs, ad, "json"))
	})
	tenantHost.Get("/invite", accounthttp.PageInvite(rs, accounts))
	tenantHost.Post("/invite", accounthttp.PageInvitePost(rs, accounts))

	// Pages for people.
	tenantHost.Get("/signup", accounthttp.PageSignup(rs))
	tenantHost.Post("/signup", accounthttp.PageSignupPost(rs, accounts))
	tenantHost.Get("/signup/sent", accounthttp.PageSignupSent(rs))
	tenantHost.Get("/login", accounthttp.PageLogin(rs))
	tenantHost.Post("/login", accounthttp.PageLoginPost(rs, accounts, ad.SSO))
	tenantHost.Post("/logout", sessionhttp.PageLogout(rs, sessions, ad.SSO))
	tenantHost.Get("/signed-out", sessionhttp.PageSignedOut(rs))
	tenantHost.Get("/sessions", sessionhttp.PageSessions(rs, sessions))
	tenantHost.Post("/sessions/revoke-others", sessionhttp.PageRevokeOthers(rs, sessions, steps))
	tenantHost.Post("/sessions/{id}/revoke", sessionhttp.PageRevokeSession(rs, sessions, ad.SSO))
	tenantHost.Post("/account/password", accounthttp.PagePasswordChangePost(rs, accounts, steps))
	tenantHost.Get("/reauth", stepuphttp.PageReauth(rs, steps, accounts))
	tenantHost.Post("/reauth", stepuphttp.PageReauthPost(rs, steps, accounts))
	tenantHost.Post("/login/mfa", accounthttp.PageLoginMFAPost(rs, accounts))
	tenantHost.Post("/account/mfa/totp", stepuphttp.PageEnrollTOTP(rs, accounts, steps))
	tenantHost.Post("/account/mfa/totp/confirm", stepuphttp.PageConfirmTOTP(rs, accounts, steps))
	tenantHost.Get("/account/mfa", stepuphttp.PageMFA(rs, accounts))
	tenantHost.Post("/account/mfa/recovery-codes", stepuphttp.PageRegenerateRecoveryCodes(rs, accounts, steps))
	tenantHost.Post("/account/mfa/totp/disable", stepuphttp.PageDisableTOTP(rs, accounts, steps))
	tenantHost.Get("/account/secure", accounthttp.PageSecure(rs, accounts))
	tenantHost.Post("/account/secure", accounthttp.PageSecurePost(rs, accounts))
	tenantHost.Get("/verify", accounthttp.PageVerify(rs, accounts))
	tenantHost.Post("/verify", accounthttp.PageVerifyPost(rs, accounts))
	tenantHost.Get("/verify/resend", accounthttp.PageResend(rs, accounts))
	tenantHost.Post("/verify/resend", accounthttp.PageResendPost(rs, accounts))
	tenantHost.Get("/password/forgot", accounthttp.PageForgot(rs, accounts))
	tenantHost.Post("/password/forgot", accounthttp.PageForgotPost(rs, accounts))
	tenantHost.Get("/password/reset", accounthttp.PageReset(rs, accounts))
	tenantHost.Post("/password/reset", accounthttp.PageResetPost(rs, accounts))
	tenantHost.Get("/email/undo", accounthttp.PageUndo(rs, accounts))
	tenantHost.Post("/email/undo", accounthttp.PageUndoPost(rs, accounts))
	tenantHost.Get("/account", accounthttp.PageAccount(rs, accounts))
	tenantHost.Get("/account/export", accounthttp.PageExport(rs, steps, accounts))
	tenantHost.Get("/account/delete", accounthttp.PageDeleteAccount(rs, accounts))
	tenantHost.Post("/account/delete", accounthttp.PageDeleteAccountPost(rs, accounts, steps))
	tenantHost.Get("/account/deletion/cancel", accounthttp.PageCancelDeletion(rs, accounts))
	tenantHost.Post("/account/deletion/cancel", accounthttp.PageCancelDeletionPost(rs, accounts))
	tenantHost.Get("/account/deletion/resend", accounthttp.PageCancelResend(rs, accounts))
	tenantHost.Post("/account/deletion/resend", accounthttp.PageCancelResendPost(rs, accounts))
	tenantHost.Post("/account/email", accounthttp.PageEmailChangePost(rs, accounts, steps))
	tenantHost.Post("/account/passkeys/{id}/rename", passkeyhttp.PageRename(rs, passkeys))
	tenantHost.Post("/account/passkeys/{id}/remove", passkeyhttp.PageRemove(rs, passkeys, steps))
	tenantHost.Get("/account/passkeys/offer", passkeyhttp.PageOffer(rs))
	tenantHost.Get(stepup.RequiredPasskeyPath, passkeyhttp.PageRequired(rs, passkeys))
	if cfg.DevMailDir != "" {
		tenantHost.Get("/_dev/mail", platformhttp.PageDevMail(rs, cfg.DevMailDir))
		tenantHost.Get("/_dev/mail.json", platformhttp.HandleDevMailJSON(rs, cfg.DevMailDir))
		base.Get("/_dev/mail", platformhttp.PageDevMail(rs, cfg.DevMailDir))
		base.Get("/_dev/mail.json", platformhttp.HandleDevMailJSON(rs, cfg.DevMailDir))
	}

	mux := chi.NewRouter()
	mux.Get("/healthz", handleHealthz(rs))
	mux.Get("/readyz", handleReadyz(rs, ready))
	mux.Handle("/assets/*", web.Static())
	mux.NotFound(byHost(rs, cfg.BaseDomain, resolver, base, tenantHost).ServeHTTP)
	mux.MethodNotAllowed(byHost(rs, cfg.BaseDomain, resolver, base, tenantHost).ServeHTTP)
	return routers{mux: mux, base: base, tenantHost: tenantHost}
}

// webhookRoutes are the webhook endpoints' API, the same for a tenant's and the operator's
// (whose test event names the tenant it is recorded in): allowed by perm, and changes to an
// endpoint or its secret behind step.
func webhookRoutes(r chi.Router, rs *kit.Responder, hooks *webhooks.Service, scope webhookhttp.Scope, perm, step func(http.Handler) http.Handler,
	platform bool) {
	r.With(perm).Get("/webhooks", webhookhttp.HandleList(rs, hooks, scope))
	r.With(perm, step).Post("/webhooks", webhookhttp.HandleCreate(rs, hooks, scope))
	r.With(perm).Get("/webhooks/{id}", webhookhttp.HandleGet(rs, hooks, scope))
	r.With(perm, step).Patch("/webhooks/{id}", webhookhttp.HandlePatch(rs, hooks, scope))
	r.With(perm, kit.NoBody(rs), step).Delete("/webhooks/{id}", webhookhttp.HandleDelete(rs, hooks, scope))
	r.With(perm, kit.NoBody(rs), step).Post("/webhooks/{id}/secret", webhookhttp.HandleRotate(rs, hooks, scope))
	r.With(perm).Get("/webhooks/{id}/deliveries", webhookhttp.HandleDeliveries(rs, hooks, scope))
	r.With(perm, kit.NoBody(rs)).Post("/webhooks/{id}/deliveries/retry", webhookhttp.HandleRetryFailed(rs, hooks, scope))
	r.With(perm, kit.NoBody(rs)).Post("/webhooks/{id}/deliveries/{delivery}/retry", webhookhttp.HandleRetry(rs, hooks, scope))
	if platform {
		r.With(perm).Post("/webhooks/{id}/test", webhookhttp.HandlePlatformTest(rs, hooks))
		return
	}
	r.With(perm, kit.NoBody(rs)).Post("/webhooks/{id}/test", webhookhttp.HandleTest(rs, hooks, scope))
}
