package adminhttp

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/stepup"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// option is one choice of a select or a set of checkboxes.
type option struct {
	Value, Label string
	Selected     bool
}

// field is one input as typed (kept on errors) with its field-level error.
type field struct {
	Value, Error string
}

// durationField is a duration typed as a number and a unit (minutes, hours, days).
type durationField struct {
	Value, Error string
	Units        []option
}

// policyForm is the policy page's form: every value as the admin typed it (or as stored),
// with the error of each field next to it.
type policyForm struct {
	Modes           []option
	GraceHours      field
	Idle, Absolute  durationField
	MaxPerUser      field
	NewDeviceNotice bool
	SignupEnabled   bool
	Domains         field
	PasskeyRoles    []option // roles required to sign in with a passkey (Selected)
	DeletionDays    field
	Rules           []ruleRow
	Methods         []option // column heads
}

// ruleRow is one protected action: its rule, if the tenant has one, and what is in effect.
type ruleRow struct {
	Action, Label string
	Set           bool
	Effective     string // what applies now, in words
	Default       string // the built-in default, in words
	MaxAge        durationField
	Methods       []option
	Error         string
}

// units, in seconds, that durations are shown in.
var (
	unitSecond = option{Value: "s", Label: "seconds"}
	unitMinute = option{Value: "min", Label: "minutes"}
	unitHour   = option{Value: "h", Label: "hours"}
	unitDay    = option{Value: "d", Label: "days"}
	unitSecs   = map[string]int{"s": 1, "min": 60, "h": 3600, "d": 86400}
)

// newDuration shows secs in the largest of units that divides it (seconds when none does).
func newDuration(secs int, units ...option) durationField {
	pick := ""
	for _, u := range units {
		if secs%unitSecs[u.Value] == 0 {
			pick = u.Value
		}
	}
	if pick == "" {
		units, pick = append([]option{unitSecond}, units...), "s"
	}
	return typedDuration(strconv.Itoa(secs/unitSecs[pick]), pick, units)
}

// typedDuration is a duration field as posted.
func typedDuration(value, unit string, units []option) durationField {
	if unit == "s" && !slices.ContainsFunc(units, func(o option) bool { return o.Value == "s" }) {
		units = append([]option{unitSecond}, units...)
	}
	d := durationField{Value: value}
	for _, u := range units {
		u.Selected = u.Value == unit
		d.Units = append(d.Units, u)
	}
	return d
}

var (
	sessionUnits = []option{unitMinute, unitHour, unitDay}
	stepUpUnits  = []option{unitMinute, unitHour}
)

// humanDuration writes secs in the largest unit that divides it ("10 minutes", "12 hours").
func humanDuration(secs int) string {
	for _, u := range []struct {
		n    int
		name string
	}{{86400, "day"}, {3600, "hour"}, {60, "minute"}, {1, "second"}} {
		if secs != 0 && secs%u.n == 0 {
			return plural(secs/u.n, u.name)
		}
	}
	return plural(secs, "second")
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return strconv.Itoa(n) + " " + unit + "s"
}

// requirementText says in words what a step-up requirement asks for.
func requirementText(req stepup.Requirement) string {
	return humanDuration(int(req.MaxAge/time.Second)) + ", " + methodsText(req.Methods)
}

func methodsText(methods []string) string {
	if len(methods) == 0 {
		return "no method"
	}
	all := true
	for _, m := range tenant.StepUpMethods {
		if m != "aal2" && !slices.Contains(methods, m) {
			all = false
		}
	}
	if all {
		return "any sign-in method"
	}
	labels := make([]string, 0, len(methods))
	for _, m := range methods {
		labels = append(labels, tenant.StepUpMethodLabel(m))
	}
	return strings.Join(labels, " or ")
}

// defaultText is the built-in default of action (the step-up package's, for users with
// and without a second factor).
func defaultText(a tenant.StepUpAction) string {
	none := tenant.DefaultPolicy()
	without, with := stepup.Rule(none, a, false), stepup.Rule(none, a, true)
	if with.MaxAge == without.MaxAge && slices.Equal(with.Methods, without.Methods) {
		return requirementText(without)
	}
	return requirementText(without) + "; " + methodsText(with.Methods) + " for users with two-factor authentication"
}

