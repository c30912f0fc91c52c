package tenant

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
)

// Policy is a tenant's configuration of the user lifecycle, stored as jsonb in
// tenants.policy. Fields missing from the stored document take the defaults of
// DefaultPolicy, so adding a field never needs a data migration.
type Policy struct {
	Verification VerificationPolicy `json:"verification"`
	Sessions     SessionPolicy      `json:"sessions"`
	StepUp       StepUpPolicy       `json:"step_up"`
	Deletion     DeletionPolicy     `json:"deletion"`
	Signup       SignupPolicy       `json:"signup"`
	Mail         MailPolicy         `json:"mail"`
	Audit        AuditPolicy        `json:"audit"`
	Branding     Branding           `json:"branding"`
	Passkeys     PasskeyPolicy      `json:"passkeys"`
}

// PasskeyPolicy requires phishing-resistant authentication (a passkey) of the users who
// hold one of RequireForRoles (owner, admin, member): at sign-in (a password sign-in is led
// to use or enrol a passkey before the portal), for the admin portal and API, and at
// step-up (only a passkey re-authenticates them). Empty: nobody is required to.
type PasskeyPolicy struct {
	RequireForRoles []string `json:"require_for_roles"`
}

// PasskeyRoles are the roles PasskeyPolicy may name.
var PasskeyRoles = []string{"owner", "admin", "member"}

// PhishingResistantRequired reports whether the policy requires a passkey of someone
// holding roles.
func (p Policy) PhishingResistantRequired(roles []string) bool {
	for _, r := range roles {
		if slices.Contains(p.Passkeys.RequireForRoles, r) {
			return true
		}
	}
	return false
}

// Branding is how hosted pages and emails present the tenant.
type Branding struct {
	DisplayName  string `json:"display_name"`  // empty: the tenant's name
	LogoURL      string `json:"logo_url"`      // https only; empty: none
	PrimaryColor string `json:"primary_color"` // #rrggbb; empty: Gatehouse blue
}

// AuditPolicy keeps audit events for RetentionDays.
type AuditPolicy struct {
	RetentionDays int `json:"retention_days"`
}

// MailPolicy overrides the global sender for this tenant's mail.
type MailPolicy struct {
	From                string `json:"from"`                  // "Name <addr>" or "addr"; empty: GATEHOUSE_MAIL_FROM with the tenant's name
	SESConfigurationSet string `json:"ses_configuration_set"` // empty: none
}

// Verification modes.
const (
	VerificationRequired = "required" // login refused until the address is confirmed
	VerificationGrace    = "grace"    // login allowed for GraceHours after signup
	VerificationOptional = "optional" // verified flag only
)

// VerificationPolicy says when an email address must be proven.
type VerificationPolicy struct {
	Mode          string `json:"mode"`
	GraceHours    int    `json:"grace_hours"`
	TokenTTLHours int    `json:"token_ttl_hours"`
}

// SessionPolicy bounds session lifetimes.
type SessionPolicy struct {
	IdleTimeoutSeconds     int  `json:"idle_timeout_seconds"`
	AbsoluteTimeoutSeconds int  `json:"absolute_timeout_seconds"`
	MaxPerUser             int  `json:"max_per_user"`
	NewDeviceNotice        bool `json:"new_device_notice"`
}

// StepUpPolicy lists per-action re-authentication rules; an action without a rule uses
// the built-in default of the step-up package.
type StepUpPolicy struct {
	Rules []StepUpRule `json:"rules"`
}

// StepUpRule requires an authentication within MaxAgeSeconds by one of Methods before Action.
type StepUpRule struct {
	Action        StepUpAction `json:"action"`
	MaxAgeSeconds int          `json:"max_age_seconds"`
	Methods       []string     `json:"methods"`
}

// DeletionPolicy sets the grace period of account deletion.
type DeletionPolicy struct {
	GraceDays int `json:"grace_days"`
}

