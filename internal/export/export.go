// Package export assembles everything Gatehouse stores about one user (GDPR Art. 15 and 20)
// and keeps the registry that says, for every tenant-scoped table, how its rows about a
// user are exported and how they are erased. A test fails when a table is missing from the
// registry, so a new table cannot quietly escape export and deletion.
package export

import (
	"context"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/store"
	"github.com/gatehouse-id/gatehouse/internal/store/sqlcgen"
)

// Handling says what happens to a table's rows about a user.
type Handling struct {
	Export string // what the export contains
	Erase  string // how the rows go when the user is purged
}

// Registry lists every tenant-scoped table.
var Registry = map[string]Handling{
	"users":                   {Export: "profile, address and its verification", Erase: "deleted (the purge deletes this row)"},
	"password_credentials":    {Export: "that a password exists and when it was set (never the hash)", Erase: "cascade from users"},
	"email_tokens":            {Export: "purpose, address and times of one-time links (never the token)", Erase: "cascade from users"},
	"sessions":                {Export: "every session: device, IP, times, methods (never the token hash)", Erase: "cascade from users"},
	"known_devices":           {Export: "when devices were first and last seen (the fingerprint is a hash)", Erase: "cascade from users"},
	"totp_credentials":        {Export: "whether TOTP is on and since when (never the secret)", Erase: "cascade from users"},
	"recovery_codes":          {Export: "how many codes exist and are unused (never the codes)", Erase: "cascade from users"},
	"login_challenges":        {Export: "second-step sign-in attempts and their times", Erase: "cascade from users"},
	"mail_outbox":             {Export: "mail sent to the user: template, address, subject, status, times", Erase: "cascade from users"},
	"role_bindings":           {Export: "roles held", Erase: "cascade from users"},
	"audit_events":            {Export: "events the user did or was the subject of", Erase: "kept, pseudonymised (actor/subject replaced, IP and user agent dropped)"},
	"invitations":             {Export: "invitations the user sent", Erase: "kept for the tenant; the inviter is set to nobody (ON DELETE SET NULL)"},
	"rate_limits":             {Export: "nothing: keys are hashes of addresses, not linkable to the user", Erase: "expire within hours"},
	"login_failures":          {Export: "nothing: keys are hashes of address and IP", Erase: "expire within a day"},
	"sso_connections":         {Export: "nothing: tenant configuration", Erase: "kept for the tenant (no personal data)"},
	"sso_domains":             {Export: "nothing: tenant configuration", Erase: "kept for the tenant (no personal data)"},
	"sso_identities":          {Export: "the SSO identities (connection, NameID) linked to the user", Erase: "cascade from users"},
	"sso_attempts":            {Export: "the user's successful SSO sign-ins with what the IdP sent", Erase: "cascade from users; failed attempts name no user and are deleted after 30 days"},
	"saml_requests":           {Export: "nothing: pending requests name no user", Erase: "expire within minutes, deleted after a day"},
	"sso_oidc_requests":       {Export: "nothing: pending OIDC requests name no user", Erase: "expire within minutes, deleted after a day"},
	"saml_replay":             {Export: "nothing: message ids only", Erase: "deleted when they expire"},
	"apps":                    {Export: "nothing: tenant configuration (the apps the user used are in oidc_grants and oidc_tokens)", Erase: "kept for the tenant (no personal data)"},
	"oidc_keys":               {Export: "nothing: the tenant's signing keys", Erase: "kept for the tenant (no personal data)"},
	"oidc_grants":             {Export: "the apps the user let in, with the scopes granted", Erase: "cascade from users"},
	"oidc_tokens":             {Export: "tokens issued to apps for the user: app, kind, scopes, times (never the token)", Erase: "cascade from users"},
	"oidc_auth_requests":      {Export: "sign-ins to apps in progress: app and times (never the code)", Erase: "cascade from users; unanswered ones name no user and expire within minutes"},
	"oidc_session_apps":       {Export: "the apps each session signed in to (app name, client_id, when)", Erase: "cascade from sessions (and so from users)"},
	"events":                  {Export: "the events about the user still kept (type, time, payload)", Erase: "deleted at purge; user.deleted (ids only) is written after and kept for its retention"},
	"deletion_receipts":       {Export: "nothing: written after the user is gone, keyed by a pseudonym", Erase: "kept for the tenant (no personal data)"},
	"directories":             {Export: "nothing: tenant configuration", Erase: "kept for the tenant (no personal data)"},
	"directory_tokens":        {Export: "nothing: the directories' bearer tokens (hashes)", Erase: "kept for the tenant (no personal data)"},
	"directory_users":         {Export: "the SCIM record a directory keeps of the user (userName, externalId, attributes)", Erase: "cascade from users"},
	"directory_user_emails":   {Export: "nothing more: lower-cased index keys of the addresses in directory_users (exported there)", Erase: "cascade from directory_users (and so from users)"},
	"directory_groups":        {Export: "nothing: the directory's groups (the user's memberships are in directory_group_members)", Erase: "kept for the tenant (no personal data)"},
	"directory_group_members": {Export: "the directory groups the user is a member of", Erase: "cascade from users"},
	"directory_requests":      {Export: "SCIM requests that affected the user: method, path, status, time", Erase: "kept for the tenant, the user reference set to nobody at purge; deleted after 30 days"},
	"passkeys":                {Export: "each passkey: name, transports, synced flags, counter, times (never the public key or credential id)", Erase: "cascade from users"},
	"passkey_challenges":      {Export: "passkey ceremonies begun for the user: purpose and times (never the challenge)", Erase: "cascade from users; passwordless sign-in ceremonies name no user and are deleted a day after they expire"},
	"webhook_endpoints":       {Export: "nothing: tenant configuration", Erase: "kept for the tenant (no personal data)"},
	"webhook_deliveries":      {Export: "nothing: the delivery state of the events (exported under events)", Erase: "cascade from events (deleted at purge with the user's events)"},
}

