package mail

import (
	"bytes"
	"embed"
	"fmt"
	htmltemplate "html/template"
	"strings"
	texttemplate "text/template"
)

//go:embed templates/*.txt templates/*.html
var templateFS embed.FS

// Template names.
const (
	TplVerifyEmail     = "verify_email"
	TplSignupExisting  = "signup_existing"
	TplResetPassword   = "reset_password"
	TplPasswordChanged = "password_changed"
	TplChangeEmail     = "change_email"
	TplEmailChanged    = "email_changed"
	TplNewDevice       = "new_device"
	TplSecurityNotice  = "security_notice"
	TplInvitation      = "invitation"
	TplSetupAccount    = "setup_account"
	TplDeletion        = "deletion_requested"
	TplSSOCertificate  = "sso_certificate"
	TplPasskeyAdded    = "passkey_added"
	TplPasskeyRemoved  = "passkey_removed"
	TplWebhookDisabled = "webhook_disabled"
)

// Data fills a template.
type Data struct {
	Tenant   string // the tenant's display name
	Email    string // the recipient's address
	Name     string // the recipient's name, when known ("Hello Ada,")
	NewEmail string
	Link     string // the main action, always on the tenant's own host
	Link2    string
	Expires  string // "24 hours"
	Device   string // "Chrome on macOS"
	IP       string
	When     string
	Event    string // security notices: "Two-factor authentication turned on"
	Detail   string
}

// Templates renders mails.
type Templates struct {
	text map[string]*texttemplate.Template
	html map[string]*htmltemplate.Template
}

// Names lists every template.
func Names() []string {
	return []string{TplVerifyEmail, TplSignupExisting, TplResetPassword, TplPasswordChanged, TplChangeEmail, TplEmailChanged, TplNewDevice, TplSecurityNotice, TplInvitation, TplSetupAccount, TplDeletion, TplSSOCertificate, TplPasskeyAdded, TplPasskeyRemoved, TplWebhookDisabled}
}

// LoadTemplates parses the embedded templates.
func LoadTemplates() (*Templates, error) {
	t := &Templates{text: map[string]*texttemplate.Template{}, html: map[string]*htmltemplate.Template{}}
	for _, name := range Names() {
		tt, err := texttemplate.ParseFS(templateFS, "templates/"+name+".txt")
		if err != nil {
			return nil, fmt.Errorf("mail template %s: %w", name, err)
		}
		ht, err := htmltemplate.ParseFS(templateFS, "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("mail template %s: %w", name, err)
		}
		t.text[name], t.html[name] = tt, ht
	}
	return t, nil
}

// Render returns subject, text and HTML of template name.
func (t *Templates) Render(name string, d Data) (subject, text, html string, err error) {
	tt, ok := t.text[name]
	if !ok {
		return "", "", "", fmt.Errorf("mail: no template %q", name)
	}
	var sb, tb, hb bytes.Buffer
	if err := tt.ExecuteTemplate(&sb, "subject", d); err != nil {
		return "", "", "", err
	}
	if err := tt.ExecuteTemplate(&tb, "text", d); err != nil {
		return "", "", "", err
	}
	if err := t.html[name].Execute(&hb, d); err != nil {
		return "", "", "", err
	}
	page := `<!doctype html><html><body style="font-family:system-ui,sans-serif;line-height:1.5;color:#1b1f24">` +
		hb.String() + `<p style="color:#5b6470;font-size:12px">` + htmltemplate.HTMLEscapeString(d.Tenant) + ` · secured by Gatehouse</p></body></html>`
	return strings.TrimSpace(sb.String()), strings.TrimSpace(tb.String()) + "\n", page, nil
}
