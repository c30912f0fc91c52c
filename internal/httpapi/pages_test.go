package httpapi

import (
	"flag"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/admin"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/events"
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
	"github.com/gatehouse-id/gatehouse/internal/mail"
	"github.com/gatehouse-id/gatehouse/internal/mfa"
	"github.com/gatehouse-id/gatehouse/internal/oidcop"
	"github.com/gatehouse-id/gatehouse/internal/passkey"
	"github.com/gatehouse-id/gatehouse/internal/scim"
	"github.com/gatehouse-id/gatehouse/internal/session"
	"github.com/gatehouse-id/gatehouse/internal/sso"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/web"
	"github.com/gatehouse-id/gatehouse/internal/webhooks"
)

var update = flag.Bool("update", false, "rewrite the golden files of TestPagesMatchGolden")

// samples are a view for every page, with the values that show most of it.
func samples() map[string]any {
	at := time.Date(2026, 11, 30, 9, 15, 0, 0, time.UTC)
	id := uuid.MustParse("7d3c2b1a-0000-4000-8000-000000000001")
	p := session.Principal{UserID: id, Email: "ada@acme.example", EmailVerifiedAt: &at}
	u := admin.User{ID: id, Email: "ada@acme.example", Name: "Ada", EmailVerified: true, EmailVerifiedAt: &at, Status: "active",
		Roles: []string{"admin"}, MFA: true, SSO: []string{"okta"}, CreatedAt: at, LastLoginAt: &at, Role: "admin"}
	conn := sso.Connection{ID: id, Slug: "okta", Name: "Okta", Provider: "okta", Enabled: true, Status: "active",
		SPEntityID: "https://acme.example.com/sso/saml/okta/metadata", ACSURL: "https://acme.example.com/sso/saml/okta/acs",
		SPMetadataURL: "https://acme.example.com/sso/saml/okta/metadata", SLOURL: "https://acme.example.com/sso/saml/okta/slo",
		Domains: []sso.Domain{{Domain: "acme.example", DomainUnicode: "acme.example"}, {Domain: "xn--bcher-kva.example", DomainUnicode: "bücher.example",
			RecordName: "_gatehouse.xn--bcher-kva.example", RecordValue: "gatehouse-verification=abc"}}, CreatedAt: at, UpdatedAt: at}
	tid := "6f1c0000-0000-4000-8000-000000000000"
	oidcConn := sso.Connection{ID: id, Slug: "entra", Protocol: "oidc", Name: "Entra ID", Provider: "entra", Enabled: false, Status: "disabled",
		LoginURL: "https://acme.example.com/sso/oidc/entra/login", RedirectURI: "https://acme.example.com/sso/oidc/entra/callback",
		PostLogoutURI: "https://acme.example.com/signed-out?idp=oidc", JIT: true, DefaultRedirect: "/",
		OIDC: &sso.OIDCSettings{Issuer: "https://login.microsoftonline.com/" + tid + "/v2.0", ClientID: "2b0e", ClientSecretSet: true,
			Scopes: []string{"openid", "email", "profile"}, EntraTenant: &tid, AuthorizationURL: "https://login.microsoftonline.com/" + tid + "/oauth2/v2.0/authorize",
			TokenURL: "https://login.microsoftonline.com/" + tid + "/oauth2/v2.0/token", UserInfoURL: "https://graph.microsoft.com/oidc/userinfo",
			EndSessionURL: "https://login.microsoftonline.com/" + tid + "/oauth2/v2.0/logout", SigningAlgs: []string{"RS256"}, DiscoveryFetchedAt: at},
		Domains: []sso.Domain{{Domain: "acme.example", DomainUnicode: "acme.example", Verified: true}}, RoleMapping: map[string]string{"IT admins": "admin"}, CreatedAt: at, UpdatedAt: at}
	gone := "gone"
	hook := webhooks.Endpoint{ID: id, URL: "https://app.acme.example/hooks/gatehouse", Description: "app backend", EventTypes: []string{"user.deleted", "session.revoked"},
		DisabledReason: &gone, PreviousSecretUntil: &at, CreatedAt: at, UpdatedAt: at}
	app := oidcop.App{ID: id, ClientID: "app_abc", Name: "Acme CRM", Type: "confidential", RedirectURIs: []string{"https://crm.acme.example/callback"},
		PostLogoutRedirectURIs: []string{"https://crm.acme.example/"}, BackchannelLogoutURI: "https://crm.acme.example/backchannel",
		FirstParty: true, AllowedScopes: []string{"openid", "email"}, GrantTypes: []string{"authorization_code", "refresh_token"},
		AccessTokenTTLSeconds: 300, RefreshTokenTTLSeconds: 30 * 86400, PreviousSecretExpiresAt: &at, CreatedAt: at, UpdatedAt: at}
	connect := oidchttp.ConnectInfo{Issuer: "https://acme.example.com", Discovery: "https://acme.example.com/.well-known/openid-configuration"}
	dirSample := scim.Directory{ID: id, Name: "Okta", Provider: "okta", DeleteMode: "lifecycle", RatePerMinute: 600, SCIMBaseURL: "https://acme.example.com/scim/v2",
		LastSyncAt: &at, CreatedAt: at, Users: 12, Groups: 3, Tokens: []scim.Token{{ID: id, Hint: "…Q2xw", CreatedAt: at, LastUsedAt: &at}}}
	ev := audit.View{ID: id, Action: "session.login", Actor: audit.Party{ID: &id, Label: "ada@acme.example"}, IP: "203.0.113.7", CreatedAt: at}
	return map[string]any{
		"signup":          accounthttp.SignupView{Email: "ada@acme.example", Name: "Ada", Error: "That password is too common."},
		"login":           accounthttp.LoginView{Email: "ada@acme.example", Error: "The email address or password is not correct.", ReturnTo: "/account", NotVerified: true, PendingDeletion: true},
		"signup_sent":     accounthttp.SignupSentView{},
		"login_mfa":       accounthttp.LoginMFAView{MFAToken: "tok", ReturnTo: "/account", Error: "That code did not work.", Passkey: true},
		"verify":          accounthttp.TokenView{Token: "tok"},
		"reset":           accounthttp.TokenView{Token: "tok", Error: "Choose a longer password."},
		"undo":            accounthttp.TokenView{Failed: true, Error: "This link is invalid or has expired.", NextText: "Reset your password", NextURL: "/password/forgot"},
		"secure":          accounthttp.TokenView{Token: "tok"},
		"cancel_deletion": accounthttp.TokenView{Failed: true, Done: true, Error: "This link was already used: your account stays.", NextText: "Sign in", NextURL: "/login"},
		"email_form":      accounthttp.EmailFormView{Action: "/password/forgot", Button: "Send reset link", Intro: "Enter your email address.", Email: "ada@acme.example"},
		"account": accounthttp.AccountView{P: p, Verified: true, MFA: true, NewEmail: "ada@new.example", EmailError: "That address is taken.",
			HasPassword: true, PasswordAllowed: true, Admin: true, EmailKept: true, OfferPasskey: true,
			Passkeys: []passkey.Passkey{{ID: id, Name: "Laptop", CreatedAt: at, LastUsedAt: &at, BackupEligible: true, Synced: true},
				{ID: id, Name: "Security key", CreatedAt: at}}},
		"delete_account": accounthttp.DeleteAccountView{P: p, GraceDays: 14, Confirm: "ada@acme.example", Kept: true},
		"invite": accounthttp.InviteView{Token: "tok", Inv: account.Invitation{ID: id, Email: "ada@acme.example", Role: "admin", ExpiresAt: at, CreatedAt: at},
			Existing: true, SignedInAs: "bob@acme.example", LoginURL: "/login?return_to=%2Finvite%3Ftoken%3Dtok"},
		"sessions": sessionhttp.SessionsView{Notice: "Signed out of that session. That device must sign in again.", Others: true,
			Sessions: []sessionhttp.SessionRow{{ID: "s-1", Current: true, Device: "Firefox on Linux", IP: "203.0.113.7", LastActive: "just now", Since: "2 Jan 2026 10:00 UTC"},
				{ID: "s-2", Device: "Safari on iOS", IP: "—", LastActive: "3 hours ago", Since: "1 Jan 2026 08:00 UTC"}}},
		"signed_out":       sessionhttp.SignedOutView{IdPStill: true},
		"signout_continue": kit.ContinueView{URL: "https://idp.example/slo?SAMLRequest=x", Text: "You are signed out here. Signing you out of your organisation's sign-in too…"},
		"reauth":           stepuphttp.ReauthView{Kept: "We kept your change: after this step you come back to finish it.", Action: "email.change", ReturnTo: "/account", HasCode: true, SSO: true, SSOURL: "/sso/reauth?return_to=%2Faccount", HasPasskey: true},
		"mfa_enroll": stepuphttp.EnrollView{E: mfa.Enrollment{Secret: "JBSWY3DPEHPK3PXP", OTPAuthURI: "otpauth://totp/x"},
			QR: web.DataURL("image/png", "iVBORw0KGgo="), Error: "That code is not correct."},
		"mfa_codes": stepuphttp.CodesView{Heading: "New recovery codes", Intro: "Shown only now.", Codes: []string{"aaaaa-bbbbb", "ccccc-ddddd"},
			Text: "aaaaa-bbbbb\nccccc-ddddd", Download: web.DataURL("text/plain;charset=utf-8", "YWFhYWEtYmJiYmIK"), FileName: "recovery-codes-acme.txt"},
		"mfa":      stepuphttp.MFAView{S: mfa.Status{Enabled: true, RecoveryCodesRemaining: 2}, Low: true},
		"sso_test": ssohttp.TestView{Report: &sso.Report{Issuer: "https://idp.example", NameID: "ada", Steps: []sso.Step{}}, Reference: "ref-1", OK: true},
		"admin_sso": ssohttp.ConnectionsView{Connections: []sso.Connection{conn}, Guides: ssohttp.Guides, Guide: ssohttp.GuideFor("okta"),
			Name: "Okta", Slug: "okta", Err: ssohttp.FieldError{Field: "slug", Message: "Another connection already uses this identifier."}},
		"admin_sso_conn": ssohttp.ConnectionView{C: conn, Guide: ssohttp.GuideFor("okta"), Steps: ssohttp.StepsFor(ssohttp.GuideFor("okta"), conn),
			Notice: "Saved.", Roles: "Admins=admin", DomainList: "acme.example, bücher.example", Form: "settings",
			Err: ssohttp.FieldError{Field: "domains", Message: `"acme..example" is not a domain name.`}},
		"admin_sso_add_oidc": ssohttp.OIDCAddView{Guides: ssohttp.Guides, Guide: ssohttp.GuideFor("oidc-entra"), Steps: ssohttp.StepsFor(ssohttp.GuideFor("oidc-entra"), oidcConn),
			RedirectURI: oidcConn.RedirectURI, PostLogoutURI: oidcConn.PostLogoutURI, Name: "Microsoft Entra ID", Slug: "entra",
			Issuer: "https://login.microsoftonline.com/6f1c0000-0000-4000-8000-000000000000/v2.0", ClientID: "2b0e", Scopes: "openid email profile",
			EntraTenant: "6f1c0000-0000-4000-8000-000000000000", Err: ssohttp.FieldError{Field: "issuer", Message: "The issuer's discovery document could not be fetched or read: the server answered 404."}},
		"admin_sso_oidc": ssohttp.ConnectionView{C: oidcConn, Guide: ssohttp.GuideOf(oidcConn), Steps: ssohttp.StepsFor(ssohttp.GuideOf(oidcConn), oidcConn),
			Attempts: []sso.Attempt{{ID: id, Reference: "ABCD1234", Mode: "login", Success: false, Reason: "tid_mismatch", CreatedAt: at}},
			Form:     "oidc", Err: ssohttp.FieldError{Field: "client_id", Message: "The client ID the IdP gave this app (1 to 512 characters)."}},
		"admin_sso_delete": ssohttp.DeleteView{C: conn, Err: ssohttp.FieldError{Field: "confirm", Message: "Type the identifier okta exactly to confirm."}},
		"admin_apps": oidchttp.AppsView{Apps: []oidcop.App{app}, Connect: connect, Deleted: true,
			Form: oidchttp.AppForm{Name: "Acme CRM", Type: "public", RedirectURIs: "http://example.com/cb", AccessTokenMinutes: "5", RefreshTokenDays: "30", Opened: "1"},
			Err:  oidchttp.FieldError{Field: "redirect_uris", Message: "Use https (http only for 127.0.0.1, [::1] or localhost)."}},
		"admin_app": oidchttp.AppView{App: app, Connect: connect, Notice: "Saved.", Version: "1",
			Form: oidchttp.AppForm{Name: "Acme CRM", Type: "confidential", RedirectURIs: "https://crm.acme.example/callback", AccessTokenMinutes: "0", RefreshTokenDays: "30"},
			Err:  oidchttp.FieldError{Field: "access_token_minutes", Message: "From 1 to 1440 minutes (24 hours)."}},
		"admin_app_secret": oidchttp.SecretView{App: app, Secret: "ghs_secret", Connect: connect, Rotated: true},
		"admin_app_delete": oidchttp.AppDeleteView{App: app, Confirm: "Acme", Err: oidchttp.FieldError{Field: "confirm", Message: "Type the application's name, Acme CRM, exactly to confirm."}},
		"admin_directories": scimhttp.DirectoriesView{Directories: []scim.Directory{dirSample}, BaseURL: "https://acme.example.com/scim/v2",
			Connections: []scim.ConnectionOption{{ID: id, Name: "Okta"}}, Error: "The directory settings are not valid.", Deleted: true},
		"admin_directory": scimhttp.DirectoryView{D: dirSample, Revoked: true, Log: []scim.LogEntry{{Method: "PATCH", Path: "/scim/v2/Users/" + id.String(),
			Status: 400, SCIMType: "invalidValue", LatencyMS: 4, UserID: &id, At: at}}},
		"admin_directory_token": scimhttp.TokenView{D: dirSample, Token: "gh_scim_token"},
		"admin_webhooks": webhookhttp.WebhooksView{Webhooks: []webhooks.Endpoint{hook}, Types: events.Types, URL: "http://app.example/hooks",
			Error: "The webhook URL is not allowed: webhook URLs must use https.", Deleted: true},
		"admin_webhook_secret": webhookhttp.SecretView{Webhook: hook, Secret: "whsec_c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0MTI=", Rotated: true},
		"admin_webhook": webhookhttp.WebhookView{Webhook: hook, Types: events.Types, Notice: "Saved.", Deliveries: []webhooks.Delivery{
			{ID: id, EventID: id, EventType: "user.deleted", State: "failed", Attempts: 12, Status: ptrTo(int32(500)), LatencyMS: ptrTo(int32(84)),
				Response: ptrTo(`{"error":"down"}`), LastAttemptAt: &at, CreatedAt: at},
			{ID: id, EventID: id, EventType: "user.created", State: "pending", Attempts: 1, Response: ptrTo("the connection failed"), NextAttemptAt: &at, CreatedAt: at}}},
		"consent": oidchttp.ConsentView{ID: "req-1", AppName: "Acme CRM", Email: "ada@acme.example",
			Scopes: []oidchttp.ScopeLine{{Scope: "openid", Text: "Know who you are (your account id)"}, {Scope: "email", Text: "See your email address"}}},
		"admin_overview": adminhttp.OverviewView{Counts: admin.Counts{Users: 3, Verified: 2, MFA: 1, ActiveSessions: 4}, Logins: []audit.View{ev}, SSOWarnings: []sso.Connection{conn}},
		"admin_users":    adminhttp.UsersView{Users: []admin.User{u}, Q: "ada", Next: "/admin/users?cursor=x"},
		"admin_user":     adminhttp.UserView{U: u, Role: "admin", Roles: []string{"owner", "admin", "member"}, Sessions: []session.View{{ID: id, Browser: "Firefox", OS: "Linux", IP: "203.0.113.7", CreatedAt: at, LastActiveAt: at}}, Notice: "Only an owner can delete an owner's account.", GraceDays: 14},
		"admin_roles":    adminhttp.RolesView{Roles: []admin.Role{{Name: "admin", Permissions: []string{"users.read"}, Members: []string{"ada@acme.example"}}}},
		"admin_policy":   adminhttp.NewPolicyView(tenant.DefaultPolicy(), true, ""),
		"admin_invitations": adminhttp.InvitationsView{Invitations: []account.Invitation{{ID: id, Email: "bob@acme.example", Role: "member", ExpiresAt: at, CreatedAt: at}},
			Roles: []string{"owner", "admin", "member"}, Notice: "Invitation sent."},
		"admin_audit":    adminhttp.NewAuditView([]audit.View{ev}, "session.login", "", "", url.Values{"action": {"session.login"}}, "c"),
		"admin_branding": adminhttp.BrandingView{B: tenant.Branding{DisplayName: "Acme", PrimaryColor: "#aa3300"}, Saved: true},
		"landing":        platformhttp.LandingView{Example: "acme.example.com"},
		"tenant_home":    nil,
		"devmail":        platformhttp.DevMailView{Messages: []mail.Captured{{ID: "1", To: "ada@acme.example", Subj: "Confirm", SentAt: at, Links: []string{"https://acme.example.com/verify?token=x"}}}},
		"message":        kit.MessageView{Heading: "Done", Text: "It worked.", LinkText: "Back", Link: "/account"},
		"error":          kit.ErrorView{Heading: "Not found", Message: "There is nothing here.", Code: "not_found"},
		"account_apps":   oidchttp.AccountAppsView{Notice: "Access removed.", Grants: []oidchttp.GrantRow{{AppID: id.String(), AppName: "Notes", Since: "30 Nov 2026", Scopes: []string{"See your email address"}}}},
		"sso_continue":   kit.ContinueView{URL: "https://idp.example/sso", Text: "Continue to your organisation's sign-in."},
		"logout_confirm": oidchttp.LogoutConfirmView{AppName: "Acme CRM", Email: "ada@acme.example", IDTokenHint: "eyJ.hint.sig",
			ClientID: "crm", PostLogoutRedirectURI: "https://crm.example/signed-out", State: "s1"},
		"oidc_signed_out":  oidchttp.SignedOutView{AppName: "Acme CRM", UnknownRedirect: true},
		"passkey_offer":    passkeyhttp.OfferView{ReturnTo: "/account"},
		"passkey_required": passkeyhttp.RequiredView{ReturnTo: "/admin", Self: "/account/passkeys/required?return_to=%2Fadmin"},
	}
}

