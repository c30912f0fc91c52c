package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/gatehouse-id/gatehouse/internal/account"
	"github.com/gatehouse-id/gatehouse/internal/app"
	"github.com/gatehouse-id/gatehouse/internal/apperr"
	"github.com/gatehouse-id/gatehouse/internal/audit"
	"github.com/gatehouse-id/gatehouse/internal/config"
	"github.com/gatehouse-id/gatehouse/internal/tenant"
)

// openApp wires the services for the operator commands (as the application role, like
// the server; mail is enqueued for the servers' workers to deliver).
// The returned close function closes the app and flushes its log.
func openApp(ctx context.Context, env Env) (*app.App, func(), error) {
	cfg, err := config.Load(env.Getenv)
	if err != nil {
		return nil, nil, err
	}
	if cfg.DatabaseURL == "" {
		return nil, nil, errors.New("DATABASE_URL: not set")
	}
	cfg.DBMaxConns = 2
	cfg.LogLevel = "warn"
	logger, flush := newLogger(cfg, env.Stderr)
	a, err := app.New(ctx, cfg, logger, env.Getenv)
	if err != nil {
		flush()
		return nil, nil, err
	}
	return a, func() { a.Close(); flush() }, nil
}

// userError turns an application error into a line for the terminal.
func userError(err error) error {
	var e *apperr.Error
	if errors.As(err, &e) && e.Kind != apperr.Internal {
		return fmt.Errorf("%s (%s)", e.Message, e.Code)
	}
	return err
}

// setupLinkNote prints an owner's setup link (format argument: the link).
var setupLinkNote = "setup link (shown once, also mailed, valid " + strconv.Itoa(int(account.SetupTTL/(24*time.Hour))) + " days):\n  %s\n"

func runTenant(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: gatehouse tenant create|list|show|suspend|activate|delete|rotate-keys", errUsage)
	}
	sub, args := args[0], args[1:]
	fs := newFlags("tenant "+sub, env)
	name := fs.String("name", "", "create: display name")
	adminEmail := fs.String("admin-email", "", "create: email of the first owner")
	grace := fs.Duration("grace", 720*time.Hour, "delete: purge every row after this long (0: now)")
	asJSON := fs.Bool("json", false, "list/show/rotate-keys: print JSON")
	pos, err := parse(fs, args)
	if err != nil {
		return err
	}
	wantSlug := sub != "list"
	if wantSlug && len(pos) != 1 || !wantSlug && len(pos) != 0 {
		return fmt.Errorf("%w: gatehouse tenant %s%s", errUsage, sub, map[bool]string{true: " SLUG"}[wantSlug])
	}
	if sub == "create" && *name == "" {
		return fmt.Errorf("%w: --name is required", errUsage)
	}
	a, closeApp, err := openApp(ctx, env)
	if err != nil {
		return err
	}
	defer closeApp()
	svc := a.Tenants
	switch sub {
	case "create":
		c, err := svc.Create(ctx, tenant.CreateInput{Slug: pos[0], Name: *name, AdminEmail: *adminEmail})
		if err != nil {
			return userError(err)
		}
		fmt.Fprintf(env.Stdout, "created tenant %s (%s)\n", c.Tenant.Slug, c.Tenant.ID)
		if *adminEmail != "" {
			link, err := a.Accounts.IssueSetupLink(ctx, c.Tenant, c.AdminUserID)
			if err != nil {
				return err
			}
			fmt.Fprintf(env.Stdout, "owner %s (%s)\n"+setupLinkNote, *adminEmail, c.AdminUserID, link)
		}
		return nil
	case "list":
		ts, err := svc.List(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(env.Stdout).Encode(ts)
		}
		tw := tabwriter.NewWriter(env.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SLUG\tNAME\tSTATUS\tID\tCREATED")
		for _, t := range ts {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Slug, t.Name, t.Status, t.ID, t.CreatedAt.UTC().Format(time.RFC3339))
		}
		return tw.Flush()
	case "show":
		t, err := svc.Get(ctx, pos[0])
		if err != nil {
			return userError(err)
		}
		users, err := svc.CountUsers(ctx, t.ID)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			tenant.Tenant
			Users int64 `json:"users"`
		}{t, users})
	case "suspend", "activate":
		status := tenant.StatusSuspended
		if sub == "activate" {
			status = tenant.StatusActive
		}
		t, err := svc.SetStatus(ctx, pos[0], status)
		if err != nil {
			return userError(err)
		}
		fmt.Fprintf(env.Stdout, "tenant %s is %s\n", t.Slug, t.Status)
		return nil
	case "delete":
		t, err := svc.Delete(ctx, pos[0], *grace)
		if err != nil {
			return userError(err)
		}
		if *grace == 0 {
			fmt.Fprintf(env.Stdout, "tenant %s purged\n", t.Slug)
		} else {
			fmt.Fprintf(env.Stdout, "tenant %s suspended; every row is purged after %s\n", t.Slug, t.PurgeAfter.UTC().Format(time.RFC3339))
		}
		return nil
	case "rotate-keys":
		t, err := svc.Get(ctx, pos[0])
		if err != nil {
			return userError(err)
		}
		rot, err := a.OIDC.RotateKeys(ctx, t, audit.Who{ActorLabel: "operator"})
		if err != nil {
			return userError(err)
		}
		if *asJSON {
			return json.NewEncoder(env.Stdout).Encode(rot)
		}
		fmt.Fprintf(env.Stdout, "tenant %s: new signing key %s, published in the JWKS now\n", t.Slug, rot.Kid)
		if rot.PreviousUntil == nil {
			fmt.Fprintf(env.Stdout, "  signs from %s (the tenant's first key: at once)\n", rot.SignsFrom.UTC().Format(time.RFC3339))
			return nil
		}
		fmt.Fprintf(env.Stdout, "  signs from %s (once every node publishes it)\n", rot.SignsFrom.UTC().Format(time.RFC3339))
		fmt.Fprintf(env.Stdout, "  the keys it replaces stay published until %s (every token they signed has expired by then)\n",
			rot.PreviousUntil.UTC().Format(time.RFC3339))
		return nil
	}
	return fmt.Errorf("%w: unknown tenant command %q", errUsage, sub)
}