func newPolicyForm(p tenant.Policy) policyForm {
	f := policyForm{
		GraceHours: field{Value: strconv.Itoa(p.Verification.GraceHours)},
		Idle:       newDuration(p.Sessions.IdleTimeoutSeconds, sessionUnits...),
		Absolute:   newDuration(p.Sessions.AbsoluteTimeoutSeconds, sessionUnits...),
		MaxPerUser: field{Value: strconv.Itoa(p.Sessions.MaxPerUser)}, NewDeviceNotice: p.Sessions.NewDeviceNotice,
		SignupEnabled: p.Signup.Enabled, Domains: field{Value: strings.Join(p.Signup.AllowedDomains, ", ")},
		DeletionDays: field{Value: strconv.Itoa(p.Deletion.GraceDays)},
		PasskeyRoles: passkeyRoleOptions(p.Passkeys.RequireForRoles),
	}
	f.Modes = modeOptions(p.Verification.Mode)
	f.Methods = methodOptions(nil)
	for _, a := range tenant.StepUpActions {
		row := ruleRow{Action: string(a), Label: a.Label(), Default: defaultText(a)}
		row.Effective = row.Default + " (default)"
		def := stepup.Rule(tenant.DefaultPolicy(), a, false)
		row.MaxAge = newDuration(int(def.MaxAge/time.Second), stepUpUnits...)
		row.Methods = methodOptions(nil)
		for _, r := range p.StepUp.Rules {
			if r.Action == a {
				row.Set = true
				row.MaxAge = newDuration(r.MaxAgeSeconds, stepUpUnits...)
				row.Methods = methodOptions(r.Methods)
				row.Effective = requirementText(stepup.Rule(p, a, false)) + " (own rule)"
			}
		}
		f.Rules = append(f.Rules, row)
	}
	return f
}

func modeOptions(cur string) []option {
	out := []option{
		{Value: tenant.VerificationRequired, Label: "Required before the first sign-in"},
		{Value: tenant.VerificationGrace, Label: "Required after a grace period"},
		{Value: tenant.VerificationOptional, Label: "Optional"},
	}
	for i := range out {
		out[i].Selected = out[i].Value == cur
	}
	return out
}

func methodOptions(checked []string) []option {
	out := make([]option, 0, len(tenant.StepUpMethods))
	for _, m := range tenant.StepUpMethods {
		out = append(out, option{Value: m, Label: tenant.StepUpMethodLabel(m), Selected: slices.Contains(checked, m)})
	}
	return out
}

// typedPolicyForm is the form as posted, for showing it again with its errors; what is
// in effect still comes from the stored policy cur (nothing was saved).
func typedPolicyForm(r *http.Request, cur tenant.Policy) policyForm {
	stored := newPolicyForm(cur)
	v := func(name string) field { return field{Value: r.PostFormValue(name)} }
	dur := func(name string, units []option) durationField {
		return typedDuration(r.PostFormValue(name), r.PostFormValue(name+".unit"), units)
	}
	f := policyForm{
		Modes:      modeOptions(r.PostFormValue("verification.mode")),
		GraceHours: v("verification.grace_hours"),
		Idle:       dur("sessions.idle_timeout", sessionUnits), Absolute: dur("sessions.absolute_timeout", sessionUnits),
		MaxPerUser: v("sessions.max_per_user"), NewDeviceNotice: r.PostFormValue("sessions.new_device_notice") == "on",
		SignupEnabled: r.PostFormValue("signup.enabled") == "on", Domains: v("signup.allowed_domains"),
		DeletionDays: v("deletion.grace_days"), Methods: methodOptions(nil),
		PasskeyRoles: passkeyRoleOptions(postedPasskeyRoles(r)),
	}
	for i, a := range tenant.StepUpActions {
		name := "rule." + string(a)
		row := ruleRow{Action: string(a), Label: a.Label(), Default: defaultText(a), Set: r.PostFormValue(name) == "on",
			MaxAge: dur(name+".max_age", stepUpUnits), Effective: stored.Rules[i].Effective}
		var checked []string
		for _, m := range tenant.StepUpMethods {
			if r.PostFormValue(name+"."+m) == "on" {
				checked = append(checked, m)
			}
		}
		row.Methods = methodOptions(checked)
		f.Rules = append(f.Rules, row)
	}
	return f
}

