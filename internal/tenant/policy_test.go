package tenant

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
)

func TestParsePolicyDefaults(t *testing.T) {
	t.Parallel()
	p, err := ParsePolicy([]byte(`{"verification":{"mode":"grace"}}`), true)
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultPolicy()
	want.Verification.Mode = VerificationGrace
	if d := cmp.Diff(want, p); d != "" {
		t.Fatalf("missing fields must keep their defaults (-want +got):\n%s", d)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	// A round trip through storage keeps everything.
	back, err := ParsePolicy(p.JSON(), true)
	if err != nil || !cmp.Equal(p, back) {
		t.Fatalf("round trip: %v %s", err, cmp.Diff(p, back))
	}
}

func TestParsePolicyStrictness(t *testing.T) {
	t.Parallel()
	doc := []byte(`{"verification":{"mode":"optional","future_field":1}}`)
	if _, err := ParsePolicy(doc, true); !apperr.Is(err, "invalid_policy") {
		t.Fatalf("strict: unknown field accepted: %v", err)
	}
	if p, err := ParsePolicy(doc, false); err != nil || p.Verification.Mode != VerificationOptional {
		t.Fatalf("lenient: %v %+v", err, p.Verification)
	}
	for _, bad := range []string{`[]`, `{"sessions":{"max_per_user":"10"}}`, `{} {}`, `{`} {
		if _, err := ParsePolicy([]byte(bad), true); !apperr.Is(err, "invalid_policy") {
			t.Errorf("ParsePolicy(%s) = %v, want invalid_policy", bad, err)
		}
	}
}

func TestPolicyValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		edit  func(*Policy)
		field string // "" means valid
	}{
		{"defaults", func(*Policy) {}, ""},
		{"unknown mode", func(p *Policy) { p.Verification.Mode = "sometimes" }, "verification.mode"},
		{"negative grace", func(p *Policy) { p.Verification.GraceHours = -1 }, "verification.grace_hours"},
		{"token ttl zero", func(p *Policy) { p.Verification.TokenTTLHours = 0 }, "verification.token_ttl_hours"},
		{"idle too short", func(p *Policy) { p.Sessions.IdleTimeoutSeconds = 5 }, "sessions.idle_timeout_seconds"},
		{"absolute below idle", func(p *Policy) { p.Sessions.AbsoluteTimeoutSeconds = p.Sessions.IdleTimeoutSeconds - 1 }, "sessions.absolute_timeout_seconds"},
		{"no sessions allowed", func(p *Policy) { p.Sessions.MaxPerUser = 0 }, "sessions.max_per_user"},
		{"valid rule", func(p *Policy) {
			p.StepUp.Rules = []StepUpRule{{Action: "account.delete", MaxAgeSeconds: 300, Methods: []string{"password", "totp"}}}
		}, ""},
		{"unknown action", func(p *Policy) {
			p.StepUp.Rules = []StepUpRule{{Action: "account.explode", MaxAgeSeconds: 300, Methods: []string{"password"}}}
		}, "step_up.rules[0].action"},
		{"negative age", func(p *Policy) {
			p.StepUp.Rules = []StepUpRule{{Action: "email.change", MaxAgeSeconds: -1, Methods: []string{"password"}}}
		}, "step_up.rules[0].max_age_seconds"},
		{"unknown method", func(p *Policy) {
			p.StepUp.Rules = []StepUpRule{{Action: "email.change", MaxAgeSeconds: 60, Methods: []string{"carrier-pigeon"}}}
		}, "step_up.rules[0].methods"},
		{"no method", func(p *Policy) {
			p.StepUp.Rules = []StepUpRule{{Action: "email.change", MaxAgeSeconds: 60}}
		}, "step_up.rules[0].methods"},
		{"duplicate action", func(p *Policy) {
			r := StepUpRule{Action: "email.change", MaxAgeSeconds: 60, Methods: []string{"password"}}
			p.StepUp.Rules = []StepUpRule{r, r}
		}, "step_up.rules[1].action"},
		{"deletion grace too long", func(p *Policy) { p.Deletion.GraceDays = 1000 }, "deletion.grace_days"},
		{"bad domain", func(p *Policy) { p.Signup.AllowedDomains = []string{"user@acme.com"} }, "signup.allowed_domains[0]"},
		{"branding ok", func(p *Policy) {
			p.Branding = Branding{DisplayName: "Acme Inc.", LogoURL: "https://cdn.acme.example/logo.png", PrimaryColor: "#12AbEf"}
		}, ""},
		{"logo over http", func(p *Policy) { p.Branding.LogoURL = "http://cdn.acme.example/logo.png" }, "branding.logo_url"},
		{"logo javascript", func(p *Policy) { p.Branding.LogoURL = "javascript:alert(1)" }, "branding.logo_url"},
		{"colour with css", func(p *Policy) { p.Branding.PrimaryColor = "red; background: url(x)" }, "branding.primary_color"},
		{"display name newline", func(p *Policy) { p.Branding.DisplayName = "Acme\nInc" }, "branding.display_name"},
		{"short retention", func(p *Policy) { p.Audit.RetentionDays = 1 }, "audit.retention_days"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := DefaultPolicy()
			tt.edit(&p)
			err := p.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("want valid, got %v", err)
				}
				return
			}
			e := apperr.From(err)
			if e.Code != "invalid_policy" || e.Details["field"] != tt.field {
				t.Fatalf("got %v (details %v), want invalid_policy on %s", err, e.Details, tt.field)
			}
		})
	}
}

// TestLabels: every step-up action and method has a name for people, so the policies page
// never shows a code.
func TestLabels(t *testing.T) {
	for _, a := range StepUpActions {
		if l := a.Label(); l == string(a) || l == "" {
			t.Errorf("action %s has no label", a)
		}
	}
	for _, m := range StepUpMethods {
		if l := StepUpMethodLabel(m); l == m || l == "" {
			t.Errorf("method %s has no label", m)
		}
	}
}
