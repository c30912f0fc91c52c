package admin_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-id/gatehouse/internal/authz"
	"github.com/gatehouse-id/gatehouse/internal/stepup"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
	"github.com/gatehouse-id/gatehouse/internal/testutil"
)

// portal is a tenant with an owner signed in to /admin in Chromium.
type portal struct {
	db   *testutil.DB
	site *testutil.Site
	ctx  context.Context
	base string
}

func openPortal(t *testing.T, edit func(*tenant.Policy)) portal {
	t.Helper()
	if testing.Short() {
		t.Skip("starts Chromium")
	}
	d := testutil.FreshDB(t)
	srv := testutil.NewServer(t, d)
	site := testutil.NewSite(t, srv, "portal", testutil.SiteName("Acme Portal"), testutil.SitePolicy(edit))
	site.User(t, "owner@acme.example", authz.Owner)
	ctx := testutil.Browser(t)
	base := fmt.Sprintf("http://%s:%d", site.Host, srv.Port)
	err := chromedp.Do(ctx,
		chromedp.Navigate(base+"/login?return_to=%2Fadmin"),
		chromedp.WaitVisible(chromedp.ID("email")),
		chromedp.SendKeys(chromedp.ID("email"), "owner@acme.example"),
		chromedp.SendKeys(chromedp.ID("password"), testutil.Password),
		chromedp.Submit(chromedp.ID("password")),
		chromedp.WaitVisible(chromedp.ID("count-users")),
	)
	if err != nil {
		t.Fatalf("owner sign-in: %v", err)
	}
	return portal{db: d, site: site, ctx: ctx, base: base}
}

func (p portal) policy(t *testing.T) tenant.Policy {
	t.Helper()
	got, err := p.site.Srv.App.Tenants.Get(context.Background(), p.site.Tenant.Slug)
	if err != nil {
		t.Fatal(err)
	}
	return got.Policy
}