// formError is an error of one field of a portal form, worded for that form.
type formError struct {
	Field, Message string
}

func (e *formError) Error() string { return e.Field + ": " + e.Message }

// setError puts the message next to the field it belongs to; false for a field the form
// does not have.
func (f *policyForm) setError(fe *formError) bool {
	switch fe.Field {
	case "verification.grace_hours":
		f.GraceHours.Error = fe.Message
	case "sessions.idle_timeout":
		f.Idle.Error = fe.Message
	case "sessions.absolute_timeout":
		f.Absolute.Error = fe.Message
	case "sessions.max_per_user":
		f.MaxPerUser.Error = fe.Message
	case "signup.allowed_domains":
		f.Domains.Error = fe.Message
	case "deletion.grace_days":
		f.DeletionDays.Error = fe.Message
	default:
		for i := range f.Rules {
			if strings.HasPrefix(fe.Field, "rule."+f.Rules[i].Action) {
				f.Rules[i].Error = fe.Message
				return true
			}
		}
		return false
	}
	return true
}

// policyFromForm reads the policy page's fields over the current policy and validates
// the result. Errors of a field are *formError, worded for the page.
func policyFromForm(r *http.Request, cur tenant.Policy) (tenant.Policy, error) {
	p := cur
	num := func(name string, dst *int) error {
		n, err := strconv.Atoi(strings.TrimSpace(r.PostFormValue(name)))
		if err != nil {
			return &formError{name, "Enter a whole number."}
		}
		*dst = n
		return nil
	}
	dur := func(name string, dst *int) error {
		if err := num(name, dst); err != nil {
			return err
		}
		unit, ok := unitSecs[r.PostFormValue(name+".unit")]
		if !ok {
			return &formError{name, "Choose a unit."}
		}
		*dst *= unit
		return nil
	}
	p.Verification.Mode = r.PostFormValue("verification.mode")
	for _, d := range []struct {
		name string
		dst  *int
		read func(string, *int) error
	}{
		{"verification.grace_hours", &p.Verification.GraceHours, num},
		{"sessions.idle_timeout", &p.Sessions.IdleTimeoutSeconds, dur},
		{"sessions.absolute_timeout", &p.Sessions.AbsoluteTimeoutSeconds, dur},
		{"sessions.max_per_user", &p.Sessions.MaxPerUser, num},
		{"deletion.grace_days", &p.Deletion.GraceDays, num},
	} {
		if err := d.read(d.name, d.dst); err != nil {
			return p, err
		}
	}
	p.Sessions.NewDeviceNotice = r.PostFormValue("sessions.new_device_notice") == "on"
	p.Signup.Enabled = r.PostFormValue("signup.enabled") == "on"
	p.Signup.AllowedDomains = []string{}
	for _, d := range strings.FieldsFunc(r.PostFormValue("signup.allowed_domains"), func(c rune) bool { return c == ',' || c == ' ' || c == '\n' }) {
		p.Signup.AllowedDomains = append(p.Signup.AllowedDomains, strings.ToLower(d))
	}
	p.Passkeys.RequireForRoles = postedPasskeyRoles(r)
	p.StepUp.Rules = []tenant.StepUpRule{}
	for _, a := range tenant.StepUpActions {
		if r.PostFormValue("rule."+string(a)) != "on" {
			continue
		}
		rule := tenant.StepUpRule{Action: a, Methods: []string{}}
		if err := dur("rule."+string(a)+".max_age", &rule.MaxAgeSeconds); err != nil {
			return p, err
		}
		for _, m := range tenant.StepUpMethods {
			if r.PostFormValue("rule."+string(a)+"."+m) == "on" {
				rule.Methods = append(rule.Methods, m)
			}
		}
		p.StepUp.Rules = append(p.StepUp.Rules, rule)
	}
	if err := p.Validate(); err != nil {
		return p, policyFieldError(err, p)
	}
	return p, nil
}

