package account_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// ssoAccount turns a signed-in password user into an SSO-only account: an identity on an
// enabled connection of the tenant and no password (the session stays, as an SSO sign-in
// would have made it). The connection's columns the account flows never read are dummies.
func (e *env) ssoAccount(t testing.TB, email, domain string, enforce bool) {
	t.Helper()
	e.admin(t, `INSERT INTO sso_connections (tenant_id, slug, name, idp_metadata, idp_entity_id, sp_key_id, sp_key_sealed, sp_cert_der, enforce)
		VALUES ($1, 'okta', 'Acme Okta', '<x/>', 'https://idp.example/e', 'k1', '\x00', '\x00', $2)`, e.Tenant.ID, enforce)
	e.admin(t, `INSERT INTO sso_domains (tenant_id, domain, connection_id, verification_token, verified_at)
		SELECT $1, $2, id, 'tok-0123456789abcdef', now() FROM sso_connections WHERE tenant_id = $1 AND slug = 'okta'`, e.Tenant.ID, domain)
	e.admin(t, `INSERT INTO sso_identities (tenant_id, connection_id, name_id, user_id)
		SELECT $1, c.id, $2, u.id FROM sso_connections c, users u WHERE c.tenant_id = $1 AND c.slug = 'okta' AND u.tenant_id = $1 AND u.email = $2`,
		e.Tenant.ID, email)
	e.admin(t, `DELETE FROM password_credentials WHERE tenant_id = $1 AND user_id = (SELECT id FROM users WHERE tenant_id = $1 AND email = $2)`,
		e.Tenant.ID, email)
}

// TestSSOAccountRefusals: the IdP owns the address of an account an SSO connection signs
// in (email_managed_by_idp, whatever the step-up), and an address whose domain must sign
// in through SSO gets no password (password_managed_by_idp); where the connection does not
// enforce, the account sets a first password after a step-up, without a current one.
func TestSSOAccountRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.User(t, "sam@corp.example")
	tok := e.Login(t, "sam@corp.example", goodPassword)
	e.ssoAccount(t, "sam@corp.example", "corp.example", true)

	e.expect(t, e.Do(t, "POST", "/api/v1/account/email", tok, map[string]string{"email": "sam@elsewhere.example"}), 403, "email_managed_by_idp")
	e.expect(t, e.Do(t, "POST", "/api/v1/account/password", tok, map[string]string{"password": "new tangerine bicycle route"}), 403, "password_managed_by_idp")
	if n := len(e.d.QueuedMails(t, e.Tenant.ID)); n != 0 {
		t.Fatalf("%d mails queued by refused changes", n)
	}

	// Not enforced: a first password, proven by the fresh sign-in (step-up), no current one.
	e.admin(t, "UPDATE sso_connections SET enforce = false WHERE tenant_id = $1", e.Tenant.ID)
	e.expect(t, e.Do(t, "POST", "/api/v1/account/password", tok, map[string]string{"password": "new tangerine bicycle route"}), 200, "")
	e.Login(t, "sam@corp.example", "new tangerine bicycle route")
	// The address stays the IdP's while the connection is enabled — and is the user's again when it is not.
	e.expect(t, e.Do(t, "POST", "/api/v1/account/email", tok, map[string]string{"email": "sam@elsewhere.example"}), 403, "email_managed_by_idp")
	e.admin(t, "UPDATE sso_connections SET enabled = false WHERE tenant_id = $1", e.Tenant.ID)
	e.expect(t, e.Do(t, "POST", "/api/v1/account/email", tok, map[string]string{"email": "sam@elsewhere.example"}), 202, "")
}

