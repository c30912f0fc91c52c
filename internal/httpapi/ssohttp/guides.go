package ssohttp

import "github.com/gatehouse-id/gatehouse/internal/sso"

// SP values a guide step asks to paste into the IdP.
const (
	valueACS      = "acs"
	valueEntityID = "entity_id"
	valueMetadata = "metadata"
	valueSLO      = "slo"
	// OIDC: the redirect URI and the post-logout redirect URI to register.
	valueRedirect   = "redirect_uri"
	valuePostLogout = "post_logout"
)

// Guide is one IdP's setup, in the order and the words of that IdP's admin console.
type Guide struct {
	Provider, Title string
	// Key selects the guide (?provider=); empty means Provider. Protocol is saml (empty)
	// or oidc; DefaultSlug is the identifier an OIDC guide proposes, so the redirect URI
	// to paste is exact before the connection exists.
	Key, Protocol, DefaultSlug string
	// IssuerHint is what an OIDC guide says the issuer looks like; Check names the
	// IdP-specific field it offers (hosted_domain for Google, entra_tenant_id for Entra).
	IssuerHint, Issuer, Check string
	Intro                     string // what the IdP asks for first, on the add page
	EntityField               string // the IdP's name for the SP entity ID
	ACSField                  string // the IdP's name for the ACS URL
	Steps                     []GuideStep
}

// GuideStep is one step at the IdP. Field and Value name an SP value to paste there;
// Here marks the step that brings something back to Gatehouse (the metadata, step 2).
type GuideStep struct {
	Text  string
	Field string
	Value string
	Here  bool
}

// Guides are the setup guides, in the order the portal offers them.
var Guides = []Guide{
	{Provider: "okta", Title: "Okta", EntityField: "Audience URI (SP Entity ID)", ACSField: "Single sign-on URL",
		Intro: "Okta asks for the Single sign-on URL and the Audience URI before it shows its metadata: name the connection here first and Gatehouse shows both at once.",
		Steps: []GuideStep{
			{Text: "In the Okta Admin Console, open Applications → Applications and click Create App Integration. Choose SAML 2.0 and click Next."},
			{Text: "General Settings: enter an App name (for example Gatehouse) and click Next."},
			{Text: "Configure SAML → SAML Settings: paste into Single sign-on URL, and keep “Use this for Recipient URL and Destination URL” ticked.", Field: "Single sign-on URL", Value: valueACS},
			{Text: "Paste into Audience URI (SP Entity ID).", Field: "Audience URI (SP Entity ID)", Value: valueEntityID},
			{Text: "Name ID format: EmailAddress (or Persistent). Application username: Email."},
			{Text: "Attribute Statements: email → user.email, firstName → user.firstName, lastName → user.lastName. For role mapping, a Group Attribute Statement named groups with the filter Matches regex .*"},
			{Text: "Click Next, choose “This is an internal app that we have created” and click Finish."},
			{Text: "On the Sign On tab, copy the Metadata URL (under SAML 2.0 / Sign on methods) and paste it in step 2 below.", Here: true},
			{Text: "On the Assignments tab, assign the people or groups who may sign in."},
		}},
	{Provider: "entra", Title: "Microsoft Entra ID", EntityField: "Identifier (Entity ID)", ACSField: "Reply URL (Assertion Consumer Service URL)",
		Intro: "Entra ID asks for the Identifier (Entity ID) and the Reply URL in Basic SAML Configuration before it offers its metadata: name the connection here first and Gatehouse shows both at once.",
		Steps: []GuideStep{
			{Text: "In the Microsoft Entra admin center, open Identity → Applications → Enterprise applications, click New application, then Create your own application."},
			{Text: "Enter a name, choose “Integrate any other application you don't find in the gallery (Non-gallery)” and click Create."},
			{Text: "Open Single sign-on and choose SAML. In Basic SAML Configuration click Edit."},
			{Text: "Identifier (Entity ID): click Add identifier, paste, and tick Default.", Field: "Identifier (Entity ID)", Value: valueEntityID},
			{Text: "Reply URL (Assertion Consumer Service URL): click Add reply URL and paste.", Field: "Reply URL (Assertion Consumer Service URL)", Value: valueACS},
			{Text: "Logout Url (Optional): paste, then click Save.", Field: "Logout Url (Optional)", Value: valueSLO},
			{Text: "Attributes & Claims: the default claims work (emailaddress, givenname, surname). For role mapping, click Add a group claim."},
			{Text: "In SAML Certificates, copy the App Federation Metadata Url and paste it in step 2 below.", Here: true},
			{Text: "Under Users and groups, click Add user/group and assign who may sign in."},
		}},
	{Provider: "google", Title: "Google Workspace", EntityField: "Entity ID", ACSField: "ACS URL",
		Intro: "Google shows its metadata first and asks for the ACS URL and Entity ID on the next page: name the connection here first, keep Google's metadata file, and upload it in step 2.",
		Steps: []GuideStep{
			{Text: "In the Google Admin console, open Apps → Web and mobile apps and click Add app → Add custom SAML app."},
			{Text: "App details: enter an App name and click Continue."},
			{Text: "Google Identity Provider details: under Option 1 click DOWNLOAD METADATA and keep the file for step 2 below. Click Continue.", Here: true},
			{Text: "Service provider details: paste into ACS URL.", Field: "ACS URL", Value: valueACS},
			{Text: "Paste into Entity ID. Leave Start URL empty and Signed response unticked.", Field: "Entity ID", Value: valueEntityID},
			{Text: "Name ID format: EMAIL. Name ID: Basic Information > Primary email. Click Continue."},
			{Text: "Attribute mapping: Primary email → email, First name → firstName, Last name → lastName; for role mapping, Group membership → groups. Click Finish."},
			{Text: "User access: turn the app ON for everyone (or an organizational unit) and click Save. Google can take a few minutes to apply it."},
		}},
	{Provider: "generic", Title: "Any SAML 2.0 IdP (ADFS, Ping, OneLogin, Keycloak…)", EntityField: "SP entity ID / Audience", ACSField: "ACS / Reply URL",
		Intro: "Name the connection first: Gatehouse then shows its ACS URL, SP entity ID and SP metadata URL for your IdP, and takes the IdP's metadata in step 2.",
		Steps: []GuideStep{
			{Text: "At your IdP, create a SAML 2.0 service provider (ADFS: Add Relying Party Trust). If it can import SP metadata from a URL, give it this one and skip the next three steps.", Field: "SP metadata URL", Value: valueMetadata},
			{Text: "Assertion Consumer Service (ACS, Reply URL), binding HTTP-POST:", Field: "ACS / Reply URL", Value: valueACS},
			{Text: "SP entity ID (Audience, relying party identifier):", Field: "SP entity ID / Audience", Value: valueEntityID},
			{Text: "Single logout URL (optional; Redirect or POST binding):", Field: "Single logout URL", Value: valueSLO},
			{Text: "NameID: the user's email address (or a persistent ID with the email in an attribute named email). Sign assertions with RSA-SHA256 and a key of at least 2048 bits."},
			{Text: "Copy the IdP's metadata URL, or export its metadata XML, and give it in step 2 below.", Here: true},
		}},
}

