package oidchttp

import (
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/oidcop"
)

// FieldError is a form's problem: with Field set it belongs beside that input (the
// input's name), otherwise to the whole form.
type FieldError struct {
	Field, Message string
}

// For is the message for the input named field ("" when the problem is elsewhere).
func (e FieldError) For(field string) string {
	if e.Field != "" && e.Field == field {
		return e.Message
	}
	return ""
}

// ConnectInfo is what an app's developer gives their OpenID Connect library.
type ConnectInfo struct {
	Issuer, Discovery string
}

// Choice is one checkbox of a group (grant types, scopes).
type Choice struct {
	Value, Label string
	Checked      bool
}

// AppForm is what an app form shows: an app's values, or what was typed into it.
type AppForm struct {
	Name, Type                           string
	RedirectURIs, PostLogoutRedirectURIs string // one per line
	BackchannelLogoutURI                 string
	FirstParty                           bool
	AccessTokenMinutes, RefreshTokenDays string
	Grants, Scopes                       []Choice
	// Opened is when the new-application form was shown (unix microseconds): a second
	// submission of the same form (a reload of the page with the secret) creates nothing.
	Opened string
}

// AppsView is the Applications page: how to connect an app, the tenant's apps and the
// form for a new one.
type AppsView struct {
	Apps    []oidcop.App
	Connect ConnectInfo
	Form    AppForm
	Err     FieldError
	Deleted bool
}

// AppView is one app's page: its identifiers, its settings form, the secret rotation and
// the way to delete it.
type AppView struct {
	App     oidcop.App
	Connect ConnectInfo
	Form    AppForm
	Notice  string
	Err     FieldError
	// Version is the app's state the rotation form was shown for: a second submission of
	// that form (a reload of the page with the new secret) rotates nothing.
	Version string
}

// Confidential tells an app that has a client secret.
func (v AppView) Confidential() bool { return v.App.Type == "confidential" }

// SecretView shows a client secret, once: right after the app was created or its secret
// rotated. It is rendered from that POST and never stored or put in a URL.
type SecretView struct {
	App     oidcop.App
	Secret  string
	Connect ConnectInfo
	Rotated bool
}

// AppDeleteView is the confirmation step before an app is deleted.
type AppDeleteView struct {
	App     oidcop.App
	Confirm string
	Err     FieldError
}

var grantChoices = []Choice{
	{Value: "authorization_code", Label: "Authorization code: people sign in through this organisation's sign-in page"},
	{Value: "refresh_token", Label: "Refresh token: the app keeps people signed in without asking again"},
	{Value: "client_credentials", Label: "Client credentials: machine to machine, no user (confidential apps only)"},
}

var scopeChoices = []Choice{
	{Value: "openid", Label: "openid: who the user is (required for sign-in)"},
	{Value: "profile", Label: "profile: the user's name"},
	{Value: "email", Label: "email: the user's email address"},
	{Value: "offline_access", Label: "offline_access: refresh tokens for third-party apps"},
}

func choices(all []Choice, checked []string) []Choice {
	out := slices.Clone(all)
	for i := range out {
		out[i].Checked = slices.Contains(checked, out[i].Value)
	}
	return out
}

// number writes n/unit without trailing zeros (300 s → "5" minutes).
func number(n, unit int) string {
	return strconv.FormatFloat(float64(n)/float64(unit), 'f', -1, 64)
}

// formOf is the form showing app a.
func formOf(a oidcop.App) AppForm {
	return AppForm{Name: a.Name, Type: a.Type, RedirectURIs: strings.Join(a.RedirectURIs, "\n"),
		PostLogoutRedirectURIs: strings.Join(a.PostLogoutRedirectURIs, "\n"), BackchannelLogoutURI: a.BackchannelLogoutURI,
		FirstParty: a.FirstParty, AccessTokenMinutes: number(a.AccessTokenTTLSeconds, 60),
		RefreshTokenDays: number(a.RefreshTokenTTLSeconds, 86400), Grants: choices(grantChoices, a.GrantTypes),
		Scopes: choices(scopeChoices, a.AllowedScopes)}
}

// newForm is the empty new-application form, with the defaults of a new app.
func newForm(now time.Time) AppForm {
	f := formOf(oidcop.App{Type: "confidential", AllowedScopes: []string{"openid", "profile", "email", "offline_access"},
		GrantTypes: []string{"authorization_code", "refresh_token"}, AccessTokenTTLSeconds: 300, RefreshTokenTTLSeconds: 30 * 86400})
	f.Opened = strconv.FormatInt(now.UnixMicro(), 10)
	return f
}