// SignupPolicy controls self-service signup.
type SignupPolicy struct {
	Enabled        bool     `json:"enabled"`
	AllowedDomains []string `json:"allowed_domains"`
}

// DefaultPolicy is what a tenant gets without configuration. Session lifetimes follow
// NIST SP 800-63B for AAL2 (re-authenticate after at most 60 minutes idle and 12 hours in
// all); see docs/policy.md.
func DefaultPolicy() Policy {
	return Policy{
		Verification: VerificationPolicy{Mode: VerificationRequired, GraceHours: 24, TokenTTLHours: 24},
		Sessions: SessionPolicy{
			IdleTimeoutSeconds:     60 * 60,
			AbsoluteTimeoutSeconds: 12 * 60 * 60,
			MaxPerUser:             50,
			NewDeviceNotice:        true,
		},
		StepUp:   StepUpPolicy{Rules: []StepUpRule{}},
		Deletion: DeletionPolicy{GraceDays: 14},
		Signup:   SignupPolicy{Enabled: true, AllowedDomains: []string{}},
		Audit:    AuditPolicy{RetentionDays: 365},
		Passkeys: PasskeyPolicy{RequireForRoles: []string{}},
	}
}

// StepUpAction names a protected action. Only the constants below exist: code that
// protects an action names one of them, so an action cannot be protected by a typo.
type StepUpAction string

// The protected actions.
const (
	ActionEmailChange             StepUpAction = "email.change"
	ActionPasswordChange          StepUpAction = "password.change"
	ActionMFAEnroll               StepUpAction = "mfa.enroll"
	ActionMFADisable              StepUpAction = "mfa.disable"
	ActionRecoveryCodesRegenerate StepUpAction = "recovery_codes.regenerate"
	ActionAccountDelete           StepUpAction = "account.delete"
	ActionAccountExport           StepUpAction = "account.export"
	ActionSessionsRevokeOthers    StepUpAction = "sessions.revoke_others"
	ActionSSOConfigure            StepUpAction = "sso.configure"
	ActionPolicyUpdate            StepUpAction = "policy.update"
	ActionUsersDelete             StepUpAction = "users.delete"
	ActionAppsManage              StepUpAction = "apps.manage"
	ActionDirectoriesManage       StepUpAction = "directories.manage"
	ActionPasskeyRemove           StepUpAction = "passkey.remove"
	ActionWebhooksManage          StepUpAction = "webhooks.manage"
)

// StepUpActions are the actions a rule may name.
var StepUpActions = []StepUpAction{
	ActionEmailChange, ActionPasswordChange, ActionMFAEnroll, ActionMFADisable, ActionRecoveryCodesRegenerate,
	ActionAccountDelete, ActionAccountExport, ActionSessionsRevokeOthers, ActionSSOConfigure,
	ActionPolicyUpdate, ActionUsersDelete, ActionAppsManage, ActionDirectoriesManage, ActionPasskeyRemove, ActionWebhooksManage,
}

// StepUpMethods are the authentication methods a rule may accept.
var StepUpMethods = []string{"password", "totp", "recovery_code", "saml", "passkey", "aal2"}

// ParsePolicy reads a policy document over the defaults. strict refuses unknown fields
// (input from admins and tenant files); stored documents are read leniently so an older
// binary can read a newer document.
func ParsePolicy(doc []byte, strict bool) (Policy, error) {
	p := DefaultPolicy()
	if len(bytes.TrimSpace(doc)) == 0 {
		return p, nil
	}
	dec := json.NewDecoder(bytes.NewReader(doc))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(&p); err != nil {
		return Policy{}, invalidPolicy("", err.Error())
	}
	if dec.More() {
		return Policy{}, invalidPolicy("", "trailing data after the policy object")
	}
	p.normalize()
	return p, nil
}