// OIDCGuides are the OpenID Connect setup guides (Key oidc-{provider}).
var OIDCGuides = []Guide{
	{Key: "oidc-google", Provider: "google", Protocol: sso.ProtocolOIDC, Title: "Google Workspace (OpenID Connect)", DefaultSlug: "google",
		Issuer: "https://accounts.google.com", IssuerHint: "https://accounts.google.com", Check: "hosted_domain",
		Intro: "Google asks for the redirect URI when you create the OAuth client and then shows its client ID and secret: copy the redirect URI below first.",
		Steps: []GuideStep{
			{Text: "In the Google Cloud console (signed in as a Workspace admin), open APIs & Services → OAuth consent screen and choose User type Internal, so only your Workspace accounts can sign in."},
			{Text: "Open APIs & Services → Credentials, click Create credentials → OAuth client ID, and choose Application type Web application."},
			{Text: "Under Authorized redirect URIs click Add URI and paste:", Field: "Authorized redirect URI", Value: valueRedirect},
			{Text: "Click Create and copy the Client ID and Client secret into the form below. The issuer is https://accounts.google.com; your Workspace's primary domain goes in Workspace domain (hd), so accounts of other Google domains are refused.", Here: true},
			{Text: "Google sends no groups claim and publishes no logout endpoint: roles come from the default or from invitations, and signing out leaves the Google session."},
		}},
	{Key: "oidc-entra", Provider: "entra", Protocol: sso.ProtocolOIDC, Title: "Microsoft Entra ID (OpenID Connect)", DefaultSlug: "entra",
		IssuerHint: "https://login.microsoftonline.com/{Directory (tenant) ID}/v2.0", Check: "entra_tenant_id",
		Intro: "Entra ID asks for the redirect URI when you register the app and then shows its IDs: copy the redirect URI below first.",
		Steps: []GuideStep{
			{Text: "In the Microsoft Entra admin center, open Identity → Applications → App registrations and click New registration."},
			{Text: "Enter a name, choose “Accounts in this organizational directory only (Single tenant)”."},
			{Text: "Redirect URI: choose Web and paste, then click Register:", Field: "Redirect URI (Web)", Value: valueRedirect},
			{Text: "Authentication → Front-channel logout URL is not needed; under Web → Redirect URIs you may add the post-logout URI:", Field: "Post-logout redirect URI", Value: valuePostLogout},
			{Text: "Overview: copy the Application (client) ID into Client ID and the Directory (tenant) ID into the issuer https://login.microsoftonline.com/{Directory (tenant) ID}/v2.0 and into Directory (tenant) ID (tid) below.", Here: true},
			{Text: "Certificates & secrets → New client secret: copy its Value (shown once) into Client secret below.", Here: true},
			{Text: "Token configuration → Add optional claim → ID: email; for role mapping, Add groups claim (Security groups). Entra sends no email_verified claim, so an existing Gatehouse account is never linked by address alone."},
			{Text: "Enterprise applications → this app → Users and groups: assign who may sign in (with Assignment required set to Yes in Properties)."},
		}},
	{Key: "oidc-okta", Provider: "okta", Protocol: sso.ProtocolOIDC, Title: "Okta (OIDC app)", DefaultSlug: "okta",
		IssuerHint: "https://{your-org}.okta.com (or https://{your-org}.okta.com/oauth2/default)",
		Intro:      "Okta asks for the sign-in and sign-out redirect URIs when you create the app integration: copy them below first.",
		Steps: []GuideStep{
			{Text: "In the Okta Admin Console, open Applications → Applications, click Create App Integration, choose OIDC - OpenID Connect and Web Application, and click Next."},
			{Text: "Grant type: Authorization Code only. Sign-in redirect URIs: paste", Field: "Sign-in redirect URI", Value: valueRedirect},
			{Text: "Sign-out redirect URIs: paste", Field: "Sign-out redirect URI", Value: valuePostLogout},
			{Text: "Assignments: choose who may sign in, then Save."},
			{Text: "On the General tab copy the Client ID and the Client secret into the form below; the issuer is your Okta org URL, https://{your-org}.okta.com (the org is checked by the issuer, exactly).", Here: true},
			{Text: "For role mapping: Sign On tab → OpenID Connect ID Token → Edit, Groups claim type Filter, groups Matches regex .*"},
		}},
	{Key: "oidc-generic", Provider: "generic", Protocol: sso.ProtocolOIDC, Title: "Any OpenID Provider (Keycloak, Auth0, Zitadel, Ping…)", DefaultSlug: "oidc",
		IssuerHint: "https://idp.example.com/realms/acme",
		Intro:      "Register Gatehouse at your OpenID Provider as a confidential web client with the authorization code flow: copy the redirect URI below first.",
		Steps: []GuideStep{
			{Text: "Create a confidential (web) client, grant type authorization code, PKCE S256 allowed. Redirect URI:", Field: "Redirect URI", Value: valueRedirect},
			{Text: "Post-logout redirect URI (optional, for RP-initiated logout):", Field: "Post-logout redirect URI", Value: valuePostLogout},
			{Text: "Give Gatehouse the issuer (its /.well-known/openid-configuration must answer), the client ID and the client secret below.", Here: true},
			{Text: "Scopes openid email profile; a groups claim for role mapping; email_verified true for addresses you vouch for."},
		}},
}