// TestUsedLinks: each emailed link, once used, answers what happened (409) instead of
// "invalid": at its page (GET, which consumes nothing) and at its form. A link replaced by
// a newer one stays invalid_token.
func TestUsedLinks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.Signup(t, "v@example.com")
	first := testutil.TokenFrom(t, e.Srv.WaitMail(t, "v@example.com", "Confirm"), "/verify")
	// The page of a working link shows the button and consumes nothing.
	contains(t, e.Page(t, "/verify?token="+first), 200, `name="token" value="`+first+`"`)
	contains(t, e.Page(t, "/verify?token="+first), 200, `name="token"`)
	e.expect(t, e.Do(t, "POST", "/api/v1/verification/confirm", "", map[string]string{"token": first}), 200, "")
	e.expect(t, e.Do(t, "POST", "/api/v1/verification/confirm", "", map[string]string{"token": first}), 409, "email_already_confirmed")
	contains(t, e.Page(t, "/verify?token="+first), 409, "already confirmed", `id="next-step" href="/login"`)

	// A reset link replaced by a newer one is invalid (not "used"); the used newer one is used.
	e.expect(t, e.Do(t, "POST", "/api/v1/password/forgot", "", map[string]string{"email": "v@example.com"}), 202, "")
	old := testutil.TokenFrom(t, e.Srv.WaitMail(t, "v@example.com", "Reset your"), "/password/reset")
	e.admin(t, "DELETE FROM rate_limits WHERE tenant_id = $1", e.Tenant.ID)
	e.expect(t, e.Do(t, "POST", "/api/v1/password/forgot", "", map[string]string{"email": "v@example.com"}), 202, "")
	fresh := e.newToken(t, "v@example.com", "Reset your", "/password/reset", old)
	contains(t, e.Page(t, "/password/reset?token="+old), 400, "invalid or has expired", `href="/password/forgot"`)
	e.expect(t, e.Do(t, "POST", "/api/v1/password/reset", "", map[string]string{"token": fresh, "password": "new tangerine bicycle route"}), 200, "")
	e.expect(t, e.Do(t, "POST", "/api/v1/password/reset", "", map[string]string{"token": fresh, "password": "new tangerine bicycle route"}), 409, "token_used")
	e.expect(t, e.Do(t, "POST", "/api/v1/password/reset", "", map[string]string{"token": old, "password": "new tangerine bicycle route"}), 400, "invalid_token")

	// An accepted invitation says so, and leads to signing in.
	_, adminTok := e.Person(t, "boss@example.com", authz.Admin)
	e.expect(t, e.Do(t, "POST", "/api/v1/admin/invitations", adminTok, map[string]string{"email": "friend@example.com", "role": "member"}), 201, "")
	inv := testutil.TokenFrom(t, e.Srv.WaitMail(t, "friend@example.com", "invited"), "/invite")
	contains(t, e.Form(t, "/invite", url.Values{"token": {inv}, "password": {goodPassword}}), 303)
	contains(t, e.Page(t, "/invite?token="+inv), 409, "already accepted", `id="next-step"`)
	contains(t, e.Page(t, "/invite?token=x"+inv[1:]), 400, "invalid or has expired")
}

// TestDeletionCancelResend: a sign-in during the grace period offers the cancel mail
// again; the new link works, the earlier one no longer does, and the answer is the same
// for an address that is not scheduled for deletion.
func TestDeletionCancelResend(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.User(t, "going@example.com")
	tok := e.Login(t, "going@example.com", goodPassword)
	e.expect(t, e.Do(t, "DELETE", "/api/v1/account", tok, nil), 202, "")
	first := testutil.TokenFrom(t, e.Srv.WaitMail(t, "going@example.com", "will be deleted"), "/account/deletion/cancel")

	r := e.Do(t, "POST", "/api/v1/login", "", map[string]string{"email": "going@example.com", "password": goodPassword})
	e.expect(t, r, 403, "account_pending_deletion")
	if !strings.Contains(string(r.Body), `"resend_url":"/account/deletion/resend"`) {
		t.Fatalf("pending deletion answer without the resend URL: %s", r.Body)
	}
	contains(t, e.Form(t, "/login", url.Values{"email": {"going@example.com"}, "password": {goodPassword}}), 403,
		`action="/account/deletion/resend"`, `id="resend-cancel"`)

	contains(t, e.Form(t, "/account/deletion/resend", url.Values{"email": {"going@example.com"}}), 200, "a new cancel link is on its way")
	contains(t, e.Form(t, "/account/deletion/resend", url.Values{"email": {"staying@example.com"}}), 200, "a new cancel link is on its way")
	second := e.newToken(t, "going@example.com", "will be deleted", "/account/deletion/cancel", first)
	e.expect(t, e.Do(t, "POST", "/api/v1/account/deletion/cancel", "", map[string]string{"token": first}), 400, "invalid_token")
	contains(t, e.Page(t, "/account/deletion/cancel?token="+first), 400, `href="/account/deletion/resend"`)
	e.expect(t, e.Do(t, "POST", "/api/v1/account/deletion/cancel", "", map[string]string{"token": second}), 200, "")
	contains(t, e.Page(t, "/account/deletion/cancel?token="+second), 409, "your account stays", `id="next-step" href="/login"`)
	e.Login(t, "going@example.com", goodPassword)
}

// newToken waits for a mail to `to` whose link at path carries a token other than old.
func (e *env) newToken(t testing.TB, to, subject, path, old string) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, m := range e.Srv.Mails(t, to) {
			if strings.Contains(m.Subj, subject) {
				if tk := testutil.TokenFrom(t, m, path); tk != old {
					return tk
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no new %q mail to %s", subject, to)
	return ""
}