func runTenants(ctx context.Context, args []string, env Env) error {
	if len(args) == 0 || args[0] != "apply" {
		return fmt.Errorf("%w: gatehouse tenants apply DIR [--dry-run]", errUsage)
	}
	fs := newFlags("tenants apply", env)
	dryRun := fs.Bool("dry-run", false, "print the changes without applying them")
	pos, err := parse(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return fmt.Errorf("%w: gatehouse tenants apply DIR [--dry-run]", errUsage)
	}
	files, err := tenant.LoadDir(pos[0])
	if err != nil {
		return userError(err)
	}
	a, closeApp, err := openApp(ctx, env)
	if err != nil {
		return err
	}
	defer closeApp()
	// Apps are checked before anything is written (settings, and the secrets their
	// client_secret_env names), so a mistake there changes nothing either.
	for _, f := range files {
		if len(f.Apps) == 0 {
			continue
		}
		t, err := a.Tenants.Get(ctx, f.Slug)
		if err != nil && !tenant.IsNotFound(err) {
			return userError(err)
		}
		if _, err := a.OIDC.ApplyDeclared(ctx, t, f, env.Getenv, true); err != nil {
			return userError(fmt.Errorf("%s: %w", f.Path, err))
		}
	}
	changes, err := a.Tenants.Apply(ctx, files, *dryRun)
	if err != nil {
		return userError(err)
	}
	for _, c := range changes {
		fmt.Fprintln(env.Stdout, c.String())
	}
	// New owners have no password: each gets a setup link, mailed and printed once, as
	// with `tenant create --admin-email`.
	for _, c := range changes {
		if len(c.NewOwners) == 0 {
			continue
		}
		t, err := a.Tenants.Get(ctx, c.Slug)
		if err != nil {
			return userError(err)
		}
		for _, o := range c.NewOwners {
			link, err := a.Accounts.IssueSetupLink(ctx, t, o.UserID)
			if err != nil {
				return fmt.Errorf("setup link for %s (tenant %s): %w", o.Email, c.Slug, err)
			}
			fmt.Fprintf(env.Stdout, "owner %s (%s) of tenant %s\n"+setupLinkNote, o.Email, o.UserID, c.Slug, link)
		}
	}
	// SSO connections after the tenants exist (each connection is its own transaction:
	// creating one generates its SP key and may fetch the IdP's metadata).
	for _, f := range files {
		if len(f.SSOConnections) == 0 {
			continue
		}
		t, err := a.Tenants.Get(ctx, f.Slug)
		if err != nil {
			if *dryRun && tenant.IsNotFound(err) {
				for _, c := range f.SSOConnections {
					fmt.Fprintf(env.Stdout, "create sso connection %s (tenant %s)\n", c.Slug, f.Slug)
				}
				continue
			}
			return userError(err)
		}
		lines, err := a.SSO.ApplyDeclared(ctx, t, f.SSOConnections, *dryRun)
		for _, l := range lines {
			fmt.Fprintf(env.Stdout, "%s (tenant %s)\n", l, f.Slug)
		}
		if err != nil {
			return userError(fmt.Errorf("%s: %w", f.Path, err))
		}
	}
	if err := applyApps(ctx, a, files, env, *dryRun); err != nil {
		return err
	}
	if err := applyWebhooks(ctx, a, files, env, *dryRun); err != nil {
		return err
	}
	if err := applyDirectories(ctx, a, files, env, *dryRun); err != nil {
		return err
	}
	if *dryRun {
		fmt.Fprintln(env.Stdout, "(dry run: nothing was changed)")
	}
	return nil
}