func (p *Policy) normalize() {
	if p.StepUp.Rules == nil {
		p.StepUp.Rules = []StepUpRule{}
	}
	if p.Signup.AllowedDomains == nil {
		p.Signup.AllowedDomains = []string{}
	}
	if p.Passkeys.RequireForRoles == nil {
		p.Passkeys.RequireForRoles = []string{}
	}
	for i, d := range p.Signup.AllowedDomains {
		p.Signup.AllowedDomains[i] = strings.ToLower(strings.TrimSpace(d))
	}
}

// Validate rejects policies that make no sense, naming the first offending field.
func (p Policy) Validate() error {
	v := p.Verification
	switch v.Mode {
	case VerificationRequired, VerificationGrace, VerificationOptional:
	default:
		return invalidPolicy("verification.mode", fmt.Sprintf("must be required, grace or optional, not %q", v.Mode))
	}
	if v.GraceHours < 0 || v.GraceHours > 24*30 {
		return invalidRange("verification.grace_hours", 0, 24*30)
	}
	if v.TokenTTLHours < 1 || v.TokenTTLHours > 24*7 {
		return invalidRange("verification.token_ttl_hours", 1, 24*7)
	}
	s := p.Sessions
	if s.IdleTimeoutSeconds < 60 || s.IdleTimeoutSeconds > 90*24*3600 {
		return invalidRange("sessions.idle_timeout_seconds", 60, 90*24*3600)
	}
	if s.AbsoluteTimeoutSeconds < s.IdleTimeoutSeconds || s.AbsoluteTimeoutSeconds > 365*24*3600 {
		return invalidPolicy("sessions.absolute_timeout_seconds", "must be at least the idle timeout and at most 31536000", "min", s.IdleTimeoutSeconds, "max", 365*24*3600)
	}
	if s.MaxPerUser < 1 || s.MaxPerUser > 1000 {
		return invalidRange("sessions.max_per_user", 1, 1000)
	}
	seen := map[StepUpAction]bool{}
	for i, r := range p.StepUp.Rules {
		field := fmt.Sprintf("step_up.rules[%d]", i)
		if !slices.Contains(StepUpActions, r.Action) {
			return invalidPolicy(field+".action", fmt.Sprintf("unknown action %q", r.Action))
		}
		if seen[r.Action] {
			return invalidPolicy(field+".action", fmt.Sprintf("action %q has two rules", r.Action))
		}
		seen[r.Action] = true
		if r.MaxAgeSeconds < 0 || r.MaxAgeSeconds > 24*3600 {
			return invalidRange(field+".max_age_seconds", 0, 24*3600)
		}
		if len(r.Methods) == 0 {
			return invalidPolicy(field+".methods", "must name at least one method")
		}
		for _, m := range r.Methods {
			if !slices.Contains(StepUpMethods, m) {
				return invalidPolicy(field+".methods", fmt.Sprintf("unknown method %q", m))
			}
		}
	}
	for i, r := range p.Passkeys.RequireForRoles {
		if !slices.Contains(PasskeyRoles, r) {
			return invalidPolicy(fmt.Sprintf("passkeys.require_for_roles[%d]", i), fmt.Sprintf("unknown role %q (owner, admin or member)", r))
		}
	}
	if p.Deletion.GraceDays < 0 || p.Deletion.GraceDays > 365 {
		return invalidRange("deletion.grace_days", 0, 365)
	}
	for i, d := range p.Signup.AllowedDomains {
		if d == "" || strings.ContainsAny(d, "@ /") || !strings.Contains(d, ".") || len(d) > 253 {
			return invalidPolicy(fmt.Sprintf("signup.allowed_domains[%d]", i), fmt.Sprintf("%q is not a domain name", d))
		}
	}
	if b := p.Branding; utf8.RuneCountInString(b.DisplayName) > 100 || strings.ContainsAny(b.DisplayName, "\x00\r\n") {
		return invalidPolicy("branding.display_name", "must be at most 100 characters on one line")
	}
	if u := p.Branding.LogoURL; u != "" {
		pu, err := url.Parse(u)
		if err != nil || pu.Scheme != "https" || pu.Host == "" || len(u) > 2048 || strings.ContainsAny(u, "\"'<> ") {
			return invalidPolicy("branding.logo_url", "must be an https:// URL")
		}
	}
	if c := p.Branding.PrimaryColor; c != "" && !colorPattern.MatchString(c) {
		return invalidPolicy("branding.primary_color", "must be a colour like #2f5bea")
	}
	if p.Audit.RetentionDays < 30 || p.Audit.RetentionDays > 3650 {
		return invalidRange("audit.retention_days", 30, 3650)
	}
	if f := p.Mail.From; f != "" {
		if a, err := mail.ParseAddress(f); err != nil || strings.ContainsAny(f, "\r\n") || a.Address == "" {
			return invalidPolicy("mail.from", fmt.Sprintf("%q is not an email address", f))
		}
	}
	if c := p.Mail.SESConfigurationSet; len(c) > 64 || strings.ContainsAny(c, " \r\n/") {
		return invalidPolicy("mail.ses_configuration_set", "is not a configuration set name")
	}
	return nil
}