// Document is the export.
type Document struct {
	ExportedAt time.Time      `json:"exported_at"`
	Tenant     map[string]any `json:"tenant"`
	Tables     map[string]any `json:"tables"`
}

// Build collects the user's data in one read-only tenant transaction.
func Build(ctx context.Context, st *store.Store, tenantID, userID uuid.UUID, tenantSlug, tenantName string, now time.Time) (Document, error) {
	doc := Document{ExportedAt: now, Tenant: map[string]any{"slug": tenantSlug, "name": tenantName}, Tables: map[string]any{}}
	err := st.InTenant(ctx, tenantID, func(q *sqlcgen.Queries) error {
		u, err := q.GetUserByID(ctx, userID)
		if err != nil {
			return err
		}
		doc.Tables["users"] = map[string]any{"id": u.ID, "email": u.Email, "name": u.Name, "status": u.Status,
			"email_verified_at": u.EmailVerifiedAt, "created_at": u.CreatedAt, "updated_at": u.UpdatedAt, "last_login_at": u.LastLoginAt}
		steps := []struct {
			table string
			get   func() (any, error)
		}{
			{"password_credentials", func() (any, error) { return q.ExportPasswordCredential(ctx, userID) }},
			{"email_tokens", func() (any, error) { return q.ExportEmailTokens(ctx, userID) }},
			{"sessions", func() (any, error) { return q.ExportSessions(ctx, userID) }},
			{"known_devices", func() (any, error) { return q.ExportKnownDevices(ctx, userID) }},
			{"totp_credentials", func() (any, error) { return q.ExportTOTP(ctx, userID) }},
			{"recovery_codes", func() (any, error) { return q.ExportRecoveryCodes(ctx, userID) }},
			{"login_challenges", func() (any, error) { return q.ExportLoginChallenges(ctx, userID) }},
			{"mail_outbox", func() (any, error) { return q.ExportMail(ctx, &userID) }},
			{"role_bindings", func() (any, error) { return q.GetUserRoles(ctx, userID) }},
			{"audit_events", func() (any, error) { return q.ExportAuditEvents(ctx, &userID) }},
			{"invitations", func() (any, error) { return q.ExportInvitationsSent(ctx, &userID) }},
			{"sso_identities", func() (any, error) { return q.ListSSOIdentitiesOfUser(ctx, userID) }},
			{"sso_attempts", func() (any, error) { return q.ExportSSOAttempts(ctx, &userID) }},
			{"oidc_grants", func() (any, error) { return q.ExportOIDCGrants(ctx, userID) }},
			{"oidc_tokens", func() (any, error) { return q.ExportOIDCTokens(ctx, &userID) }},
			{"oidc_auth_requests", func() (any, error) { return q.ExportOIDCAuthRequests(ctx, &userID) }},
			{"oidc_session_apps", func() (any, error) { return q.ExportSessionApps(ctx, userID) }},
			{"events", func() (any, error) { return q.ExportUserEvents(ctx, &userID) }},
			{"directory_users", func() (any, error) { return q.ExportDirectoryUser(ctx, userID) }},
			{"directory_group_members", func() (any, error) { return q.ExportDirectoryMemberships(ctx, userID) }},
			{"directory_requests", func() (any, error) { return q.ExportDirectoryRequests(ctx, &userID) }},
			{"passkeys", func() (any, error) { return q.ExportPasskeys(ctx, userID) }},
			{"passkey_challenges", func() (any, error) { return q.ExportPasskeyChallenges(ctx, &userID) }},
		}
		for _, s := range steps {
			v, err := s.get()
			if err != nil {
				return err
			}
			doc.Tables[s.table] = v
		}
		doc.Tables["rate_limits"] = "not linkable to the user (hashed keys)"
		doc.Tables["login_failures"] = "not linkable to the user (hashed keys)"
		doc.Tables["deletion_receipts"] = "none while the account exists"
		for _, t := range []string{"sso_connections", "sso_domains", "saml_requests", "saml_replay", "apps", "oidc_keys", "sso_oidc_requests", "directories", "directory_tokens", "directory_groups"} {
			doc.Tables[t] = "no personal data of the user"
		}
		doc.Tables["directory_user_emails"] = "index keys of the addresses exported under directory_users"
		doc.Tables["webhook_endpoints"] = "no personal data of the user"
		doc.Tables["webhook_deliveries"] = "the delivery state of the events listed under events"
		return nil
	}, store.ReadOnly(), store.Idempotent())
	return doc, err
}