// applyApps applies the apps: of each file (one transaction per tenant) and prints each
// change, and each generated client secret once.
func applyApps(ctx context.Context, a *app.App, files []tenant.File, env Env, dryRun bool) error {
	for _, f := range files {
		if len(f.Apps) == 0 && !f.PruneApps {
			continue
		}
		t, err := a.Tenants.Get(ctx, f.Slug)
		if err != nil && !(dryRun && tenant.IsNotFound(err)) {
			return userError(err)
		}
		changes, err := a.OIDC.ApplyDeclared(ctx, t, f, env.Getenv, dryRun)
		if err != nil {
			return userError(fmt.Errorf("%s: %w", f.Path, err))
		}
		for _, c := range changes {
			head, rest, _ := strings.Cut(c.String(), "\n")
			fmt.Fprintf(env.Stdout, "%s (tenant %s)\n", head, f.Slug)
			if rest != "" {
				fmt.Fprintln(env.Stdout, rest)
			}
		}
		for _, c := range changes {
			if c.Secret != "" {
				fmt.Fprintf(env.Stdout, "client secret of app %s (tenant %s), shown once; store it in your app's secret store:\n  %s\n", c.ClientID, f.Slug, c.Secret)
			}
		}
	}
	return nil
}

// applyWebhooks applies the webhooks: of each file and prints each change, and each
// generated secret once.
func applyWebhooks(ctx context.Context, a *app.App, files []tenant.File, env Env, dryRun bool) error {
	for _, f := range files {
		if len(f.Webhooks) == 0 {
			continue
		}
		t, err := a.Tenants.Get(ctx, f.Slug)
		if dryRun && tenant.IsNotFound(err) {
			for _, w := range f.Webhooks {
				fmt.Fprintf(env.Stdout, "create webhook %s (tenant %s)\n", w.Name, f.Slug)
			}
			continue
		}
		if err != nil {
			return userError(err)
		}
		changes, err := a.Webhooks.ApplyDeclared(ctx, t, f.Webhooks, env.Getenv, dryRun)
		for _, c := range changes {
			fmt.Fprintf(env.Stdout, "%s (tenant %s)\n", c, f.Slug)
			if c.Secret != "" {
				fmt.Fprintf(env.Stdout, "signing secret of webhook %s (tenant %s), shown once; store it in the receiver's secret store:\n  %s\n", c.Name, f.Slug, c.Secret)
			}
		}
		if err != nil {
			return userError(fmt.Errorf("%s: %w", f.Path, err))
		}
	}
	return nil
}

// applyDirectories applies the directories: of each file (after its SSO connections) and
// prints each change, and each generated token once.
func applyDirectories(ctx context.Context, a *app.App, files []tenant.File, env Env, dryRun bool) error {
	for _, f := range files {
		if len(f.Directories) == 0 {
			continue
		}
		t, err := a.Tenants.Get(ctx, f.Slug)
		if dryRun && tenant.IsNotFound(err) {
			for _, d := range f.Directories {
				fmt.Fprintf(env.Stdout, "create directory %s (tenant %s)\n", d.Name, f.Slug)
			}
			continue
		}
		if err != nil {
			return userError(err)
		}
		changes, err := a.SCIM.ApplyDeclared(ctx, t, f.Directories, env.Getenv, dryRun)
		for _, c := range changes {
			fmt.Fprintf(env.Stdout, "%s (tenant %s)\n", c, f.Slug)
			if c.Token != "" {
				fmt.Fprintf(env.Stdout, "SCIM token of directory %s (tenant %s), shown once; paste it into the IdP with the base URL %s:\n  %s\n",
					c.Name, f.Slug, a.SCIM.BaseURL(t), c.Token)
			}
		}
		if err != nil {
			return userError(fmt.Errorf("%s: %w", f.Path, err))
		}
	}
	return nil
}
