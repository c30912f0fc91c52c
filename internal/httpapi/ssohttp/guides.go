package ssohttp

import "github.com/gatehouse-id/gatehouse/internal/sso"

// SP values a guide step asks to paste into the IdP.
const (
	valueACS      = "acs"
	valueEntityID = "entity_id"
	valueMetadata = "metadata"
	valueSLO      = "slo"
)

// Guide is one IdP's setup, in the order and the words of that IdP's admin console.
type Guide struct {
	Provider, Title string
	Intro           string // what the IdP asks for first, on the add page
	EntityField     string // the IdP's name for the SP entity ID
	ACSField        string // the IdP's name for the ACS URL
	Steps           []GuideStep
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

// GuideFor is the guide of provider p (the generic one for an unknown provider).
func GuideFor(p string) Guide {
	for _, g := range Guides {
		if g.Provider == p {
			return g
		}
	}
	return Guides[len(Guides)-1]
}

// StepView is a guide step with the connection's value to paste, if any.
type StepView struct {
	Text, Field, Value string
	Here               bool
}

// StepsFor fills a guide's steps with the connection's SP values.
func StepsFor(g Guide, c sso.Connection) []StepView {
	values := map[string]string{valueACS: c.ACSURL, valueEntityID: c.SPEntityID, valueMetadata: c.SPMetadataURL, valueSLO: c.SLOURL}
	out := make([]StepView, 0, len(g.Steps))
	for _, s := range g.Steps {
		out = append(out, StepView{Text: s.Text, Field: s.Field, Value: values[s.Value], Here: s.Here})
	}
	return out
}