var ruleField = regexp.MustCompile(`^step_up\.rules\[(\d+)\]\.(\w+)$`)

// policyFieldError words a policy validation error for the portal's forms: the form field
// it belongs to and a sentence about that field (not the policy's internal path). Errors
// of fields the forms do not have are returned unchanged.
func policyFieldError(err error, p tenant.Policy) error {
	e := apperr.From(err)
	path, _ := e.Details["field"].(string)
	reason, _ := e.Details["reason"].(string)
	lo, hasRange := intDetail(e.Details["min"])
	hi, _ := intDetail(e.Details["max"])
	between := func(format func(int) string) string {
		return fmt.Sprintf("Enter a value between %s and %s.", format(lo), format(hi))
	}
	hours := func(n int) string { return plural(n, "hour") }
	days := func(n int) string { return plural(n, "day") }
	switch {
	case path == "verification.grace_hours" && hasRange:
		return &formError{"verification.grace_hours", between(hours)}
	case path == "sessions.idle_timeout_seconds" && hasRange:
		return &formError{"sessions.idle_timeout", between(humanDuration)}
	case path == "sessions.absolute_timeout_seconds" && hasRange:
		return &formError{"sessions.absolute_timeout", fmt.Sprintf("Must be at least the idle timeout (%s) and at most %s.", humanDuration(lo), humanDuration(hi))}
	case path == "sessions.max_per_user" && hasRange:
		return &formError{"sessions.max_per_user", fmt.Sprintf("Enter a number between %d and %d.", lo, hi)}
	case path == "deletion.grace_days" && hasRange:
		return &formError{"deletion.grace_days", between(days)}
	case strings.HasPrefix(path, "signup.allowed_domains"):
		return &formError{"signup.allowed_domains", sentence(reason) + " Enter domain names like example.com, separated by commas."}
	case path == "branding.display_name":
		return &formError{"display_name", "Use at most 100 characters, on one line."}
	case path == "branding.logo_url":
		return &formError{"logo_url", "Enter an address that starts with https://, like https://cdn.example.com/logo.png."}
	case path == "branding.primary_color":
		return &formError{"primary_color", "Enter a colour as # and six hexadecimal digits, like #2f5bea."}
	}
	if m := ruleField.FindStringSubmatch(path); m != nil {
		i, _ := strconv.Atoi(m[1])
		if i < len(p.StepUp.Rules) {
			name := "rule." + string(p.StepUp.Rules[i].Action)
			switch m[2] {
			case "max_age_seconds":
				return &formError{name + ".max_age", fmt.Sprintf("Enter a time between %s and %s.", humanDuration(lo), humanDuration(hi))}
			case "methods":
				return &formError{name + ".methods", "Choose at least one way to confirm."}
			}
		}
	}
	return err
}

func intDetail(v any) (int, bool) {
	switch n := v.(type) {
	case int:
		return n, true
	case float64:
		return int(n), true
	}
	return 0, false
}

// sentence capitalises a reason and ends it with a full stop.
func sentence(s string) string {
	if s == "" {
		return ""
	}
	return strings.ToUpper(s[:1]) + s[1:] + "."
}

// passkeyRoleOptions are the role checkboxes of "require a passkey", checked for roles.
func passkeyRoleOptions(roles []string) []option {
	out := make([]option, 0, len(tenant.PasskeyRoles))
	for _, r := range tenant.PasskeyRoles {
		out = append(out, option{Value: r, Label: r, Selected: slices.Contains(roles, r)})
	}
	return out
}

// postedPasskeyRoles reads the checked roles of "require a passkey" (passkeys.require.ROLE).
func postedPasskeyRoles(r *http.Request) []string {
	out := []string{}
	for _, role := range tenant.PasskeyRoles {
		if r.PostFormValue("passkeys.require."+role) == "on" {
			out = append(out, role)
		}
	}
	return out
}