// TestPagesMatchGolden renders every page with its typed view and compares it with
// testdata/pages/NAME.html (go test -run TestPagesMatchGolden -update rewrites them). A
// page without a sample fails, so a new page comes with its golden file; a template that
// names a field its view lacks fails to render.
func TestPagesMatchGolden(t *testing.T) {
	pages, err := Pages()
	if err != nil {
		t.Fatal(err)
	}
	views := samples()
	assetHash := regexp.MustCompile(`\?v=[0-9a-f]{12}`)
	for _, name := range pages.Names() {
		t.Run(name, func(t *testing.T) {
			view, ok := views[name]
			if !ok {
				t.Fatalf("page %q has no sample view in samples()", name)
			}
			rec := httptest.NewRecorder()
			if err := pages.Render(rec, 200, name, web.Page{Title: "Title", Brand: "Acme", BrandCSS: "/brand.css?v=000000000000",
				RequestID: "req-1", SignedIn: "ada@acme.example", Admin: true, Path: "/admin/" + strings.TrimPrefix(name, "admin_"), SignupOn: true, Data: view}); err != nil {
				t.Fatalf("render: %v", err)
			}
			got := assetHash.ReplaceAllString(rec.Body.String(), "?v=HASH")
			path := filepath.Join("testdata", "pages", name+".html")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if d := cmp.Diff(string(want), got); d != "" {
				t.Errorf("%s differs from %s (-want +got):\n%s", name, path, d)
			}
		})
	}
	for name := range views {
		if !pages.Has(name) {
			t.Errorf("sample for %q, which is not a page", name)
		}
	}
}

func ptrTo[T any](v T) *T { return &v }