// shoot saves a screenshot to $GATEHOUSE_SCREENSHOTS (docs/screenshots for the README:
// the error states; the pages themselves come from internal/authz TestBrowserPortal).
func shoot(ctx context.Context, name string) {
	dir := os.Getenv("GATEHOUSE_SCREENSHOTS")
	if dir == "" {
		return
	}
	if img, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
		_ = os.WriteFile(filepath.Join(dir, name+".png"), img, 0o644)
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// minutes writes a whole number of minutes as the page does.
func minutes(d time.Duration) string {
	if m := int(d / time.Minute); m != 1 {
		return fmt.Sprintf("%d minutes", m)
	}
	return "1 minute"
}

// ruleRow is a step-up row as the page shows it.
type ruleRow struct {
	Action, Effective, MaxAge, Unit string
	Set                             bool
}

const readRules = `[...document.querySelectorAll("table.rules tbody tr")].map(tr => ({
	Action: tr.querySelector("th").textContent.trim(),
	Effective: tr.querySelector("td.effective").textContent.trim(),
	MaxAge: tr.querySelector("input[type=number]").value,
	Unit: tr.querySelector("select").value,
	Set: tr.querySelector("input[type=checkbox]").checked}))`

// TestBrowserPolicyPage: the policies page shows each step-up action by its name with the
// requirement in effect — the step-up package's own default (read from stepup.Rule, for
// users with and without a second factor) or the tenant's rule — names the methods in
// words, and shows and takes durations in minutes and hours (issue 16 item 10). A wrong
// value is reported next to its field in words, with everything typed kept (item 16).
func TestBrowserPolicyPage(t *testing.T) {
	t.Parallel()
	p := openPortal(t, func(p *tenant.Policy) {
		p.StepUp.Rules = []tenant.StepUpRule{{Action: tenant.ActionEmailChange, MaxAgeSeconds: 120, Methods: []string{"password"}}}
	})
	ctx := p.ctx
	if err := chromedp.Do(ctx, chromedp.Navigate(p.base+"/admin/policy"), chromedp.WaitVisible(chromedp.ID("save-policy"))); err != nil {
		t.Fatal(err)
	}
	rows := eval[[]ruleRow](t, ctx, readRules)
	if len(rows) != len(tenant.StepUpActions) {
		t.Fatalf("%d rows, want one per action (%d)", len(rows), len(tenant.StepUpActions))
	}
	none := tenant.DefaultPolicy()
	for i, a := range tenant.StepUpActions {
		r := rows[i]
		if r.Action != a.Label() || strings.Contains(r.Action, string(a)) {
			t.Errorf("row %d is %q, want %q", i, r.Action, a.Label())
		}
		if a == tenant.ActionEmailChange {
			if !r.Set || r.Effective != "2 minutes, Password (own rule)" || r.MaxAge != "2" || r.Unit != "min" {
				t.Errorf("own rule row: %+v", r)
			}
			continue
		}
		without, with := stepup.Rule(none, a, false), stepup.Rule(none, a, true)
		want := minutes(without.MaxAge) + ", any sign-in method"
		if len(with.Methods) == 1 && with.Methods[0] == "aal2" {
			want += "; Two factors for users with two-factor authentication"
		}
		if r.Set || r.Effective != want+" (default)" {
			t.Errorf("%s: in effect %q, want %q", a, r.Effective, want+" (default)")
		}
		if r.MaxAge+" minutes" != minutes(without.MaxAge) || r.Unit != "min" {
			t.Errorf("%s: time field %s %s, want the default %s", a, r.MaxAge, r.Unit, minutes(without.MaxAge))
		}
	}
	table := text(t, ctx, "table.rules")
	for _, code := range []string{"aal2", "recovery_code", "email.change", "totp", " s)"} {
		if strings.Contains(table, code) {
			t.Errorf("the step-up table shows the code %q:\n%s", code, table)
		}
	}
	for _, m := range []string{"Password", "Authenticator app", "Recovery code", "Single sign-on", "Two factors"} {
		if !strings.Contains(table, m) {
			t.Errorf("no column %q:\n%s", m, table)
		}
	}
	idle := eval[[]string](t, ctx, `[document.getElementById("sessions-idle_timeout").value, document.querySelector("[name='sessions.idle_timeout.unit']").value,
		document.getElementById("sessions-absolute_timeout").value, document.querySelector("[name='sessions.absolute_timeout.unit']").value]`)
	if strings.Join(idle, " ") != "1 h 12 h" {
		t.Fatalf("session durations shown as %v, want 1 hour and 12 hours", idle)
	}

	// Save durations in minutes and hours, and a rule for users.delete.
	err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("sessions-idle_timeout"), "30"),
		chromedp.SetValue(chromedp.CSS(`[name="sessions.idle_timeout.unit"]`), "min"),
		chromedp.Click(chromedp.CSS(`[name="rule.users.delete"]`)),
		chromedp.SetValue(chromedp.CSS(`[name="rule.users.delete.max_age"]`), "2"),
		chromedp.SetValue(chromedp.CSS(`[name="rule.users.delete.max_age.unit"]`), "h"),
		chromedp.Click(chromedp.CSS(`[name="rule.users.delete.aal2"]`)),
		chromedp.Click(chromedp.ID("save-policy")),
		chromedp.WaitVisible(chromedp.CSS(`p[role=status]`)),
	)
	if err != nil {
		t.Fatalf("save: %v", err)
	}
	got := p.policy(t)
	if got.Sessions.IdleTimeoutSeconds != 30*60 || len(got.StepUp.Rules) != 2 || got.StepUp.Rules[1].Action != tenant.ActionUsersDelete ||
		got.StepUp.Rules[1].MaxAgeSeconds != 2*3600 || strings.Join(got.StepUp.Rules[1].Methods, ",") != "aal2" {
		t.Fatalf("stored after saving: sessions %+v, rules %+v", got.Sessions, got.StepUp.Rules)
	}
	rows = eval[[]ruleRow](t, ctx, readRules)
	if r := ruleOf(rows, tenant.ActionUsersDelete); r.Effective != "2 hours, Two factors (own rule)" || r.MaxAge != "2" || r.Unit != "h" {
		t.Fatalf("users.delete after saving: %+v", r)
	}

	// A value out of range: the error is next to the field, in words, and nothing typed is lost.
	err = chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("sessions-idle_timeout"), "100"),
		chromedp.SetValue(chromedp.CSS(`[name="sessions.idle_timeout.unit"]`), "d"),
		chromedp.SetValue(chromedp.ID("sessions-max_per_user"), "7"),
		chromedp.SetValue(chromedp.ID("signup-allowed_domains"), "acme.example"),
		chromedp.Click(chromedp.ID("save-policy")),
		chromedp.WaitVisible(chromedp.ID("sessions-idle_timeout-error")),
	)
	if err != nil {
		t.Fatalf("save out of range: %v", err)
	}
	if msg := text(t, ctx, "#sessions-idle_timeout-error"); msg != "Enter a value between 1 minute and 90 days." {
		t.Fatalf("field error %q", msg)
	}
	kept := eval[[]string](t, ctx, `[document.getElementById("sessions-idle_timeout").value, document.querySelector("[name='sessions.idle_timeout.unit']").value,
		document.getElementById("sessions-max_per_user").value, document.getElementById("signup-allowed_domains").value,
		document.getElementById("sessions-idle_timeout").getAttribute("aria-invalid"), document.getElementById("sessions-idle_timeout").getAttribute("aria-describedby")]`)
	if strings.Join(kept, "|") != "100|d|7|acme.example|true|sessions-idle_timeout-error" {
		t.Fatalf("the form after the error: %v", kept)
	}
	if main := text(t, ctx, "main"); strings.Contains(main, "Invalid policy") || strings.Contains(main, "idle_timeout_seconds") {
		t.Fatalf("internal wording on the page:\n%s", main)
	}
	if got := p.policy(t); got.Sessions.MaxPerUser != 50 || got.Sessions.IdleTimeoutSeconds != 30*60 {
		t.Fatalf("a refused form changed the policy: %+v", got.Sessions)
	}
	// What is in effect is still what is stored.
	rows = eval[[]ruleRow](t, ctx, readRules)
	if rows[0].Effective != "2 minutes, Password (own rule)" || ruleOf(rows, tenant.ActionUsersDelete).Effective != "2 hours, Two factors (own rule)" {
		t.Fatalf("in effect after a refused save: %q, %q", rows[0].Effective, ruleOf(rows, tenant.ActionUsersDelete).Effective)
	}
	shoot(ctx, "admin-policy-error")

	// A rule without a method: the error is in its row.
	err = chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("sessions-idle_timeout"), "2"),
		chromedp.SetValue(chromedp.CSS(`[name="sessions.idle_timeout.unit"]`), "h"),
		chromedp.Click(chromedp.CSS(`[name="rule.account.export"]`)),
		chromedp.Click(chromedp.ID("save-policy")),
		chromedp.WaitVisible(chromedp.CSS(`[id="rule-account.export-error"]`)),
	)
	if err != nil {
		t.Fatalf("save a rule without a method: %v", err)
	}
	if msg := text(t, ctx, `[id="rule-account.export-error"]`); msg != "Choose at least one way to confirm." {
		t.Fatalf("rule error %q", msg)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll(".field-error").length`); n != 1 {
		t.Fatalf("%d field errors, want only the rule's", n)
	}
}

// TestBrowserBrandingFieldErrors: a wrong colour is reported next to the colour field in
// words (not "Invalid policy: branding.primary_color …"), and what was typed stays.
func TestBrowserBrandingFieldErrors(t *testing.T) {
	t.Parallel()
	p := openPortal(t, nil)
	ctx := p.ctx
	err := chromedp.Do(ctx,
		chromedp.Navigate(p.base+"/admin/branding"),
		chromedp.WaitVisible(chromedp.ID("save-branding")),
		chromedp.SendKeys(chromedp.ID("display_name"), "Acme Rockets"),
		chromedp.SendKeys(chromedp.ID("primary_color"), "blue"),
		chromedp.Click(chromedp.ID("save-branding")),
		chromedp.WaitVisible(chromedp.ID("primary_color-error")),
	)
	if err != nil {
		t.Fatalf("save a wrong colour: %v", err)
	}
	if msg := text(t, ctx, "#primary_color-error"); msg != "Enter a colour as # and six hexadecimal digits, like #2f5bea." {
		t.Fatalf("field error %q", msg)
	}
	kept := eval[[]string](t, ctx, `[document.getElementById("display_name").value, document.getElementById("primary_color").value,
		document.getElementById("primary_color").getAttribute("aria-invalid"), String(document.querySelectorAll(".field-error").length)]`)
	if strings.Join(kept, "|") != "Acme Rockets|blue|true|1" {
		t.Fatalf("the form after the error: %v", kept)
	}
	if main := text(t, ctx, "main"); strings.Contains(main, "Invalid policy") || strings.Contains(main, "branding.") {
		t.Fatalf("internal wording on the page:\n%s", main)
	}
	shoot(ctx, "admin-branding-error")
	if b := p.policy(t).Branding; b.DisplayName != "" || b.PrimaryColor != "" {
		t.Fatalf("a refused form changed the branding: %+v", b)
	}
	err = chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("primary_color"), "#aa3300"),
		chromedp.Click(chromedp.ID("save-branding")),
		chromedp.WaitVisible(chromedp.CSS(`p[role=status]`)),
	)
	if err != nil {
		t.Fatalf("save a good colour: %v", err)
	}
	if b := p.policy(t).Branding; b.DisplayName != "Acme Rockets" || b.PrimaryColor != "#aa3300" {
		t.Fatalf("branding after saving: %+v", b)
	}
}

// TestBrowserDeleteUser: Delete user is a red button that needs the user's address typed
// as confirmation; a wrong address deletes nothing and says so next to the field; the
// right one schedules the deletion and the page says so; deleting at once lands on the
// user list with a success message (issue 16 item 16).
func TestBrowserDeleteUser(t *testing.T) {
	t.Parallel()
	p := openPortal(t, nil)
	ctx := p.ctx
	later := p.site.User(t, "later@acme.example")
	now := p.site.User(t, "now@acme.example")
	if err := chromedp.Do(ctx, chromedp.Navigate(p.base+"/admin/users/"+later.String()), chromedp.WaitVisible(chromedp.ID("delete-user"))); err != nil {
		t.Fatal(err)
	}
	look := eval[[]string](t, ctx, `[document.getElementById("delete-user").className, getComputedStyle(document.getElementById("delete-user")).backgroundColor,
		String(document.getElementById("delete-confirm").required)]`)
	if strings.Join(look, "|") != "danger|rgb(180, 35, 24)|true" {
		t.Fatalf("delete button and field: %v", look)
	}
	status := func(id uuid.UUID) string {
		t.Helper()
		var s string
		err := p.db.Admin.QueryRow(context.Background(), `SELECT status FROM users WHERE id = $1`, id).Scan(&s)
		if errors.Is(err, pgx.ErrNoRows) {
			return "gone"
		}
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("delete-confirm"), "someone@acme.example"),
		chromedp.Click(chromedp.ID("delete-user")),
		chromedp.WaitVisible(chromedp.ID("delete-confirm-error")),
	)
	if err != nil {
		t.Fatalf("delete with a wrong address: %v", err)
	}
	if msg := text(t, ctx, "#delete-confirm-error"); !strings.Contains(msg, "later@acme.example") {
		t.Fatalf("confirmation error %q", msg)
	}
	if v := eval[string](t, ctx, `document.getElementById("delete-confirm").value`); v != "someone@acme.example" {
		t.Fatalf("typed address not kept: %q", v)
	}
	if s := status(later); s != "active" {
		t.Fatalf("a wrong confirmation left the user %s", s)
	}
	err = chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("delete-confirm"), "Later@acme.example"),
		chromedp.Click(chromedp.ID("delete-user")),
		chromedp.WaitVisible(chromedp.ID("deletion-status")),
	)
	if err != nil {
		t.Fatalf("delete with the address: %v", err)
	}
	if msg := text(t, ctx, "#deletion-status"); !strings.HasPrefix(msg, "Deletion scheduled.") || !strings.Contains(msg, "14 days") {
		t.Fatalf("after scheduling: %q", msg)
	}
	if s := status(later); s != "pending_deletion" {
		t.Fatalf("after scheduling the user is %s", s)
	}

	err = chromedp.Do(ctx,
		chromedp.Navigate(p.base+"/admin/users/"+now.String()),
		chromedp.WaitVisible(chromedp.ID("delete-user")),
		chromedp.Click(chromedp.CSS(`input[name=immediate]`)),
		chromedp.SendKeys(chromedp.ID("delete-confirm"), "now@acme.example"),
		chromedp.Click(chromedp.ID("delete-user")),
		chromedp.WaitVisible(chromedp.CSS(`p[role=status]`)),
	)
	if err != nil {
		t.Fatalf("delete at once: %v", err)
	}
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasSuffix(loc, "/admin/users?deleted=1") {
		t.Fatalf("after deleting at once the browser is at %s", loc)
	}
	if msg := text(t, ctx, `p[role=status]`); msg != "The user's account was deleted." {
		t.Fatalf("success message %q", msg)
	}
	if s := status(now); s == "active" {
		t.Fatal("the user deleted at once is still active")
	}
}

// ruleOf is the policies page's row of action (by its label).
func ruleOf(rows []ruleRow, action tenant.StepUpAction) ruleRow {
	for _, r := range rows {
		if r.Action == action.Label() {
			return r
		}
	}
	return ruleRow{}
}
