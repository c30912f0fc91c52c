package httpapi

import (
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/stepup"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/web"
)

// routes is the table of contents of Gatehouse's HTTP surface. Health checks answer on any
// host; the base host serves the operator API and a landing page; every other route lives
// on a tenant host and sees the resolved tenant in its context.
// routers are the three route tables: any host, the base host, tenant hosts.
type routers struct {
	mux, base, tenantHost chi.Router
}

func routeTable(rs *responder, cfg Config, pages *web.Renderer, ready Readiness, tenants *tenant.Service, resolver *tenant.Resolver,
	sessions *session.Service, accounts *account.Service, steps *stepup.Service, ad adminDeps) routers {
	notFound := func(w http.ResponseWriter, r *http.Request) {
		rs.Error(w, r, errNotFound)
	}
	methodNotAllowed := func(w http.ResponseWriter, r *http.Request) {
		rs.Error(w, r, errMethodNotAllowed)
	}

	base := chi.NewRouter()
	base.NotFound(notFound)
	base.MethodNotAllowed(methodNotAllowed)
	base.Get("/", handleLanding(rs, pages, cfg.BaseDomain))
	base.Route("/api/v1/platform", func(r chi.Router) {
		r.Use(requireOperator(rs, cfg.OperatorToken))
		r.Get("/tenants", handlePlatformListTenants(rs, tenants))
		r.Post("/tenants", handlePlatformCreateTenant(rs, tenants, accounts))
		r.Get("/tenants/{slug}", handlePlatformGetTenant(rs, tenants))
		r.Delete("/tenants/{slug}", handlePlatformDeleteTenant(rs, tenants))
	})

	tenantHost := chi.NewRouter()
	tenantHost.NotFound(notFound)
	tenantHost.MethodNotAllowed(methodNotAllowed)
	tenantHost.Use(authenticate(rs, sessions))
	tenantHost.Get("/", handleTenantHome(rs, pages))
	tenantHost.Get("/brand.css", handleBrandCSS())
	tenantHost.Get("/api/v1/tenant", handleTenantInfo(rs))

	// Self-service JSON API.
	tenantHost.Post("/api/v1/signup", handleSignup(rs, accounts))
	tenantHost.Post("/api/v1/verification/confirm", handleConfirmEmail(rs, accounts))
	tenantHost.Post("/api/v1/verification/resend", handleEmailAccepted(rs, accounts.ResendVerification))
	tenantHost.Post("/api/v1/login", handleLogin(rs, accounts))
	tenantHost.Post("/api/v1/login/mfa", handleLoginMFA(rs, accounts))
	tenantHost.Post("/api/v1/password/forgot", handleEmailAccepted(rs, accounts.ForgotPassword))
	tenantHost.Post("/api/v1/password/reset", handleResetPassword(rs, accounts))
	tenantHost.Post("/api/v1/account/email/undo", handleUndoEmailChange(rs, accounts))
	tenantHost.Group(func(r chi.Router) {
		r.Use(requireSession(rs))
		r.With(noBody(rs)).Post("/api/v1/logout", handleLogout(rs, accounts))
		r.Get("/api/v1/session", handleWhoami(rs))
		r.Get("/api/v1/sessions", handleListSessions(rs, sessions))
		r.Delete("/api/v1/sessions/{id}", handleRevokeSession(rs, sessions))
		r.With(noBody(rs), requireStepUp(rs, steps, tenant.ActionSessionsRevokeOthers)).Post("/api/v1/sessions/revoke-others", handleRevokeOthers(rs, sessions))
		r.With(requireStepUp(rs, steps, tenant.ActionEmailChange)).Post("/api/v1/account/email", handleRequestEmailChange(rs, accounts))
		r.Post("/api/v1/account/password", handleChangePassword(rs, accounts, steps))
		r.With(requireStepUp(rs, steps, tenant.ActionAccountExport)).Get("/api/v1/account/export", handleExport(rs, ad.store))
		r.With(requireStepUp(rs, steps, tenant.ActionAccountDelete)).Delete("/api/v1/account", handleDeleteAccount(rs, accounts))
		r.Post("/api/v1/reauth", handleReauth(rs, steps))
		r.With(noBody(rs), requireStepUp(rs, steps, tenant.ActionMFAEnroll)).Post("/api/v1/mfa/totp", handleEnrollTOTP(rs, accounts))
		r.Post("/api/v1/mfa/totp/confirm", handleConfirmTOTP(rs, accounts))
		r.With(requireStepUp(rs, steps, tenant.ActionMFADisable)).Delete("/api/v1/mfa/totp", handleDisableTOTP(rs, accounts))
		r.With(noBody(rs), requireStepUp(rs, steps, tenant.ActionRecoveryCodesRegenerate)).Post("/api/v1/mfa/recovery-codes", handleRegenerateRecoveryCodes(rs, accounts))
	})
	tenantHost.Post("/api/v1/account/secure", handleSecureAccount(rs, accounts))

	// SAML SSO (Gatehouse is the service provider; see internal/sso).
	tenantHost.Post("/api/v1/sso/discover", handleSSODiscover(rs, ad.sso))
	tenantHost.Get("/sso/saml/{connection}/metadata", handleSPMetadata(rs, ad.sso))
	tenantHost.Get("/sso/saml/{connection}/login", handleSSOLogin(rs, ad.sso))
	tenantHost.Post("/sso/saml/{connection}/acs", handleACS(rs, pages, ad.sso))
	tenantHost.Get("/sso/saml/{connection}/slo", handleSLO(rs, ad.sso))
	tenantHost.Post("/sso/saml/{connection}/slo", handleSLO(rs, ad.sso))
	tenantHost.Get("/sso/reauth", handleSSOReauth(rs, ad.sso))
	tenantHost.Post("/api/v1/account/deletion/cancel", handleCancelDeletion(rs, accounts))

	// Tenant administration (permissions from casbin; see internal/authz/policy.csv).
	tenantHost.Route("/api/v1/admin", func(r chi.Router) {
		perm := func(p authz.Permission) func(http.Handler) http.Handler { return requirePermission(rs, ad.authz, p) }
		r.With(perm(authz.PolicyUpdate)).Get("/policy", handleAdminGetPolicy(rs))
		r.With(perm(authz.PolicyUpdate), requireStepUp(rs, steps, tenant.ActionPolicyUpdate)).Put("/policy", handleAdminPutPolicy(rs, ad))
		r.With(perm(authz.UsersRead)).Get("/users", handleAdminListUsers(rs, ad))
		r.With(perm(authz.UsersRead)).Get("/users/{id}", handleAdminGetUser(rs, ad))
		r.With(perm(authz.UsersDelete), requireStepUp(rs, steps, tenant.ActionUsersDelete)).Delete("/users/{id}", handleAdminDeleteUser(rs, accounts, ad))
		r.With(perm(authz.UsersRead)).Get("/users/{id}/sessions", handleAdminUserSessions(rs, ad))
		r.With(perm(authz.SessionsRevoke)).Delete("/users/{id}/sessions", handleAdminRevokeUserSessions(rs, ad))
		r.With(perm(authz.RolesAssign)).Put("/users/{id}/roles", handleAdminSetRoles(rs, ad))
		r.With(perm(authz.UsersManage), noBody(rs)).Post("/users/{id}/verification/resend", handleAdminResendVerification(rs, accounts, ad))
		r.With(perm(authz.UsersManage), requireStepUp(rs, steps, tenant.ActionMFADisable)).Delete("/users/{id}/mfa", handleAdminResetMFA(rs, accounts, ad))
		r.With(perm(authz.AuditRead)).Get("/audit", handleAdminAudit(rs, ad))
		r.With(perm(authz.UsersManage)).Get("/invitations", handleAdminListInvitations(rs, accounts))
		r.With(perm(authz.UsersManage)).Post("/invitations", handleAdminInvite(rs, accounts, ad))
		r.With(perm(authz.UsersManage)).Delete("/invitations/{id}", handleAdminRevokeInvitation(rs, accounts))
		ssoStep := requireStepUp(rs, steps, tenant.ActionSSOConfigure)
		r.With(perm(authz.SSOConfigure)).Get("/sso/connections", handleAdminListSSO(rs, ad.sso))
		r.With(perm(authz.SSOConfigure), ssoStep).Post("/sso/connections", handleAdminCreateSSO(rs, ad.sso))
		r.With(perm(authz.SSOConfigure)).Get("/sso/connections/{id}", handleAdminGetSSO(rs, ad.sso))
		r.With(perm(authz.SSOConfigure), ssoStep).Patch("/sso/connections/{id}", handleAdminPatchSSO(rs, ad.sso))
		r.With(perm(authz.SSOConfigure), noBody(rs), ssoStep).Delete("/sso/connections/{id}", handleAdminDeleteSSO(rs, ad.sso))
		r.With(perm(authz.SSOConfigure), noBody(rs), ssoStep).Post("/sso/connections/{id}/rotate-key", handleAdminRotateSSOKey(rs, ad.sso))
		r.With(perm(authz.SSOConfigure), noBody(rs), ssoStep).Delete("/sso/connections/{id}/previous-key", handleAdminDropPrevSSOKey(rs, ad.sso))
		r.With(perm(authz.SSOConfigure)).Get("/sso/connections/{id}/attempts", handleAdminSSOAttempts(rs, ad.sso))
		r.With(perm(authz.SSOConfigure)).Get("/sso/domains", handleAdminListDomains(rs, ad.sso))
		r.With(perm(authz.SSOConfigure), noBody(rs)).Post("/sso/domains/{domain}/verify", handleAdminVerifyDomain(rs, ad.sso))
	})

	// The admin portal.
	tenantHost.Route("/admin", func(r chi.Router) {
		page := func(p authz.Permission) func(http.Handler) http.Handler { return adminPage(rs, pages, ad, p) }
		r.With(page(authz.UsersRead)).Get("/", pageAdminOverview(rs, pages, ad))
		r.With(page(authz.UsersRead)).Get("/users", pageAdminUsers(rs, pages, ad))
		r.With(page(authz.UsersRead)).Get("/users/{id}", pageAdminUser(rs, pages, ad, ""))
		r.With(page(authz.RolesAssign)).Post("/users/{id}/role", pageAdminUserRole(rs, pages, ad))
		r.With(page(authz.SessionsRevoke)).Post("/users/{id}/sessions/revoke", pageAdminRevokeSessions(rs, ad))
		r.With(page(authz.UsersManage)).Post("/users/{id}/verification/resend", pageAdminResendVerification(rs, pages, accounts, ad))
		r.With(page(authz.UsersManage)).Post("/users/{id}/mfa/reset", pageAdminResetMFA(rs, pages, accounts, ad, steps))
		r.With(page(authz.UsersDelete)).Post("/users/{id}/delete", pageAdminDeleteUser(rs, pages, accounts, ad, steps))
		r.With(page(authz.UsersRead)).Get("/roles", pageAdminRoles(rs, pages, ad))
		r.With(page(authz.PolicyUpdate)).Get("/policy", pageAdminPolicy(rs, pages))
		r.With(page(authz.PolicyUpdate)).Post("/policy", pageAdminPolicyPost(rs, pages, ad, steps))
		r.With(page(authz.UsersManage)).Get("/invitations", pageAdminInvitations(rs, pages, accounts))
		r.With(page(authz.UsersManage)).Post("/invitations", pageAdminInvite(rs, pages, accounts, ad))
		r.With(page(authz.UsersManage)).Post("/invitations/{id}/revoke", pageAdminRevokeInvitation(rs, accounts))
		r.With(page(authz.BrandingUpdate)).Get("/branding", pageAdminBranding(rs, pages))
		r.With(page(authz.BrandingUpdate)).Post("/branding", pageAdminBrandingPost(rs, pages, ad))
		r.With(page(authz.SSOConfigure)).Get("/sso", pageAdminSSO(rs, pages, ad.sso))
		r.With(page(authz.SSOConfigure)).Post("/sso", pageAdminSSOCreate(rs, pages, ad.sso, steps))
		r.With(page(authz.SSOConfigure)).Get("/sso/{id}", pageAdminSSOConn(rs, pages, ad.sso))
		r.With(page(authz.SSOConfigure)).Post("/sso/{id}", pageAdminSSOUpdate(rs, pages, ad.sso, steps))
		r.With(page(authz.SSOConfigure)).Get("/sso/{id}/test", pageAdminSSOTest(rs, ad.sso))
		r.With(page(authz.SSOConfigure)).Post("/sso/{id}/domains/verify", pageAdminSSOAction(rs, pages, ad.sso, steps, "verify"))
		r.With(page(authz.SSOConfigure)).Post("/sso/{id}/rotate-key", pageAdminSSOAction(rs, pages, ad.sso, steps, "rotate"))
		r.With(page(authz.SSOConfigure)).Post("/sso/{id}/finish-rotation", pageAdminSSOAction(rs, pages, ad.sso, steps, "finish-rotation"))
		r.With(page(authz.SSOConfigure)).Post("/sso/{id}/delete", pageAdminSSOAction(rs, pages, ad.sso, steps, "delete"))
		r.With(page(authz.AuditRead)).Get("/audit", pageAdminAudit(rs, pages, ad))
		r.With(page(authz.AuditRead)).Get("/audit.csv", pageAdminAuditExport(rs, ad, "csv"))
		r.With(page(authz.AuditRead)).Get("/audit.json", pageAdminAuditExport(rs, ad, "json"))
	})
	tenantHost.Get("/invite", pageInvite(rs, pages, accounts))
	tenantHost.Post("/invite", pageInvitePost(rs, pages, accounts))

	// Pages for people.
	tenantHost.Get("/signup", pageSignup(rs, pages))
	tenantHost.Post("/signup", pageSignupPost(rs, pages, accounts))
	tenantHost.Get("/login", pageLogin(rs, pages))
	tenantHost.Post("/login", pageLoginPost(rs, pages, accounts, ad.sso))
	tenantHost.Post("/logout", pageLogout(rs, pages, accounts, ad.sso))
	tenantHost.Get("/sessions", pageSessions(rs, pages, sessions))
	tenantHost.Post("/sessions/revoke-others", pageRevokeOthers(rs, pages, sessions, steps))
	tenantHost.Post("/sessions/{id}/revoke", pageRevokeSession(rs, pages, sessions))
	tenantHost.Post("/account/password", pagePasswordChangePost(rs, pages, accounts))
	tenantHost.Get("/reauth", pageReauth(rs, pages, steps))
	tenantHost.Post("/reauth", pageReauthPost(rs, pages, steps))
	tenantHost.Post("/login/mfa", pageLoginMFAPost(rs, pages, accounts))
	tenantHost.Post("/account/mfa/totp", pageEnrollTOTP(rs, pages, accounts, steps))
	tenantHost.Post("/account/mfa/totp/confirm", pageConfirmTOTP(rs, pages, accounts))
	tenantHost.Post("/account/mfa/totp/disable", pageDisableTOTP(rs, pages, accounts, steps))
	tenantHost.Get("/account/secure", pageSecure(rs, pages))
	tenantHost.Post("/account/secure", pageSecurePost(rs, pages, accounts))
	tenantHost.Get("/verify", pageVerify(rs, pages))
	tenantHost.Post("/verify", pageVerifyPost(rs, pages, accounts))
	tenantHost.Get("/verify/resend", pageResend(rs, pages))
	tenantHost.Post("/verify/resend", pageResendPost(rs, pages, accounts))
	tenantHost.Get("/password/forgot", pageForgot(rs, pages))
	tenantHost.Post("/password/forgot", pageForgotPost(rs, pages, accounts))
	tenantHost.Get("/password/reset", pageReset(rs, pages))
	tenantHost.Post("/password/reset", pageResetPost(rs, pages, accounts))
	tenantHost.Get("/email/undo", pageUndo(rs, pages))
	tenantHost.Post("/email/undo", pageUndoPost(rs, pages, accounts))
	tenantHost.Get("/account", pageAccount(rs, pages, steps))
	tenantHost.Get("/account/export", pageExport(rs, steps, ad.store))
	tenantHost.Get("/account/delete", pageDeleteAccount(rs, pages, steps))
	tenantHost.Post("/account/delete", pageDeleteAccountPost(rs, pages, accounts, steps))
	tenantHost.Get("/account/deletion/cancel", pageCancelDeletion(rs, pages))
	tenantHost.Post("/account/deletion/cancel", pageCancelDeletionPost(rs, pages, accounts))
	tenantHost.Post("/account/email", pageEmailChangePost(rs, pages, accounts, steps))
	if cfg.DevMailDir != "" {
		tenantHost.Get("/_dev/mail", pageDevMail(rs, pages, cfg.DevMailDir))
		tenantHost.Get("/_dev/mail.json", handleDevMailJSON(rs, cfg.DevMailDir))
		base.Get("/_dev/mail", pageDevMail(rs, pages, cfg.DevMailDir))
		base.Get("/_dev/mail.json", handleDevMailJSON(rs, cfg.DevMailDir))
	}

	mux := chi.NewRouter()
	mux.Get("/healthz", handleHealthz(rs))
	mux.Get("/readyz", handleReadyz(rs, ready))
	mux.Handle("/assets/*", cacheable(web.Static()))
	mux.NotFound(byHost(rs, cfg.BaseDomain, resolver, base, tenantHost).ServeHTTP)
	mux.MethodNotAllowed(byHost(rs, cfg.BaseDomain, resolver, base, tenantHost).ServeHTTP)
	return routers{mux: mux, base: base, tenantHost: tenantHost}
}

func cacheable(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		next.ServeHTTP(w, r)
	})
}