// typedForm is what was typed into an app form (kept on an error).
func typedForm(r *http.Request) AppForm {
	f := r.PostFormValue
	return AppForm{Name: f("name"), Type: f("type"), RedirectURIs: f("redirect_uris"),
		PostLogoutRedirectURIs: f("post_logout_redirect_uris"), BackchannelLogoutURI: f("backchannel_logout_uri"),
		FirstParty: f("first_party") != "", AccessTokenMinutes: f("access_token_minutes"), RefreshTokenDays: f("refresh_token_days"),
		Grants: choices(grantChoices, r.PostForm["grant_types"]), Scopes: choices(scopeChoices, r.PostForm["allowed_scopes"]),
		Opened: f("opened")}
}

// lines are the non-empty lines of a textarea.
func lines(text string) *[]string {
	out := []string{}
	for _, l := range strings.Split(text, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return &out
}

// seconds reads a lifetime typed in units of unit seconds.
func seconds(text string, unit int, field, words string) (*int, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(text), 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return nil, oidcop.ErrInvalidApp.WithDetails(map[string]any{"field": field, "reason": "give a number of " + words})
	}
	s := int(math.Round(math.Max(-1, math.Min(v, 1e7)) * float64(unit)))
	return &s, nil
}

// appInput reads an app form: every field is set (a missing checkbox is off); the type
// only when creating.
func appInput(r *http.Request, creating bool) (oidcop.AppInput, error) {
	f := r.PostFormValue
	name, bcl := f("name"), strings.TrimSpace(f("backchannel_logout_uri"))
	first := f("first_party") != ""
	grants, scopes := append([]string{}, r.PostForm["grant_types"]...), append([]string{}, r.PostForm["allowed_scopes"]...)
	in := oidcop.AppInput{Name: &name, RedirectURIs: lines(f("redirect_uris")), PostLogoutRedirectURIs: lines(f("post_logout_redirect_uris")),
		BackchannelLogoutURI: &bcl, FirstParty: &first, GrantTypes: &grants, AllowedScopes: &scopes}
	if creating {
		typ := f("type")
		in.Type = &typ
	}
	var err error
	if in.AccessTokenTTLSeconds, err = seconds(f("access_token_minutes"), 60, "access_token_ttl_seconds", "minutes"); err != nil {
		return in, err
	}
	if in.RefreshTokenTTLSeconds, err = seconds(f("refresh_token_days"), 86400, "refresh_token_ttl_seconds", "days"); err != nil {
		return in, err
	}
	return in, nil
}

// appFields are the domain's field names and the form's inputs they belong beside.
var appFields = map[string]string{
	"name": "name", "type": "type", "redirect_uris": "redirect_uris", "post_logout_redirect_uris": "post_logout_redirect_uris",
	"backchannel_logout_uri": "backchannel_logout_uri", "grant_types": "grant_types", "allowed_scopes": "allowed_scopes",
	"access_token_ttl_seconds": "access_token_minutes", "refresh_token_ttl_seconds": "refresh_token_days",
}

// fieldError places an invalid_app error beside its input, in words for people;
// anything else is the whole form's.
func fieldError(err error) FieldError {
	e := apperr.From(err)
	if e.Code != "invalid_app" {
		return FieldError{Message: e.Message}
	}
	reason, _ := e.Details["reason"].(string)
	field, _ := e.Details["field"].(string)
	input, ok := appFields[field]
	if !ok || reason == "" {
		return FieldError{Message: e.Message}
	}
	switch field {
	case "access_token_ttl_seconds":
		if !strings.HasPrefix(reason, "give") {
			reason = "from 1 to 1440 minutes (24 hours)"
		}
	case "refresh_token_ttl_seconds":
		if !strings.HasPrefix(reason, "give") {
			reason = "from 5 minutes to 365 days (0.5 days is 12 hours)"
		}
	}
	return FieldError{Field: input, Message: sentence(reason)}
}

// sentence is a lower-case reason as a sentence.
func sentence(s string) string {
	r, n := utf8.DecodeRuneInString(s)
	s = string(unicode.ToUpper(r)) + s[n:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}