var colorPattern = regexp.MustCompile(`^#[0-9a-fA-F]{6}$`)

// JSON encodes the policy for storage.
func (p Policy) JSON() []byte {
	b, err := json.Marshal(p)
	if err != nil {
		panic(fmt.Sprintf("tenant: marshal policy: %v", err)) // plain structs always marshal
	}
	return b
}

// invalidPolicy is the invalid_policy error for field. Its details hold the field, the
// reason (msg) and any further key/value pairs (min and max for ranges), so that a form can
// word the error for its own input.
func invalidPolicy(field, msg string, kv ...any) error {
	e := apperr.New(apperr.Invalid, "invalid_policy", "Invalid policy: "+strings.TrimSpace(field+" "+msg)+".")
	if field != "" {
		d := map[string]any{"field": field, "reason": msg}
		for i := 0; i+1 < len(kv); i += 2 {
			d[kv[i].(string)] = kv[i+1]
		}
		e = e.WithDetails(d)
	}
	return e
}

// invalidRange is the error for a number outside [min, max].
func invalidRange(field string, min, max int) error {
	return invalidPolicy(field, fmt.Sprintf("must be between %d and %d", min, max), "min", min, "max", max)
}

// Label is the action's name for people ("Change email").
func (a StepUpAction) Label() string {
	if l, ok := actionLabels[a]; ok {
		return l
	}
	return string(a)
}

var actionLabels = map[StepUpAction]string{
	ActionEmailChange:             "Change email address",
	ActionPasswordChange:          "Change password",
	ActionMFAEnroll:               "Set up two-factor authentication",
	ActionMFADisable:              "Turn off two-factor authentication",
	ActionRecoveryCodesRegenerate: "Generate new recovery codes",
	ActionAccountDelete:           "Delete own account",
	ActionAccountExport:           "Download own data",
	ActionSessionsRevokeOthers:    "Sign out other devices",
	ActionSSOConfigure:            "Configure single sign-on",
	ActionPolicyUpdate:            "Change policies",
	ActionUsersDelete:             "Delete a user",
	ActionAppsManage:              "Manage applications (OpenID Connect clients)",
	ActionDirectoriesManage:       "Manage directory sync (SCIM directories and tokens)",
	ActionPasskeyRemove:           "Remove a passkey",
	ActionWebhooksManage:          "Manage webhooks (endpoints and their secrets)",
}

// StepUpMethodLabel is a step-up method's name for people ("Authenticator app").
func StepUpMethodLabel(m string) string {
	if l, ok := methodLabels[m]; ok {
		return l
	}
	return m
}

var methodLabels = map[string]string{
	"password":      "Password",
	"totp":          "Authenticator app",
	"recovery_code": "Recovery code",
	"saml":          "Single sign-on",
	"passkey":       "Passkey",
	"aal2":          "Two factors",
}