func init() { Guides = append(Guides, OIDCGuides...) }

// ID is the guide's key in ?provider=.
func (g Guide) ID() string {
	if g.Key != "" {
		return g.Key
	}
	return g.Provider
}

// OIDC tells an OpenID Connect guide.
func (g Guide) OIDC() bool { return g.Protocol == sso.ProtocolOIDC }

// GuideFor is the guide of key p (the generic SAML one for an unknown key).
func GuideFor(p string) Guide {
	for _, g := range Guides {
		if g.ID() == p {
			return g
		}
	}
	for _, g := range Guides {
		if g.Provider == "generic" && !g.OIDC() {
			return g
		}
	}
	return Guides[0]
}

// GuideOf is the guide of a connection (by protocol and provider).
func GuideOf(c sso.Connection) Guide {
	if c.Protocol == sso.ProtocolOIDC {
		return GuideFor("oidc-" + c.Provider)
	}
	return GuideFor(c.Provider)
}

// StepView is a guide step with the connection's value to paste, if any.
type StepView struct {
	Text, Field, Value string
	Here               bool
}

// StepsFor fills a guide's steps with the connection's SP values.
func StepsFor(g Guide, c sso.Connection) []StepView {
	values := map[string]string{valueACS: c.ACSURL, valueEntityID: c.SPEntityID, valueMetadata: c.SPMetadataURL, valueSLO: c.SLOURL,
		valueRedirect: c.RedirectURI, valuePostLogout: c.PostLogoutURI}
	out := make([]StepView, 0, len(g.Steps))
	for _, s := range g.Steps {
		out = append(out, StepView{Text: s.Text, Field: s.Field, Value: values[s.Value], Here: s.Here})
	}
	return out
}
